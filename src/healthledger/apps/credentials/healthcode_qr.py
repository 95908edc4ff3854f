"""The health code as a short-lived signed QR code, and its offline verification.

The code shown on a holder's phone is a compact JWS (ES256, ``typ: healthcode+jwt``)
signed by the CDC, valid for ``LIFETIME_S`` seconds: the page fetches a new one each
minute, so a screenshot expires. It carries the colour, the rule version and clause
behind it and the day the colour was recorded; no name and no person id (a checkpoint
learns the colour, not who is followed where). The signing key is derived on the node
from the CDC's vault secret, so it lives only where that vault key lives; its public key
is published on chain (``healthcode.publish_code_key``) and at
``/api/v1/credentials/healthcode/jwks.json``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from healthledger.crypto.errors import CryptoError, SignatureError
from healthledger.crypto.jose import (
    Jwk,
    b64url_encode,
    decode_compact,
    json_object,
    sign_compact,
    verify_compact,
)
from healthledger.errors import HealthledgerError

LIFETIME_S = 60
"""How long one code verifies: the page shows a new one before it expires."""
LEEWAY_S = 5
"""Clock difference forgiven between the phone that shows and the one that checks."""
TYP = "healthcode+jwt"
KEY_PURPOSE = b"healthledger/credentials/healthcode-qr/v1"
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
COLOURS = ("green", "yellow", "red")


def signing_key(secret: bytes) -> ec.EllipticCurvePrivateKey:
    """The P-256 key derived from a 32-byte vault-derived secret."""
    scalar = int.from_bytes(secret, "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """The public JWK of ``key`` (kid: its RFC 7638 thumbprint)."""
    return {k: str(v) for k, v in Jwk.of(key.public_key()).members.items()}


def sign_code(
    code: Mapping[str, Any], key: ec.EllipticCurvePrivateKey, *, issuer: str, now_s: int
) -> str:
    """The QR text of a recorded ``code`` (colour, version, clause, day), valid from
    ``now_s`` for LIFETIME_S seconds."""
    payload = {
        "iss": issuer,
        "hc": code["colour"],
        "rv": code["version"],
        "cl": code["clause"],
        "since": code["day"],
        "iat": now_s,
        "exp": now_s + LIFETIME_S,
        "jti": b64url_encode(secrets.token_bytes(9)),
    }
    header = {"typ": TYP, "kid": Jwk.of(key.public_key()).kid}
    return sign_compact(header, json.dumps(payload, separators=(",", ":")).encode(), key)


@dataclass(frozen=True)
class CodeVerdict:
    """What a checkpoint learns from a scanned health code."""

    verdict: str
    """VALID, EXPIRED, NOT_YET_VALID, UNKNOWN_KEY, BAD_SIGNATURE or MALFORMED."""
    message: str
    colour: str = ""
    version: str = ""
    clause: str = ""
    issuer: str = ""
    expires_at: int = 0

    @property
    def valid(self) -> bool:
        """The code is genuine and current."""
        return self.verdict == "VALID"

    def to_json(self) -> dict[str, Any]:
        """The verdict as JSON (``--json``, the API)."""
        return {
            "verdict": self.verdict, "valid": self.valid, "message": self.message,
            "colour": self.colour, "rule_version": self.version, "clause": self.clause,
            "issuer": self.issuer, "expires_at": self.expires_at,
        }  # fmt: skip


def verify_code(text: str, keys: Mapping[str, Any], *, now_s: int) -> CodeVerdict:
    """Verify a health-code QR text against ``keys`` (a JWKS) at ``now_s``, offline."""
    try:
        jws = decode_compact(text.strip(), stage="healthcode")
        if jws.header.get("typ") != TYP:
            raise CodeRefused("MALFORMED", "not a health code (its typ is not healthcode+jwt)")
        payload = json_object(jws.payload, stage="healthcode", what="the code's payload")
        known = [k for k in keys.get("keys", []) if isinstance(k, dict) and k.get("kid") == jws.kid]
        if not known:
            raise CodeRefused("UNKNOWN_KEY", f"no published key {jws.kid!r} signs health codes")
        verify_compact(jws, Jwk.from_json(known[0]).key)
    except CodeRefused as refused:
        return CodeVerdict(refused.verdict, str(refused))
    except SignatureError as exc:
        return CodeVerdict("BAD_SIGNATURE", str(exc))
    except CryptoError as exc:
        return CodeVerdict("MALFORMED", str(exc))
    fields = (payload.get("hc"), payload.get("rv"), payload.get("cl"), payload.get("iss"))
    iat, exp = payload.get("iat"), payload.get("exp")
    if not all(isinstance(f, str) for f in fields) or payload.get("hc") not in COLOURS:
        return CodeVerdict("MALFORMED", "the code lacks its colour, rule version or issuer")
    if not isinstance(iat, int) or not isinstance(exp, int):
        return CodeVerdict("MALFORMED", "the code lacks its issue or expiry time")
    colour, version, clause, issuer = (str(f) for f in fields)

    def said(verdict: str, message: str) -> CodeVerdict:
        return CodeVerdict(verdict, message, colour, version, clause, issuer, exp)

    if now_s > exp + LEEWAY_S:
        return said("EXPIRED", f"expired {now_s - exp} s ago: an old screenshot, not a live code")
    if now_s < iat - LEEWAY_S:
        return said("NOT_YET_VALID", "issued in the future: check the clocks")
    return said("VALID", f"a {colour} code, genuine and current")


class CodeRefused(HealthledgerError):
    """A scanned code refused before its payload is read."""

    def __init__(self, verdict: str, message: str) -> None:
        super().__init__(message)
        self.verdict = verdict
