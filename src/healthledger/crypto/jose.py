"""Compact JWS (RFC 7515) and JSON Web Keys (RFC 7517, RFC 7638 thumbprints).

The algorithms health credentials use: ES256 (the one SMART Health Cards and SD-JWT VC
issuers sign with), ES384 and PS256/RS256 for verification. ``alg: none`` and
symmetric algorithms are refused: a verifier only ever holds public keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from healthledger.crypto.errors import MalformedEncoding, SignatureError

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
}
_EC_ALGS: dict[str, tuple[str, hashes.HashAlgorithm]] = {
    "ES256": ("P-256", hashes.SHA256()),
    "ES384": ("P-384", hashes.SHA384()),
}
_B64URL = re.compile(rb"[A-Za-z0-9_-]*")
"""Unpadded base64url text (a regular expression: a set test byte by byte was the
largest Python cost of decoding a presentation's disclosures)."""


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url_encode(data: bytes) -> str:
    """Base64url without padding."""
    # base64.urlsafe_b64encode's own steps, without its two Python-level calls: an
    # SD-JWT VC encodes some forty values.
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def b64url_decode(text: str, *, stage: str = "jws", what: str = "value") -> bytes:
    """The bytes of unpadded base64url ``text``; refuses any other character."""
    raw = text.encode("ascii", "replace")
    if _B64URL.fullmatch(raw) is None or len(raw) % 4 == 1:
        raise MalformedEncoding(stage, f"{what} is not base64url")
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise MalformedEncoding(stage, f"{what} is not base64url") from None


def json_object(data: bytes, *, stage: str, what: str) -> dict[str, Any]:
    """The JSON object that UTF-8 ``data`` holds; refuses anything else."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedEncoding(stage, f"{what} is not a JSON object") from None
    if not isinstance(value, dict):
        raise MalformedEncoding(stage, f"{what} is not a JSON object")
    return value


@dataclass(frozen=True)
class Jwk:
    """A public JSON Web Key."""

    key: PublicKey
    kid: str | None
    members: Mapping[str, Any]
    """The JWK as given (``kty``, ``crv``, ``x``, ``y`` or ``n``, ``e``, and the rest)."""

    @classmethod
    def from_json(cls, jwk: object) -> Jwk:
        """Load an EC (P-256, P-384) or RSA public JWK; refuses private members."""
        if not isinstance(jwk, Mapping):
            raise MalformedEncoding("jwk", "a JWK is a JSON object")
        if "d" in jwk:
            raise MalformedEncoding("jwk", "the JWK holds a private key")
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise MalformedEncoding("jwk", "a JWK's kid is a string")
        kty = jwk.get("kty")
        try:
            if kty == "EC":
                curve, size = _CURVES[str(jwk.get("crv"))]
                x = _coordinate(jwk.get("x"), size)
                y = _coordinate(jwk.get("y"), size)
                key: PublicKey = ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
            elif kty == "RSA":
                n = int.from_bytes(b64url_decode(str(jwk.get("n")), stage="jwk"), "big")
                e = int.from_bytes(b64url_decode(str(jwk.get("e")), stage="jwk"), "big")
                if n.bit_length() < 2048:
                    raise MalformedEncoding("jwk", "an RSA key of fewer than 2048 bits")
                key = rsa.RSAPublicNumbers(e, n).public_key()
            else:
                raise MalformedEncoding("jwk", f"key type {kty!r} is not supported")
        except KeyError:
            raise MalformedEncoding("jwk", f"curve {jwk.get('crv')!r} is not supported") from None
        except ValueError as exc:
            raise MalformedEncoding("jwk", f"not a valid public key: {exc}") from None
        return cls(key, kid, dict(jwk))

    @classmethod
    def of(cls, key: PublicKey, **extra: Any) -> Jwk:
        """The JWK of ``key``, its kid the RFC 7638 thumbprint unless ``extra`` names one."""
        if isinstance(key, ec.EllipticCurvePublicKey):
            crv = {256: "P-256", 384: "P-384"}[key.curve.key_size]
            size = _CURVES[crv][1]
            nums = key.public_numbers()
            members: dict[str, Any] = {
                "kty": "EC",
                "crv": crv,
                "x": b64url_encode(nums.x.to_bytes(size, "big")),
                "y": b64url_encode(nums.y.to_bytes(size, "big")),
            }
        else:
            rnums = key.public_numbers()
            members = {
                "kty": "RSA",
                "n": b64url_encode(rnums.n.to_bytes((rnums.n.bit_length() + 7) // 8, "big")),
                "e": b64url_encode(rnums.e.to_bytes((rnums.e.bit_length() + 7) // 8, "big")),
            }
        members = {**members, "kid": thumbprint(members), **extra}
        return cls(key, members["kid"], members)

    def thumbprint(self) -> str:
        """The RFC 7638 SHA-256 thumbprint, base64url."""
        return thumbprint(self.members)


def thumbprint(members: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a JWK's required members, base64url."""
    required = ("crv", "kty", "x", "y") if members.get("kty") == "EC" else ("e", "kty", "n")
    body = json.dumps({k: members.get(k) for k in required}, separators=(",", ":"))
    return b64url_encode(hashlib.sha256(body.encode()).digest())


def _coordinate(value: object, size: int) -> int:
    raw = b64url_decode(value if isinstance(value, str) else "", stage="jwk", what="x or y")
    if len(raw) != size:
        raise MalformedEncoding("jwk", "an EC coordinate of the wrong size")
    return int.from_bytes(raw, "big")


@dataclass(frozen=True)
class CompactJws:
    """A decoded compact JWS: its header, payload and what the signature covers."""

    header: Mapping[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> object:
        """The header's ``alg``."""
        return self.header.get("alg")

    @property
    def kid(self) -> str | None:
        """The header's ``kid``, if a string."""
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None


def decode_compact(text: str, *, stage: str = "jws") -> CompactJws:
    """Split and decode a compact JWS (``header.payload.signature``); raises
    :class:`MalformedEncoding` with ``stage`` for anything else."""
    parts = text.split(".")
    if len(parts) != 3:
        raise MalformedEncoding(stage, f"a compact JWS has three parts, not {len(parts)}")
    header = json_object(
        b64url_decode(parts[0], stage=stage, what="the JWS header"),
        stage=stage,
        what="the JWS header",
    )
    if "crit" in header:
        raise MalformedEncoding(stage, "the JWS header has critical extensions")
    payload = b64url_decode(parts[1], stage=stage, what="the JWS payload")
    signature = b64url_decode(parts[2], stage=stage, what="the JWS signature")
    return CompactJws(header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def verify_compact(jws: CompactJws, key: PublicKey) -> None:
    """Check ``jws``'s signature with ``key``; raises :class:`SignatureError`."""
    alg = jws.alg
    try:
        if isinstance(alg, str) and alg in _EC_ALGS and isinstance(key, ec.EllipticCurvePublicKey):
            crv, digest = _EC_ALGS[alg]
            size = _CURVES[crv][1]
            if key.curve.key_size != size * 8 or len(jws.signature) != 2 * size:
                raise SignatureError(f"an {alg} signature needs a {crv} key and {2 * size} bytes")
            r = int.from_bytes(jws.signature[:size], "big")
            s = int.from_bytes(jws.signature[size:], "big")
            key.verify(encode_dss_signature(r, s), jws.signing_input, ec.ECDSA(digest))
        elif alg == "PS256" and isinstance(key, rsa.RSAPublicKey):
            pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
            key.verify(jws.signature, jws.signing_input, pss, hashes.SHA256())
        elif alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(jws.signature, jws.signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise SignatureError(f"algorithm {alg!r} does not fit a {type(key).__name__}")
    except InvalidSignature:
        raise SignatureError("the JWS signature does not verify") from None


def sign_compact(header: Mapping[str, Any], payload: bytes, key: ec.EllipticCurvePrivateKey) -> str:
    """A compact JWS over ``payload`` with an ES256 ``key`` (``alg`` set in the header)."""
    if key.curve.key_size != 256:
        raise SignatureError("an ES256 key is a P-256 key")
    head = json.dumps({**header, "alg": "ES256"}, separators=(",", ":")).encode()
    signing_input = f"{b64url_encode(head)}.{b64url_encode(payload)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input}.{b64url_encode(signature)}"
