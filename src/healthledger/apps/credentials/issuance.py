"""Issuing one record (a vaccination, a test result, a recovery) as an EU DCC, a SMART
Health Card and an SD-JWT VC, all signed by the issuer's document-signing key (ES256)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from healthledger.apps.credentials.records import (
    VCT,
    Record,
    Recovery,
    dcc_payload,
    fhir_bundle,
    kind,
    shc_types,
    vc_claims,
)
from healthledger.crypto.credentials import dcc, sdjwt_vc, shc
from healthledger.crypto.credentials.dcc import KEY_USAGE_OIDS
from healthledger.crypto.jose import Jwk, b64url_encode
from healthledger.errors import HealthledgerError


class SignerFileError(HealthledgerError):
    """A signer folder lacks its key or certificate, or they do not fit each other."""


@dataclass(frozen=True)
class Signer:
    """An issuer's document-signing key, its certificate and its public identifiers."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    issuer: str
    """The issuer's URL (``iss``); its JWKS is served at ``/.well-known/jwks.json``."""
    country: str

    @functools.cached_property
    def jwk(self) -> Jwk:
        """The public JWK (kid: its RFC 7638 thumbprint), for SHC and SD-JWT VC."""
        return Jwk.of(self.key.public_key(), use="sig", alg="ES256")

    @functools.cached_property
    def kid(self) -> str:
        """The JWK's RFC 7638 thumbprint: the ``kid`` of its SHC and SD-JWT VC."""
        return self.jwk.thumbprint()

    def jwks(self) -> dict[str, Any]:
        """The issuer's JWKS."""
        return {"keys": [dict(self.jwk.members)]}

    @classmethod
    def load(cls, folder: Path) -> Signer:
        """Read ``key.pem``, ``certificate.pem`` and ``signer.json`` from ``folder``."""
        try:
            key = serialization.load_pem_private_key((folder / "key.pem").read_bytes(), None)
            cert = x509.load_pem_x509_certificate((folder / "certificate.pem").read_bytes())
            about = json.loads((folder / "signer.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError) as exc:
            raise SignerFileError(f"{folder} is not a signer folder: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.key_size != 256:
            raise SignerFileError("the signer's key is not a P-256 key")
        if cert.public_key() != key.public_key():
            raise SignerFileError("the certificate is not the key's")
        return cls(key, cert, str(about.get("issuer")), str(about.get("country")))

    def save(self, folder: Path) -> None:
        """Write the signer to ``folder`` (the key readable by its owner only)."""
        folder.mkdir(parents=True, exist_ok=True)
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        key_path = folder / "key.pem"
        key_path.touch(mode=0o600)
        key_path.write_bytes(pem)
        cert = self.certificate.public_bytes(serialization.Encoding.PEM)
        (folder / "certificate.pem").write_bytes(cert)
        about = {"issuer": self.issuer, "country": self.country}
        (folder / "signer.json").write_text(json.dumps(about, indent=1) + "\n")
        (folder / "jwks.json").write_text(json.dumps(self.jwks(), indent=1) + "\n")


def new_signer(*, issuer: str, country: str, name: str, now: dt.datetime, days: int) -> Signer:
    """A fresh P-256 document signer with a self-signed certificate valid ``days`` days,
    allowed (extended key usage) to sign vaccination, test and recovery certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = signer_certificate(key, country=country, name=name, now=now, days=days)
    return Signer(key, cert, issuer, country)


def signer_certificate(
    key: ec.EllipticCurvePrivateKey, *, country: str, name: str, now: dt.datetime, days: int
) -> x509.Certificate:
    """A self-signed document-signer certificate of ``key`` valid ``days`` days, allowed
    (extended key usage) to sign vaccination, test and recovery certificates."""
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, country),
        x509.NameAttribute(NameOID.COMMON_NAME, name),
    ])  # fmt: skip
    usages = [x509.ObjectIdentifier(min(oids)) for oids in KEY_USAGE_OIDS.values()]
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .sign(key, hashes.SHA256())
    )


def rid_of(uci: str) -> str:
    """A SMART Health Card's revocation id for a certificate: 16 base64url characters of
    the SHA-256 of its unique identifier, so the id says nothing about the holder."""
    return b64url_encode(hashlib.sha256(uci.encode()).digest()[:12])


def issue_all(
    record: Record,
    signer: Signer,
    *,
    now: int,
    valid_days: int,
    holder: Jwk | None,
    status: tuple[str, int] | None = None,
) -> dict[str, str]:
    """The record as ``dcc``, ``shc`` (not for a recovery: SMART Health Cards define no
    recovery card) and ``sd-jwt-vc`` texts, issued at ``now``; the SD-JWT VC names its
    entry ``status`` (uri, index) of an IETF Token Status List, and its ``jti`` is the
    record's unique certificate identifier."""
    expires = now + valid_days * 86_400
    listed: dict[str, Any] = {} if status is None else {
        "jti": record.uci, "status": {"status_list": {"uri": status[0], "idx": status[1]}}
    }  # fmt: skip
    issued = {
        "dcc": dcc.encode(
            dcc_payload(record), key=signer.key, certificate=signer.certificate,
            issuer=signer.country, issued_at=now, expires_at=expires,
        ),
        "sd-jwt-vc": sdjwt_vc.issue(
            {**vc_claims(record), **listed}, key=signer.key, kid=signer.kid,
            issuer=signer.issuer, vct=VCT[kind(record)], issued_at=now, expires_at=expires,
            holder=holder,
        ),
    }  # fmt: skip
    if not isinstance(record, Recovery):
        issued["shc"] = shc.encode(
            fhir_bundle(record), key=signer.key, kid=signer.kid,
            issuer=signer.issuer, issued_at=now, expires_at=expires, rid=rid_of(record.uci),
            types=shc_types(record),
        )  # fmt: skip
    return issued
