"""``healthledger staff ...``: who may log in to an organisation's console outside the
demo, each with a password and their own key (kept encrypted in the node's folder).

The operator makes a key once (``staff key``), keeps it out of the data folder and
gives it to ``healthledger node`` (``--staff-key FILE`` or ``HEALTHLEDGER_STAFF_KEY``);
the admin enrols each staff member's key file from ``identity new`` with a password
(``staff add``).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from healthledger.cli.reporting import EXIT_UNUSABLE, CliError, reported, stdout
from healthledger.client.identity import Identity, read_passphrase
from healthledger.node.consortium_peer import peer_org
from healthledger.node.parts import NODE_FILE
from healthledger.node.staff import (
    MIN_PASSWORD_LENGTH,
    OPERATOR_KEY_ENV,
    StaffError,
    StaffStore,
    new_operator_key,
    operator_key,
    staff_store,
)

staff_app = typer.Typer(
    help="Console logins outside the demo: staff passwords and their keys, encrypted.",
    no_args_is_help=True,
)

DataOption = typer.Option(..., "--data", help="The node's data folder.")
StaffKeyOption = typer.Option(
    None,
    "--staff-key",
    help=f"File holding the operator key (default: the {OPERATOR_KEY_ENV} variable).",
)


def open_store(data: Path, staff_key: Path | None) -> StaffStore:
    """The staff store of ``data``, opened with the operator's key (needed)."""
    if not (data / NODE_FILE).is_file():
        raise CliError(f"{data} is not a healthledger data folder (no {NODE_FILE})", EXIT_UNUSABLE)
    key = operator_key(staff_key)
    if key is None:
        raise CliError(
            f"no operator key: give --staff-key FILE or set {OPERATOR_KEY_ENV} "
            "(make one with healthledger staff key)",
            EXIT_UNUSABLE,
        )
    return staff_store(data, operator_key=key, org=peer_org(data))


@staff_app.command("key")
def key_command(
    out: Path = typer.Argument(..., help="File to write the new operator key to (mode 0600)."),
) -> None:
    """Make an operator key: keep it outside the data folder and give it to the node."""
    with reported():
        try:
            descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise CliError(f"{out} exists: an operator key is never overwritten") from exc
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(new_operator_key() + "\n")
        stdout().print(f"operator key written to {out}")


@staff_app.command("add")
def add_command(
    identity: str = typer.Argument(..., help="The staff member's identity, org/name."),
    data: Path = DataOption,
    key: Path = typer.Option(..., "--key", help="Their key file from identity new (NAME.key.pem)."),
    cert: Path | None = typer.Option(
        None, "--cert", help="Their certificate (default: NAME.cert.pem beside the key)."
    ),
    passphrase_file: Path | None = typer.Option(
        None, "--passphrase-file", help="File whose first line is the key's passphrase."
    ),
    password_file: Path | None = typer.Option(
        None, "--password-file", help="File whose first line is the login password (default: ask)."
    ),
    staff_key: Path | None = StaffKeyOption,
) -> None:
    """Let a registered identity log in to this node's console with a password."""
    with reported(unusable=(StaffError,)):
        store = open_store(data, staff_key)
        passphrase = read_passphrase(passphrase_file, prompt="Key passphrase: ")
        loaded = Identity.load(key, passphrase=passphrase, certificate_file=cert)
        if loaded.id != identity:
            raise CliError(f"{key} is the key of {loaded.id}, not of {identity}", EXIT_UNUSABLE)
        password = read_passphrase(
            password_file,
            prompt=f"Login password (at least {MIN_PASSWORD_LENGTH} characters): ",
            confirm=True,
        )
        store.enrol(loaded.certificate, loaded.key, password)
        stdout().print(f"{identity} may log in to the console of {data}")


@staff_app.command("remove")
def remove_command(
    identity: str = typer.Argument(..., help="The staff member's identity, org/name."),
    data: Path = DataOption,
    staff_key: Path | None = StaffKeyOption,
) -> None:
    """Stop a staff member logging in here (their key is forgotten by this node)."""
    with reported(unusable=(StaffError,)):
        open_store(data, staff_key).remove(identity)
        stdout().print(f"{identity} removed from the staff of {data}")


@staff_app.command("list")
def list_command(data: Path = DataOption, staff_key: Path | None = StaffKeyOption) -> None:
    """The staff who may log in to this node's console."""
    with reported(unusable=(StaffError,)):
        for identity in open_store(data, staff_key).ids():
            stdout().print(identity)
