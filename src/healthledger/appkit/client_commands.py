"""What the applications' write commands share (``epidemic report``, ``supply
capture``): the options naming the node and the signing identity, one-line errors,
and the printed receipt with its proof checked offline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from healthledger.client import Client, Committed
from healthledger.client.errors import IdentityError
from healthledger.contracts.errors import InvalidArguments
from healthledger.errors import HealthledgerError

EXIT_FAILED = 1
EXIT_UNUSABLE = 2

URL = typer.Option(
    "http://127.0.0.1:8000", "--url", envvar="HEALTHLEDGER_URL", help="The node's address."
)
IDENTITY = typer.Option(
    ..., "--identity", help="Key file (NAME.key.pem) of the identity that signs."
)
CERT = typer.Option(
    None, "--cert", help="Its certificate (default: in the key file, or NAME.cert.pem beside it)."
)
PASSPHRASE = typer.Option(
    None, "--passphrase-file", help="File whose first line is the key's passphrase (default: ask)."
)


class CommandInputError(HealthledgerError):
    """The command's input cannot be used (exit 2)."""


def fail(message: str, code: int) -> None:
    """End the command with one line on stderr."""
    typer.echo(f"error: {' '.join(message.split()) or 'failed'}", err=True)
    raise typer.Exit(code)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Every failure as one line on stderr: exit 2 for unusable input (a document that
    fails its checks here, a key file that cannot be opened), 1 otherwise."""
    try:
        yield
    except (CommandInputError, IdentityError, InvalidArguments) as exc:
        fail(str(exc), EXIT_UNUSABLE)
    except HealthledgerError as exc:
        fail(str(exc), EXIT_FAILED)
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename or ''}".strip(": "), EXIT_UNUSABLE)


def read_input(path: Path) -> bytes:
    """The bytes of an input file; CommandInputError if it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CommandInputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_json(path: Path) -> Any:
    """The JSON document in ``path``."""
    try:
        return json.loads(read_input(path))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandInputError(f"{path} is not JSON: {exc}") from exc


def signing_client(url: str, identity: Path, cert: Path | None, passphrase: Path | None) -> Client:
    """A client of ``url`` signing as the identity of the key file ``identity``."""
    return Client.signing(url, key_file=identity, certificate_file=cert, passphrase_file=passphrase)


def committed_and_proved(client: Client, committed: Committed, *, what: str) -> dict[str, Any]:
    """Check ``committed``'s inclusion proof offline and print what committed where;
    the answer as JSON-ready data."""
    evidence = client.verify(committed.receipt)
    receipt = committed.receipt
    typer.echo(f"{what}: committed in block {receipt.height} as {receipt.tx_id}")
    typer.echo(
        f"proof: verified offline, log entry {receipt.log_index} of "
        f"{evidence.proof['treeSize']} leads to block {receipt.height}'s log root"
    )
    return {
        "receipt": receipt.to_json(),
        "result": committed.result,
        "evidence": evidence.to_json(),
    }
