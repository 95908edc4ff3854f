"""Enrolment where the person is: an Ed25519 key in an encrypted PKCS#8 file, a
certificate signing request (PKCS#10) naming organisation, role and name, and the
certificate an organisation's CA issues from that request.

The private key never leaves the person's machine; the CA key never leaves the
admin's. A request carries the same subject and attribute extension an identity
certificate does (crypto.certs), and its self-signature proves possession of the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.x509.oid import NameOID

from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.certs import (
    ATTRIBUTES_OID,
    CA_ROLE,
    Certificate,
    issue_identity_certificate,
    load_certificate,
)
from healthledger.crypto.errors import CertificateError, CryptoError
from healthledger.crypto.keys import SigningKey

MIN_PASSPHRASE = 8
"""Shortest passphrase a key file is encrypted under."""


class KeyFileError(CryptoError):
    """A key file cannot be read: not an encrypted Ed25519 PKCS#8 key, or the wrong
    passphrase."""


def encrypt_key(key: SigningKey, passphrase: str) -> bytes:
    """``key`` as encrypted PKCS#8 PEM (PBES2, AES-256-CBC, key derived from
    ``passphrase``)."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise KeyFileError(f"a passphrase has at least {MIN_PASSPHRASE} characters")
    return key.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
    )


def decrypt_key(pem: bytes, passphrase: str) -> SigningKey:
    """The Ed25519 key of an encrypted PKCS#8 PEM file; KeyFileError naming why not."""
    if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" not in pem:
        raise KeyFileError("not an encrypted PKCS#8 private key (BEGIN ENCRYPTED PRIVATE KEY)")
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase.encode("utf-8"))
    except ValueError as exc:
        # cryptography says "Bad decrypt. Incorrect password?" for a wrong passphrase.
        if "password" in str(exc).lower() or "decrypt" in str(exc).lower():
            raise KeyFileError("wrong passphrase for the key file") from exc
        raise KeyFileError(f"unreadable private key: {exc}") from exc
    except TypeError as exc:
        raise KeyFileError(f"unreadable private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError("the key file holds a key that is not Ed25519")
    return SigningKey(key)


@dataclass(frozen=True)
class CertificateRequest:
    """A parsed certificate signing request of an identity."""

    pem: str
    org: str
    """Organisation asked for (subject O)."""
    role: str
    """Role asked for (subject OU)."""
    name: str
    """Identity name (subject CN)."""
    attributes: Mapping[str, str]
    """Attributes asked for (the private extension; empty if absent)."""
    public_key: bytes
    """The requester's raw Ed25519 public key."""

    @property
    def identity(self) -> str:
        """The identity id asked for, ``org/name``."""
        return f"{self.org}/{self.name}"


def _subject(org: str, role: str, name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )


def certificate_request(
    *,
    key: SigningKey,
    org: str,
    role: str,
    name: str,
    attributes: Mapping[str, str] | None = None,
) -> str:
    """A PEM certificate signing request for ``org/name`` in ``role``, signed by ``key``."""
    if role == CA_ROLE:
        raise CertificateError("role 'ca' is reserved for CA certificates")
    builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(org, role, name))
    if attributes:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ATTRIBUTES_OID, canonical_json(dict(attributes))),
            critical=False,
        )
    request = builder.sign(key.key, algorithm=None)
    return request.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _one(name: x509.Name, oid: x509.ObjectIdentifier, what: str) -> str:
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1 or not isinstance(values[0].value, str) or not values[0].value:
        raise CertificateError(f"the request's subject must hold exactly one {what}")
    return values[0].value


def load_request(pem: str | bytes) -> CertificateRequest:
    """Parse a PEM certificate signing request and check its self-signature."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        request = x509.load_pem_x509_csr(data)
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate signing request: {exc}") from exc
    try:
        public = request.public_key()
    except ValueError as exc:
        raise CertificateError(f"unreadable public key in the request: {exc}") from exc
    if not isinstance(public, Ed25519PublicKey):
        raise CertificateError("the request's key is not Ed25519")
    if not request.is_signature_valid:
        raise CertificateError("the request's signature does not verify (proof of possession)")
    attributes: Mapping[str, str] = MappingProxyType({})
    try:
        extension = request.extensions.get_extension_for_oid(ATTRIBUTES_OID).value
    except x509.ExtensionNotFound:
        extension = None
    if extension is not None:
        parsed = None
        if isinstance(extension, x509.UnrecognizedExtension):
            try:
                parsed = json.loads(extension.value)
            except ValueError:
                parsed = None
        if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
        ):
            raise CertificateError("the request's attributes must be a JSON object of strings")
        attributes = MappingProxyType(parsed)
    subject = request.subject
    return CertificateRequest(
        pem=request.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        org=_one(subject, NameOID.ORGANIZATION_NAME, "organisation (O)"),
        role=_one(subject, NameOID.ORGANIZATIONAL_UNIT_NAME, "role (OU)"),
        name=_one(subject, NameOID.COMMON_NAME, "name (CN)"),
        attributes=attributes,
        public_key=public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
    )


def issue_from_request(
    request: CertificateRequest,
    *,
    ca_pem: str,
    ca_key: SigningKey,
    not_before_ms: int,
    not_after_ms: int,
    serial: int,
) -> Certificate:
    """The identity certificate the CA of ``ca_pem`` issues for ``request``; refused
    when the request names another organisation or ``ca_key`` is not that CA's key."""
    ca = load_certificate(ca_pem)
    if not ca.is_ca:
        raise CertificateError("the issuer certificate is not a CA certificate")
    if request.org != ca.org:
        raise CertificateError(
            f"the request is for organisation {request.org}, the CA is {ca.org}'s"
        )
    if ca_key.public_bytes() != ca.public_key:
        raise CertificateError(f"the CA key given is not the key of {ca.org}'s CA certificate")
    pem = issue_identity_certificate(
        ca_pem=ca_pem,
        ca_key=ca_key,
        role=request.role,
        name=request.name,
        public_key=request.public_key,
        not_before_ms=not_before_ms,
        not_after_ms=not_after_ms,
        serial=serial,
        attributes=request.attributes,
    )
    return load_certificate(pem)
