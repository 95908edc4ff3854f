"""Identities outside demo custody.

A person makes a key where they are (:func:`new_identity`: an encrypted PKCS#8 key
file and a certificate signing request); their organisation's admin issues the
certificate with the organisation's CA key, which stays on the admin's machine, and
registers it on chain (:func:`register`); :func:`rotate` replaces an identity's
key the same way, :func:`revoke` ends it. Every refusal is an
:class:`~healthledger.client.errors.EnrolmentError` or a problem from the node
saying why in one line, and nothing is stored twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from healthledger.client.errors import ClientError
from healthledger.client.http import Client
from healthledger.client.identity import CERT_SUFFIX, KEY_SUFFIX, wall_clock_ms
from healthledger.client.receipts import Committed
from healthledger.crypto.certs import Certificate
from healthledger.crypto.enrolment import (
    CertificateRequest,
    KeyFileError,
    certificate_request,
    decrypt_key,
    encrypt_key,
    issue_from_request,
    load_request,
)
from healthledger.crypto.errors import CryptoError
from healthledger.crypto.keys import SigningKey
from healthledger.ledger.transaction import IDENTITY_RE, NAME_RE

DAY_MS = 24 * 3600 * 1000
DEFAULT_VALIDITY_DAYS = 365
CSR_SUFFIX = ".csr.pem"


class EnrolmentError(ClientError):
    """A request, certificate or CA key that cannot be used to enrol, and why."""


@dataclass(frozen=True)
class NewIdentity:
    """A fresh key, encrypted, and the request to certify it."""

    key_pem: bytes
    """The private key, encrypted PKCS#8 PEM."""
    request_pem: str
    """The certificate signing request, PEM."""


def check_names(*, org: str, role: str, name: str) -> None:
    """Refuse names a proposal could never carry: ``org/name`` must be an identity id
    and the organisation and role lowercase names."""
    if not NAME_RE.match(org):
        raise EnrolmentError(f"{org!r} is not an organisation id (lowercase letters, digits, -)")
    if not NAME_RE.match(role):
        raise EnrolmentError(f"{role!r} is not a role (lowercase letters, digits, -)")
    if not IDENTITY_RE.match(f"{org}/{name}"):
        raise EnrolmentError(
            f"{name!r} is not an identity name (letters, digits, . _ @ -; up to 128)"
        )


def new_identity(
    *,
    org: str,
    role: str,
    name: str,
    passphrase: str,
    attributes: Mapping[str, str] | None = None,
) -> NewIdentity:
    """A new Ed25519 key for ``org/name`` in ``role``, encrypted under ``passphrase``,
    and its certificate signing request."""
    check_names(org=org, role=role, name=name)
    key = SigningKey.generate()
    try:
        request = certificate_request(key=key, org=org, role=role, name=name, attributes=attributes)
        load_request(request)  # the same checks the admin's side makes
        return NewIdentity(encrypt_key(key, passphrase), request)
    except (CryptoError, ValueError) as exc:
        raise EnrolmentError(str(exc)) from exc


def write_new_files(folder: Path, name: str, made: NewIdentity) -> tuple[Path, Path]:
    """Write ``NAME.key.pem`` (mode 0600) and ``NAME.csr.pem`` in ``folder``; refuse to
    overwrite a key file, which would lose a key."""
    folder.mkdir(parents=True, exist_ok=True)
    key_path, csr_path = folder / (name + KEY_SUFFIX), folder / (name + CSR_SUFFIX)
    try:
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise EnrolmentError(f"{key_path} exists already: a key is never overwritten") from exc
    with os.fdopen(descriptor, "wb") as out:
        out.write(made.key_pem)
    csr_path.write_text(made.request_pem)
    return key_path, csr_path


def certificate_file_of(request_path: Path) -> Path:
    """Where the certificate issued for the request file ``request_path`` is written."""
    name = request_path.name
    stem = name[: -len(CSR_SUFFIX)] if name.endswith(CSR_SUFFIX) else request_path.stem
    return request_path.with_name(stem + CERT_SUFFIX)


def read_request(path: Path) -> CertificateRequest:
    """The checked request in ``path``."""
    try:
        return load_request(path.read_bytes())
    except OSError as exc:
        raise EnrolmentError(f"cannot read {path}: {exc.strerror}") from exc
    except CryptoError as exc:
        raise EnrolmentError(f"{path}: {exc}") from exc


