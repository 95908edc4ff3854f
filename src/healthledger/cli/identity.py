"""``healthledger identity ...``: identities outside demo custody.

A person makes their key where they are (``identity new``: an encrypted key file and
a certificate signing request); their organisation's admin registers the request on
chain (``identity register``), signing the certificate with the organisation's CA
key on the admin's own machine; ``identity rotate`` gives a registered identity a new
key and ``identity revoke`` ends one. ``identity export`` takes a key the demo holds
out of custody into an encrypted key file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import typer

from healthledger.appkit.client_commands import CERT, IDENTITY, PASSPHRASE, URL, signing_client
from healthledger.cli.reporting import EXIT_UNUSABLE, CliError, reported, stdout
from healthledger.client import Committed
from healthledger.client.enrolment import (
    CSR_SUFFIX,
    DEFAULT_VALIDITY_DAYS,
    certificate_file_of,
    new_identity,
    read_ca_key,
    read_request,
    register,
    revoke,
    rotate,
    write_new_files,
)
from healthledger.client.identity import CERT_SUFFIX, KEY_SUFFIX, read_passphrase
from healthledger.crypto.enrolment import encrypt_key
from healthledger.node.embedded import KEYSTORE_FILE
from healthledger.node.keystore import Keystore

identity_app = typer.Typer(
    help="Identities whose keys stay with their holders: enrol, register, rotate, revoke.",
    no_args_is_help=True,
)


def print_committed(committed: Committed, *, what: str) -> None:
    """One line saying where ``what`` committed."""
    receipt = committed.receipt
    stdout().print(
        f"{what}: committed in block {receipt.height} as {receipt.tx_id} ({receipt.code})"
    )


def _attributes(pairs: list[str]) -> dict[str, str]:
    attributes = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--attribute takes NAME=VALUE, not {pair!r}", EXIT_UNUSABLE)
        attributes[name] = value
    return attributes


@identity_app.command("new")
def identity_new(
    org: str = typer.Option(..., "--org", help="Your organisation's id."),
    name: str = typer.Option(..., "--name", help="Your identity's name in it."),
    role: str = typer.Option(..., "--role", help="The role you ask for (doctor, lab, ...)."),
    attribute: list[str] = typer.Option(
        [], "--attribute", help="NAME=VALUE, e.g. region=440100 (repeatable)."
    ),
    out: Path = typer.Option(Path("."), "--out", help="Folder for the key and request."),
    passphrase_file: Path | None = PASSPHRASE,
) -> None:
    """Make a key here, encrypted under a passphrase (NAME.key.pem), and a certificate
    signing request (NAME.csr.pem) for your organisation's admin to register."""
    with reported():
        passphrase = read_passphrase(
            passphrase_file, prompt="Passphrase for the new key: ", confirm=True
        )
        made = new_identity(
            org=org, role=role, name=name, passphrase=passphrase, attributes=_attributes(attribute)
        )
        key_path, csr_path = write_new_files(out, name, made)
        say = stdout().print
        say(f"key {key_path} (encrypted; keep it and its passphrase to yourself)")
        say(f"request {csr_path}: give it to an admin of {org} to register")


def _enrol_command(*, rotating: bool, request_help: str) -> Callable[..., None]:
    """The ``register`` or (``rotating``) ``rotate`` command: both read a request and the
    organisation's CA key, issue the certificate here and commit it as an admin."""
    enrol = rotate if rotating else register
    done = "rotated" if rotating else "registered"

    def command(
        request_file: Path = typer.Argument(..., help=request_help),
        ca_key: Path = typer.Option(..., "--ca-key", help="Your organisation's CA key file."),
        ca_passphrase_file: Path | None = typer.Option(
            None, "--ca-passphrase-file", help="File whose first line is the CA key's passphrase."
        ),
        days: int = typer.Option(
            DEFAULT_VALIDITY_DAYS, "--days", help="Days the certificate is valid."
        ),
        out: Path | None = typer.Option(
            None, "--out", help="Certificate file (default NAME.cert.pem)."
        ),
        url: str = URL,
        identity: Path = IDENTITY,
        cert: Path | None = CERT,
        passphrase_file: Path | None = PASSPHRASE,
    ) -> None:
        with reported():
            request = read_request(request_file)
            key = read_ca_key(
                ca_key, read_passphrase(ca_passphrase_file, prompt=f"Passphrase of {ca_key}: ")
            )
            with signing_client(url, identity, cert, passphrase_file) as client:
                certificate, committed = enrol(client, request, ca_key=key, validity_days=days)
            target = out or certificate_file_of(request_file)
            target.write_text(certificate.pem)
            print_committed(committed, what=f"{request.identity} {done}")
            stdout().print(f"certificate {target}: give it to its holder, beside their key file")

    return command


