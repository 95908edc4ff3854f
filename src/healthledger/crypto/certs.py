"""X.509 identity certificates issued by each organisation's CA.

An identity certificate names its organisation (O), role (OU) and name (CN), and
carries attributes as canonical JSON in a private extension. The extension's OID
sits under 2.25 (a UUID-derived OID per ITU-T X.667), so it needs no registration.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import NameOID

from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.errors import CertificateError
from healthledger.crypto.keys import SigningKey

ATTRIBUTES_OID = x509.ObjectIdentifier("2.25.208327431512318096519328917385429766471")
"""Private extension holding the identity's attributes as canonical JSON."""

CA_ROLE = "ca"


def _utc_ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


@dataclass(frozen=True)
class Certificate:
    """A parsed identity or CA certificate."""

    pem: str
    """The certificate in PEM."""
    org: str
    """Organisation id (subject O)."""
    role: str
    """Role within the organisation (subject OU); ``ca`` for a CA certificate."""
    name: str
    """Identity name (subject CN)."""
    attributes: Mapping[str, str]
    """Attributes from the private extension (empty if absent)."""
    public_key: bytes
    """The subject's raw 32-byte Ed25519 public key."""
    serial: int
    """Serial number given by the issuing CA."""
    not_before_ms: int
    """Start of validity, Unix milliseconds."""
    not_after_ms: int
    """End of validity, Unix milliseconds."""
    is_ca: bool
    """True for a CA certificate (basic constraints CA=true)."""
    fingerprint: str
    """Hex SHA-256 of the DER encoding."""
    _cert: x509.Certificate = field(repr=False, compare=False)

    def valid_at(self, ms: int) -> bool:
        """True if ``ms`` (Unix milliseconds) lies inside the validity window."""
        return self.not_before_ms <= ms <= self.not_after_ms


def _name(org: str, role: str, name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )


def issue_ca_certificate(
    *, org: str, key: SigningKey, not_before_ms: int, not_after_ms: int
) -> str:
    """A self-signed CA certificate for organisation ``org``, as PEM."""
    subject = _name(org, CA_ROLE, f"{org} CA")
    public = key.key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(1)
        .not_valid_before(_from_ms(not_before_ms))
        .not_valid_after(_from_ms(not_after_ms))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    cert = builder.sign(key.key, algorithm=None)
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def issue_identity_certificate(
    *,
    ca_pem: str,
    ca_key: SigningKey,
    role: str,
    name: str,
    public_key: bytes,
    not_before_ms: int,
    not_after_ms: int,
    serial: int,
    attributes: Mapping[str, str] | None = None,
) -> str:
    """An identity certificate signed by the CA of ``ca_pem``, as PEM."""
    ca = load_certificate(ca_pem)
    if not ca.is_ca:
        raise CertificateError("issuer certificate is not a CA")
    if role == CA_ROLE:
        raise CertificateError("role 'ca' is reserved for CA certificates")
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(ca.org, role, name))
        .issuer_name(ca._cert.subject)
        .public_key(Ed25519PublicKey.from_public_bytes(public_key))
        .serial_number(serial)
        .not_valid_before(_from_ms(not_before_ms))
        .not_valid_after(_from_ms(not_after_ms))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(ATTRIBUTES_OID, canonical_json(dict(attributes or {}))),
            critical=False,
        )
    )
    cert = builder.sign(ca_key.key, algorithm=None)
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _subject_field(cert: x509.Certificate, oid: x509.ObjectIdentifier, what: str) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    if len(values) != 1 or not isinstance(values[0].value, str) or not values[0].value:
        raise CertificateError(f"certificate subject must hold exactly one {what}")
    return values[0].value


def _attributes(cert: x509.Certificate) -> Mapping[str, str]:
    try:
        ext = cert.extensions.get_extension_for_oid(ATTRIBUTES_OID)
    except x509.ExtensionNotFound:
        return MappingProxyType({})
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise CertificateError("attribute extension is malformed")
    try:
        parsed = json.loads(value.value)
    except ValueError as exc:
        raise CertificateError("attribute extension is not JSON") from exc
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise CertificateError("attributes must be a JSON object of strings")
    return MappingProxyType(parsed)


def load_certificate(pem: str | bytes) -> Certificate:
    """Parse a PEM certificate of ours; raise CertificateError if it is not one."""
    try:
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        cert = x509.load_pem_x509_certificate(data)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"not a PEM certificate: {exc}") from exc
    try:
        public = cert.public_key()
    except ValueError as exc:
        raise CertificateError(f"unreadable public key: {exc}") from exc
    if not isinstance(public, Ed25519PublicKey):
        raise CertificateError("certificate key is not Ed25519")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    except ValueError as exc:
        raise CertificateError(f"malformed extensions: {exc}") from exc
    der = cert.public_bytes(serialization.Encoding.DER)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    return Certificate(
        pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        org=_subject_field(cert, NameOID.ORGANIZATION_NAME, "organisation (O)"),
        role=_subject_field(cert, NameOID.ORGANIZATIONAL_UNIT_NAME, "role (OU)"),
        name=_subject_field(cert, NameOID.COMMON_NAME, "name (CN)"),
        attributes=_attributes(cert),
        public_key=public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        serial=cert.serial_number,
        not_before_ms=_utc_ms(cert.not_valid_before_utc),
        not_after_ms=_utc_ms(cert.not_valid_after_utc),
        is_ca=is_ca,
        fingerprint=digest.finalize().hex(),
        _cert=cert,
    )


def verify_issued_by(cert: Certificate, ca: Certificate) -> None:
    """Return None if ``ca`` issued ``cert``; raise CertificateError otherwise."""
    if not ca.is_ca:
        raise CertificateError("issuer is not a CA certificate")
    if cert._cert.issuer != ca._cert.subject:
        raise CertificateError(f"certificate was not issued by the CA of {ca.org}")
    if cert.org != ca.org:
        raise CertificateError(f"certificate org {cert.org!r} differs from its CA's {ca.org!r}")
    ca_public = ca._cert.public_key()
    if not isinstance(ca_public, Ed25519PublicKey):
        raise CertificateError("CA key is not Ed25519")
    try:
        ca_public.verify(cert._cert.signature, cert._cert.tbs_certificate_bytes)
    except InvalidSignature as exc:
        raise CertificateError("certificate signature does not verify against its CA") from exc
