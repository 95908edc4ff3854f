"""SD-JWT VC (RFC 9901 SD-JWT in the ``dc+sd-jwt`` profile): every claim selectively
disclosable, optional key binding to the holder's key, status by IETF Token Status List.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from healthledger.crypto import sdjwt
from healthledger.crypto.credentials.policy import Policy
from healthledger.crypto.credentials.status import StatusSource, status_value
from healthledger.crypto.credentials.trust import TrustStore
from healthledger.crypto.credentials.verdict import Finding, Reason, Verdict, refused
from healthledger.crypto.errors import MalformedEncoding, SignatureError
from healthledger.crypto.jose import CompactJws, Jwk, PublicKey, verify_compact

FORMAT = "sd-jwt-vc"
VC_TYPES = ("dc+sd-jwt", "vc+sd-jwt")
ALWAYS_VISIBLE = ("iss", "iat", "nbf", "exp", "vct", "cnf", "status", "jti")
"""Claims an issuer never makes selectively disclosable (RFC 9901 / SD-JWT VC)."""
_STAGE_REASON = {
    "disclosure": Reason.DISCLOSURE,
    "key_binding": Reason.KEY_BINDING,
    "status": Reason.SCHEMA,
}


class _UnknownIssuer(MalformedEncoding):
    def __init__(self, message: str) -> None:
        super().__init__("issuer", message)


def _issuer_claim(jws: CompactJws) -> str | None:
    try:
        payload = json.loads(jws.payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    iss = payload.get("iss") if isinstance(payload, dict) else None
    return iss if isinstance(iss, str) else None


def verify(
    text: str, *, trust: TrustStore, status: StatusSource | None, at: int, policy: Policy
) -> Verdict:
    """The verdict on an SD-JWT VC (issued form or presentation) at Unix time ``at``."""
    fmt = FORMAT

    def issuer_key(jws: CompactJws) -> PublicKey:
        nonlocal fmt
        if jws.header.get("typ") not in VC_TYPES:
            fmt = "sd-jwt"
        candidates = trust.for_kid(jws.kid, issuer=_issuer_claim(jws))
        if len(candidates) == 1:
            return candidates[0].key  # sdjwt.verify checks the signature with it, once
        for candidate in candidates:
            try:
                verify_compact(jws, candidate.key)
            except SignatureError:
                continue
            return candidate.key
        if candidates:
            raise SignatureError("the issuer's signature does not verify")
        raise _UnknownIssuer(f"no trusted key for issuer {_issuer_claim(jws)} kid {jws.kid}")

    kb_problems: list[str] = []

    def kb_fresh(kb: Mapping[str, Any]) -> None:
        if abs(at - int(kb["iat"])) > policy.key_binding_max_age:
            kb_problems.append("the Key Binding JWT is not fresh")

    try:
        result = sdjwt.verify(
            text,
            issuer_key=issuer_key,
            audience=policy.audience,
            nonce=policy.nonce,
            require_key_binding=policy.require_key_binding,
            key_binding_check=kb_fresh,
        )
    except _UnknownIssuer as exc:
        return refused(fmt, Reason.UNKNOWN_ISSUER, str(exc), at=at)
    except SignatureError as exc:
        return refused(fmt, Reason.SIGNATURE, str(exc), at=at)
    except sdjwt.KeyBindingError as exc:
        return refused(fmt, Reason.KEY_BINDING, str(exc), at=at, detail=exc.defect)
    except MalformedEncoding as exc:
        return refused(fmt, _STAGE_REASON.get(exc.stage, Reason.MALFORMED_SD_JWT), str(exc), at=at)
    claims = result.claims
    times: dict[str, Any] = {n: claims.get(n) for n in ("iat", "nbf", "exp")}
    known: dict[str, Any] = {
        "issuer": claims.get("iss") if isinstance(claims.get("iss"), str) else None,
        "kid": result.header.get("kid") if isinstance(result.header.get("kid"), str) else None,
        "issued_at": times["iat"] if isinstance(times["iat"], int) else None,
        "expires_at": times["exp"] if isinstance(times["exp"], int) else None,
    }
    refusals = [Finding(Reason.KEY_BINDING, p, "stale") for p in kb_problems]
    warnings: list[Finding] = []
    bad_times = [n for n, v in times.items() if v is not None and not _is_int(v)]
    if bad_times or (fmt == FORMAT and not isinstance(claims.get("vct"), str)):
        refusals.append(Finding(Reason.SCHEMA, f"bad {bad_times or 'vct'}"))
    starts: list[int] = [v for n, v in times.items() if n != "exp" and _is_int(v)]
    start = max(starts, default=None)
    if start is not None and at + policy.clock_skew < start:
        refusals.append(Finding(Reason.NOT_YET_VALID, "the credential is not valid yet"))
    if _is_int(times["exp"]) and at > times["exp"]:
        refusals.append(Finding(Reason.EXPIRED, "the credential has expired"))
    age = None
    try:
        reference = status_value(claims)
    except MalformedEncoding as exc:
        refusals.append(Finding(Reason.SCHEMA, str(exc)))
        reference = None
    if reference is not None:
        value = None if status is None else status.token_status(*reference)
        age = None if status is None else status.age(at)
        if value is None:
            warnings.append(Finding(Reason.STATUS_UNCHECKED, f"no status list {reference[0]}"))
        elif value != 0:
            refusals.append(Finding(Reason.REVOKED, f"status entry {reference[1]} is {value}"))
        if age is not None and age > policy.max_status_age:
            stale = Finding(Reason.STATUS_STALE, f"the status list is {age} s old")
            (refusals if policy.refuse_stale_status else warnings).append(stale)
    jti = claims.get("jti")
    return Verdict(
        format=fmt,
        refusals=tuple(refusals),
        warnings=tuple(warnings),
        checked_at=at,
        status_age=age,
        credential_id=jti if isinstance(jti, str) else None,
        claims=claims,
        **known,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def issue(
    claims: Mapping[str, Any],
    *,
    key: ec.EllipticCurvePrivateKey,
    kid: str,
    issuer: str,
    vct: str,
    issued_at: int,
    expires_at: int,
    holder: Jwk | None,
) -> str:
    """An SD-JWT VC of ``claims`` (each selectively disclosable), bound to ``holder``."""
    body: dict[str, Any] = {
        "iss": issuer,
        "iat": issued_at,
        "exp": expires_at,
        "vct": vct,
        **claims,
    }
    if holder is not None:
        body["cnf"] = {"jwk": {k: v for k, v in holder.members.items() if k != "kid"}}
    header = {"typ": "dc+sd-jwt", "kid": kid}
    return sdjwt.issue(body, key=key, header=header, always_visible=ALWAYS_VISIBLE)
