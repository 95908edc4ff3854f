"""``healthledger invoke`` and ``healthledger query``: any contract function, signed
here with a key file, sent to a node over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from healthledger.appkit.client_commands import CERT, IDENTITY, PASSPHRASE, URL, signing_client
from healthledger.cli.reporting import EXIT_UNUSABLE, CliError, reported
from healthledger.crypto.canonical import parse_canonical
from healthledger.crypto.errors import CryptoError


def json_object(text: str, option: str) -> dict[str, Any]:
    """The JSON object given to ``option`` (canonical profile: no floats)."""
    try:
        value = parse_canonical(text.encode("utf-8"))
    except CryptoError as exc:
        raise CliError(f"{option} is not canonical JSON: {exc}", EXIT_UNUSABLE) from exc
    if not isinstance(value, dict):
        raise CliError(f"{option} must be a JSON object", EXIT_UNUSABLE)
    return value


def invoke(
    contract: str = typer.Argument(..., help="Contract name."),
    function: str = typer.Argument(..., help="Transaction function."),
    args: str = typer.Option("{}", "--args", help="Arguments, a JSON object."),
    transient: str | None = typer.Option(
        None, "--transient", help="Private inputs, a JSON object (never on chain)."
    ),
    timeout: float = typer.Option(30.0, "--timeout", min=1, max=60, help="Seconds to await."),
    prove: bool = typer.Option(
        True, "--prove/--no-prove", help="Check the receipt's inclusion proof offline."
    ),
    url: str = URL,
    identity: Path = IDENTITY,
    cert: Path | None = CERT,
    passphrase_file: Path | None = PASSPHRASE,
) -> None:
    """Sign a call of a transaction function here, have it endorsed, ordered and
    committed, and print its receipt and result as JSON."""
    with reported():
        arguments = json_object(args, "--args")
        private = None if transient is None else json_object(transient, "--transient")
        with signing_client(url, identity, cert, passphrase_file) as client:
            committed = client.invoke(
                contract, function, arguments, transient=private, timeout=timeout
            )
            answer: dict[str, Any] = {
                "receipt": committed.receipt.to_json(),
                "result": committed.result,
            }
            if prove:
                evidence = client.verify(committed.receipt)
                answer["proof"] = {"verified": True, **dict(evidence.proof)}
        print(json.dumps(answer, indent=2, ensure_ascii=False))


def query(
    contract: str = typer.Argument(..., help="Contract name."),
    function: str = typer.Argument(..., help="Query function."),
    args: str = typer.Option("{}", "--args", help="Arguments, a JSON object."),
    url: str = URL,
    identity: Path = IDENTITY,
    cert: Path | None = CERT,
    passphrase_file: Path | None = PASSPHRASE,
) -> None:
    """Run a query function signed here and print its result as JSON; a query that finds
    nothing (it answers null) is one line saying what was not found, and exit code 1."""
    with reported():
        arguments = json_object(args, "--args")
        with signing_client(url, identity, cert, passphrase_file) as client:
            result = client.query(contract, function, arguments)
        if result is None:
            raise CliError(nothing_found(contract, function, arguments))
        print(json.dumps(result, indent=2, ensure_ascii=False))


def nothing_found(contract: str, function: str, arguments: dict[str, Any]) -> str:
    """What a query that answered null did not find: ``no supply product with gtin ...``."""
    asked = ", ".join(
        f"{name} {value if isinstance(value, str) else json.dumps(value)}"
        for name, value in arguments.items()
    )
    return f"no {contract} {function}" + (f" with {asked}" if asked else " was found")