def read_ca_key(path: Path, passphrase: str) -> SigningKey:
    """An organisation's CA key from its encrypted PKCS#8 file."""
    try:
        return decrypt_key(path.read_bytes(), passphrase)
    except OSError as exc:
        raise EnrolmentError(f"cannot read the CA key {path}: {exc.strerror}") from exc
    except KeyFileError as exc:
        raise EnrolmentError(f"CA key {path}: {exc}") from exc


def issue(
    client: Client,
    request: CertificateRequest,
    *,
    ca_key: SigningKey,
    validity_days: int = DEFAULT_VALIDITY_DAYS,
    clock: Callable[[], int] = wall_clock_ms,
) -> Certificate:
    """The certificate the admin's organisation's CA issues for ``request``: refused
    for a request of another organisation, or a CA key that is not the key of the
    organisation's CA certificate on chain."""
    admin = client.identity
    if admin is None:
        raise EnrolmentError("registering an identity needs an admin identity to sign with")
    if request.org != admin.org:
        raise EnrolmentError(
            f"the request is for organisation {request.org}; "
            f"{admin.id} registers identities of {admin.org} only"
        )
    check_names(org=request.org, role=request.role, name=request.name)
    if not 1 <= validity_days <= 3650:
        raise EnrolmentError("a certificate is valid for 1 to 3650 days")
    record = client.organisation(request.org)
    if record is None or not isinstance(record.get("ca_cert"), str):
        raise EnrolmentError(f"organisation {request.org} is not a member of this consortium")
    now = clock()
    try:
        return issue_from_request(
            request,
            ca_pem=record["ca_cert"],
            ca_key=ca_key,
            # A minute back: a peer whose clock runs a little behind still accepts it.
            not_before_ms=now - 60_000,
            not_after_ms=now + validity_days * DAY_MS,
            serial=int.from_bytes(os.urandom(8), "big") | 1 << 63,
        )
    except CryptoError as exc:
        raise EnrolmentError(str(exc)) from exc


def register(
    client: Client,
    request: CertificateRequest,
    *,
    ca_key: SigningKey,
    validity_days: int = DEFAULT_VALIDITY_DAYS,
) -> tuple[Certificate, Committed]:
    """Issue the certificate of ``request`` and register it on chain, signed by the
    client's admin identity; refused if the identity is registered already."""
    existing = client.registered(request.identity)
    if existing is not None:
        raise EnrolmentError(
            f"identity {request.identity} is already registered ({existing.get('status')}); "
            "rotate its key or choose another name"
        )
    certificate = issue(client, request, ca_key=ca_key, validity_days=validity_days)
    committed = client.invoke("membership", "register_identity", {"cert": certificate.pem})
    return certificate, committed


def rotate(
    client: Client,
    request: CertificateRequest,
    *,
    ca_key: SigningKey,
    validity_days: int = DEFAULT_VALIDITY_DAYS,
) -> tuple[Certificate, Committed]:
    """Issue a certificate for the new key of ``request`` and make it the registered
    identity's certificate; the old key signs nothing valid after that block."""
    existing = client.registered(request.identity)
    if existing is None:
        raise EnrolmentError(f"identity {request.identity} is not registered: register it")
    if existing.get("status") != "active":
        raise EnrolmentError(f"identity {request.identity} is {existing.get('status')}")
    certificate = issue(client, request, ca_key=ca_key, validity_days=validity_days)
    committed = client.invoke("membership", "rotate_identity", {"cert": certificate.pem})
    return certificate, committed


def revoke(client: Client, identity_id: str, *, reason: str) -> Committed:
    """Revoke ``identity_id``: its transactions are invalid from the next block on."""
    existing = client.registered(identity_id)
    if existing is None:
        raise EnrolmentError(f"identity {identity_id} is not registered")
    if existing.get("status") == "revoked":
        raise EnrolmentError(f"identity {identity_id} is already revoked")
    return client.invoke(
        "membership", "revoke_identity", {"identity": identity_id, "reason": reason}
    )


def rekey_request(*, current: CertificateRequest | Certificate, passphrase: str) -> NewIdentity:
    """A new key and request for the same organisation, role and name as ``current``."""
    return new_identity(
        org=current.org,
        role=current.role,
        name=current.name,
        passphrase=passphrase,
        attributes=dict(current.attributes),
    )
