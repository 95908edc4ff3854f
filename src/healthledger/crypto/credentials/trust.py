"""Where a verifier's trust comes from: document-signer certificates (PEM, for DCCs),
issuer JWKS (for SMART Health Cards and SD-JWT VCs) or an exported trust list.

The trust list file (``healthledger-trust-list``, version 1) is JSON::

    {"type": "healthledger-trust-list", "version": 1,
     "signers": [{"certificate": "<base64 DER>", "country": "CN"}],
     "issuers": [{"iss": "https://issuer.example", "jwks": {"keys": [...]}}]}

A file given on the command line is trusted as it is, like a PEM certificate: checking
a trust list's own signature and inclusion proof belongs to whoever fetched it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from healthledger.crypto.errors import CertificateError, MalformedEncoding
from healthledger.crypto.jose import Jwk, PublicKey

TRUST_LIST_TYPE = "healthledger-trust-list"


@dataclass(frozen=True)
class SignerKey:
    """One trusted public key."""

    key: PublicKey
    kid: str | None
    """DCC: the base64 of the first 8 bytes of the certificate's SHA-256; JOSE: the
    JWK's ``kid``. None matches any key id."""
    issuer: str | None
    """The ``iss`` the key may sign for; None: any (a JWKS given without an issuer)."""
    certificate: x509.Certificate | None = None
    """The DCC document-signer certificate (validity, extended key usage)."""


@functools.lru_cache(maxsize=256)
def dcc_kid(certificate: x509.Certificate) -> str:
    """The DCC key id of a document-signer certificate, base64 (remembered for the last
    few certificates: an issuer signs many credentials with one)."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    return base64.b64encode(hashlib.sha256(der).digest()[:8]).decode("ascii")


@dataclass(frozen=True)
class TrustStore:
    """The keys a verifier trusts."""

    keys: tuple[SignerKey, ...]

    def for_kid(self, kid: str | None, *, issuer: str | None = None) -> list[SignerKey]:
        """The keys that may have signed with ``kid`` for ``issuer``."""
        return [
            k
            for k in self.keys
            if (k.kid is None or kid is None or k.kid == kid)
            and (k.issuer is None or issuer is None or k.issuer == issuer)
        ]

    def __add__(self, other: TrustStore) -> TrustStore:
        return TrustStore(self.keys + other.keys)

    @classmethod
    def from_certificates(cls, certificates: Iterable[x509.Certificate]) -> TrustStore:
        """DCC document signers."""
        keys = []
        for cert in certificates:
            key = cert.public_key()
            if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
                raise CertificateError("a document signer's key is EC or RSA")
            keys.append(SignerKey(key, dcc_kid(cert), None, cert))
        return cls(tuple(keys))

    @classmethod
    def from_jwks(cls, jwks: object, *, issuer: str | None = None) -> TrustStore:
        """An issuer's JWKS (``{"keys": [...]}``), bound to ``issuer`` if given."""
        if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
            raise MalformedEncoding("trust", 'a JWKS is {"keys": [...]}')
        keys = []
        for member in jwks["keys"]:
            jwk = Jwk.from_json(member)
            keys.append(SignerKey(jwk.key, jwk.kid, issuer))
        return cls(tuple(keys))


def load_trust(data: bytes) -> TrustStore:
    """A trust store from a file's bytes: PEM certificates, a JWKS or a trust list."""
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise CertificateError(f"not a PEM certificate: {exc}") from None
        return TrustStore.from_certificates(certs)
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedEncoding("trust", "neither PEM certificates nor JSON") from None
    if isinstance(value, Mapping) and value.get("type") == TRUST_LIST_TYPE:
        return _trust_list(value)
    if isinstance(value, Mapping) and "keys" in value:
        return TrustStore.from_jwks(value)
    raise MalformedEncoding("trust", "JSON that is neither a JWKS nor a trust list")


def certificate_from_b64(text: object) -> x509.Certificate:
    """A DER certificate given as base64 text."""
    try:
        return x509.load_der_x509_certificate(base64.b64decode(str(text), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise CertificateError(f"not a base64 DER certificate: {exc}") from None


def _trust_list(value: Mapping[str, Any]) -> TrustStore:
    if value.get("version") != 1:
        raise MalformedEncoding("trust", f"trust list version {value.get('version')!r}")
    signers = value.get("signers", [])
    issuers = value.get("issuers", [])
    if not isinstance(signers, list) or not isinstance(issuers, list):
        raise MalformedEncoding("trust", "a trust list's signers and issuers are arrays")
    store = TrustStore.from_certificates(
        certificate_from_b64(s.get("certificate") if isinstance(s, Mapping) else None)
        for s in signers
    )
    for entry in issuers:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("iss"), str):
            raise MalformedEncoding("trust", "a trust list issuer has an iss")
        store = store + TrustStore.from_jwks(entry.get("jwks"), issuer=entry["iss"])
    return store