identity_app.command(
    "register",
    help="As an admin: issue the certificate of a request with your organisation's CA key "
    "(here, on your machine) and register the identity on chain.",
)(_enrol_command(rotating=False, request_help="The request (NAME.csr.pem)."))
identity_app.command(
    "rotate",
    help="As an admin: give a registered identity the new key of a request (made with "
    "identity new in another folder); its old key signs nothing valid afterwards.",
)(_enrol_command(rotating=True, request_help="The request of the identity's new key."))


@identity_app.command("revoke")
def identity_revoke(
    identity_id: str = typer.Argument(..., help="The identity to revoke, ORG/NAME."),
    reason: str = typer.Option(..., "--reason", help="Why (1 to 500 characters)."),
    url: str = URL,
    identity: Path = IDENTITY,
    cert: Path | None = CERT,
    passphrase_file: Path | None = PASSPHRASE,
) -> None:
    """As an admin of its organisation (or of a regulator): revoke an identity, for good."""
    with reported(), signing_client(url, identity, cert, passphrase_file) as client:
        print_committed(revoke(client, identity_id, reason=reason), what=f"{identity_id} revoked")


@identity_app.command("export")
def identity_export(
    identity_id: str = typer.Argument(
        ..., help="An identity, ORG/NAME; with --ca, an organisation."
    ),
    data: Path = typer.Option(..., "--data", help="Data folder whose keystore holds the key."),
    ca: bool = typer.Option(False, "--ca", help="Export the organisation's CA key instead."),
    out: Path = typer.Option(Path("."), "--out", help="Folder for the key and certificate."),
    passphrase_file: Path | None = PASSPHRASE,
) -> None:
    """Take a key the demo holds out of custody: write it encrypted (NAME.key.pem) with
    its certificate (NAME.cert.pem), to sign with from the command line or a client."""
    with reported():
        keystore_file = data / KEYSTORE_FILE
        if not keystore_file.is_file():
            raise CliError(f"{data} holds no keystore ({KEYSTORE_FILE})", EXIT_UNUSABLE)
        try:
            keystore = Keystore.load(keystore_file)
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(f"{keystore_file} is unreadable: {exc}", EXIT_UNUSABLE) from exc
        if ca:
            held = keystore.cas.get(identity_id)
            if held is None:
                raise CliError(f"{data} holds no CA key of {identity_id}", EXIT_UNUSABLE)
            stem, key, cert_pem = f"{identity_id}-ca", held.key, held.cert_pem
        else:
            entry = keystore.get(identity_id)
            if entry is None:
                raise CliError(f"{data} holds no key of {identity_id}", EXIT_UNUSABLE)
            stem, key, cert_pem = entry.cert.name, entry.key, entry.cert.pem
        passphrase = read_passphrase(
            passphrase_file, prompt="Passphrase for the exported key: ", confirm=True
        )
        out.mkdir(parents=True, exist_ok=True)
        key_path, cert_path = out / (stem + KEY_SUFFIX), out / (stem + CERT_SUFFIX)
        try:
            descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise CliError(f"{key_path} exists already", EXIT_UNUSABLE) from exc
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(encrypt_key(key, passphrase))
        cert_path.write_text(cert_pem)
        stdout().print(json.dumps({"key": str(key_path), "cert": str(cert_path)}))


__all__ = ["CSR_SUFFIX", "identity_app", "print_committed", "signing_client"]
