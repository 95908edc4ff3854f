"""SMART Health Cards: a FHIR bundle in a compact JWS (ES256, raw DEFLATE, ``zip: DEF``),
carried as ``shc:/`` numeric QR text, a bare JWS or a ``.smart-health-card`` file.

Chunked QR codes (``shc:/i/n/...``, deprecated since December 2022) are accepted when
every chunk ``1..n`` is present exactly once, in any order, with a ``QR_CHUNKED``
warning, or refused under ``Policy.strict_chunks``.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from healthledger.crypto.credentials.policy import Policy
from healthledger.crypto.credentials.status import StatusSource
from healthledger.crypto.credentials.trust import TrustStore
from healthledger.crypto.credentials.verdict import Finding, Reason, Verdict, refused
from healthledger.crypto.errors import MalformedEncoding, SignatureError
from healthledger.crypto.jose import (
    CompactJws,
    decode_compact,
    sign_compact,
    verify_compact,
)

FORMAT = "shc"
PREFIX = "shc:/"
HEALTH_CARD = "https://smarthealth.cards#health-card"
MAX_PAYLOAD_BYTES = 65_536
_SINGLE = re.compile(r"shc:/([0-9]+)")
_CHUNK = re.compile(r"shc:/([0-9]+)/([0-9]+)/([0-9]+)")
_STAGE_REASON = {
    "qr": Reason.MALFORMED_QR,
    "qr_chunks": Reason.QR_CHUNKS,
    "jws": Reason.MALFORMED_JWS,
    "deflate": Reason.MALFORMED_DEFLATE,
    "payload": Reason.SCHEMA,
}


def numeric_to_jws(digits: str) -> str:
    """The JWS of a ``shc:/`` numeric body: each two digits, plus 45, are one character."""
    if len(digits) % 2:
        raise MalformedEncoding("qr", "a shc:/ numeric body has an even number of digits")
    values = [int(digits[i : i + 2]) for i in range(0, len(digits), 2)]
    if any(v > 77 for v in values):
        raise MalformedEncoding("qr", "a shc:/ digit pair is above 77")
    return "".join(chr(v + 45) for v in values)


_PAIRS = {code: f"{code - 45:02d}" for code in range(45, 123)}
"""Each character a JWS may hold ('-' to 'z', by its code) as its two digits."""


def jws_to_numeric(jws: str) -> str:
    """The ``shc:/`` text of a JWS (one QR code); MalformedEncoding for a character
    outside '-' to 'z', which no JWS holds."""
    try:
        return PREFIX + "".join(map(_PAIRS.__getitem__, jws.encode("ascii")))
    except (KeyError, UnicodeEncodeError):
        raise MalformedEncoding("jws", "a JWS holds characters '-' to 'z' only") from None


def assemble(texts: Sequence[str]) -> tuple[str, int]:
    """The compact JWS carried by ``texts`` (one ``shc:/`` QR text, every chunk of a
    chunked card in any order, a JWS, or a ``.smart-health-card`` file) and the number of
    QR chunks it came in (0: not from QR text)."""
    texts = [t.strip() for t in texts]
    if len(texts) == 1 and not texts[0].startswith(PREFIX):
        return _jws_or_file(texts[0]), 0
    if len(texts) == 1 and (m := _SINGLE.fullmatch(texts[0])):
        return numeric_to_jws(m.group(1)), 1
    chunks: dict[int, str] = {}
    total = None
    for text in texts:
        m = _CHUNK.fullmatch(text)
        if m is None:
            raise MalformedEncoding(
                "qr_chunks" if len(texts) > 1 else "qr",
                "not a shc:/ QR text (or chunk shc:/i/n/...)",
            )
        i, n = int(m.group(1)), int(m.group(2))
        if total is not None and n != total:
            raise MalformedEncoding("qr_chunks", "the chunks disagree on their number")
        total = n
        if not 1 <= i <= n or n > 99:
            raise MalformedEncoding("qr_chunks", f"chunk {i} of {n} is out of range")
        if i in chunks:
            raise MalformedEncoding("qr_chunks", f"chunk {i} is given twice")
        chunks[i] = m.group(3)
    assert total is not None
    if len(chunks) != total:
        missing = sorted(set(range(1, total + 1)) - set(chunks))
        raise MalformedEncoding("qr_chunks", f"chunk(s) {missing} of {total} are missing")
    return numeric_to_jws("".join(chunks[i] for i in range(1, total + 1))), total


def _jws_or_file(text: str) -> str:
    if not text.startswith("{"):
        return text
    try:
        card = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedEncoding("jws", "a .smart-health-card file is JSON") from None
    creds = card.get("verifiableCredential") if isinstance(card, dict) else None
    if not isinstance(creds, list) or len(creds) != 1 or not isinstance(creds[0], str):
        raise MalformedEncoding("jws", "give a .smart-health-card file holding one credential")
    return creds[0]


def inflate(data: bytes) -> bytes:
    """Raw DEFLATE (RFC 1951), bounded to MAX_PAYLOAD_BYTES."""
    inflater = zlib.decompressobj(wbits=-15)
    try:
        raw = inflater.decompress(data, MAX_PAYLOAD_BYTES)
    except zlib.error as exc:
        raise MalformedEncoding("deflate", f"broken DEFLATE stream: {exc}") from None
    if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
        raise MalformedEncoding("deflate", "the DEFLATE stream is truncated, too long or padded")
    return raw


def deflate(data: bytes) -> bytes:
    """Raw DEFLATE at the best compression."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def decode(texts: Sequence[str]) -> tuple[CompactJws, dict[str, Any], int]:
    """The JWS, its payload and its number of QR chunks; raises MalformedEncoding."""
    jws_text, chunks = assemble(texts)
    jws = decode_compact(jws_text)
    if jws.header.get("zip") != "DEF":
        raise MalformedEncoding("jws", "a health card's JWS header has zip: DEF")
    raw = inflate(jws.payload)
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedEncoding("deflate", "the inflated payload is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedEncoding("payload", "the payload is not a JSON object")
    return jws, payload, chunks


def _time(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return float(value)
    return None


def shape_problems(payload: Mapping[str, Any]) -> list[str]:
    """What the SMART Health Cards payload shape lacks (empty: nothing)."""
    problems = []
    if not isinstance(payload.get("iss"), str):
        problems.append("iss is not a URL")
    if _time(payload.get("nbf")) is None:
        problems.append("nbf is not a time")
    if "exp" in payload and _time(payload.get("exp")) is None:
        problems.append("exp is not a time")
    vc = payload.get("vc")
    if not isinstance(vc, dict):
        return [*problems, "no vc"]
    if not isinstance(vc.get("type"), list) or HEALTH_CARD not in vc["type"]:
        problems.append(f"vc.type does not name {HEALTH_CARD}")
    subject = vc.get("credentialSubject")
    bundle = subject.get("fhirBundle") if isinstance(subject, dict) else None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        problems.append("vc.credentialSubject.fhirBundle is not a FHIR Bundle")
    if "rid" in vc and not isinstance(vc["rid"], str):
        problems.append("vc.rid is not text")
    return problems


def verify(
    texts: Sequence[str],
    *,
    trust: TrustStore,
    status: StatusSource | None,
    at: int,
    policy: Policy,
) -> Verdict:
    """The verdict on a health card given as ``texts`` (see :func:`assemble`)."""
    try:
        jws, payload, chunks = decode(texts)
    except MalformedEncoding as exc:
        return refused(FORMAT, _STAGE_REASON.get(exc.stage, Reason.MALFORMED_JWS), str(exc), at=at)
    iss = payload.get("iss") if isinstance(payload.get("iss"), str) else None
    nbf, exp = _time(payload.get("nbf")), _time(payload.get("exp"))
    known: dict[str, Any] = {
        "issuer": iss,
        "kid": jws.kid,
        "issued_at": None if nbf is None else int(nbf),
        "expires_at": None if exp is None else int(exp),
    }
    if jws.alg != "ES256":
        return refused(
            FORMAT, Reason.MALFORMED_JWS, "a health card is signed ES256", at=at, **known
        )
    signer = None
    for candidate in trust.for_kid(jws.kid, issuer=iss) if jws.kid else []:
        try:
            verify_compact(jws, candidate.key)
        except SignatureError:
            continue
        signer = candidate
        break
    if signer is None:
        candidates = trust.for_kid(jws.kid, issuer=iss) if jws.kid else []
        code = Reason.SIGNATURE if candidates else Reason.UNKNOWN_ISSUER
        why = "the signature does not verify" if candidates else f"no trusted key {jws.kid}"
        return refused(FORMAT, code, f"{why} for issuer {iss}", at=at, **known)
    refusals: list[Finding] = []
    warnings: list[Finding] = []
    problems = shape_problems(payload)
    if problems:
        refusals.append(Finding(Reason.SCHEMA, "; ".join(problems)))
    if nbf is not None and at + policy.clock_skew < nbf:
        refusals.append(Finding(Reason.NOT_YET_VALID, "the card is not valid yet"))
    if exp is not None and at > exp:
        refusals.append(Finding(Reason.EXPIRED, "the card has expired"))
    if chunks > 1:
        chunked = Finding(Reason.QR_CHUNKED, f"the card came in {chunks} QR codes (deprecated)")
        (refusals if policy.strict_chunks else warnings).append(
            Finding(Reason.QR_CHUNKS, chunked.message) if policy.strict_chunks else chunked
        )
    vc: dict[str, Any] = payload["vc"] if isinstance(payload.get("vc"), dict) else {}
    rid = vc.get("rid") if isinstance(vc.get("rid"), str) else None
    age = None
    if status is not None:
        age = status.age(at)
        if age is not None and age > policy.max_status_age:
            stale = Finding(Reason.STATUS_STALE, f"the revocation list is {age} s old")
            (refusals if policy.refuse_stale_status else warnings).append(stale)
    crl = status.shc.get(jws.kid) if status is not None and jws.kid else None
    if rid is not None and crl is not None and crl.revokes(rid, nbf or 0.0):
        refusals.append(Finding(Reason.REVOKED, f"the issuer revoked rid {rid}"))
    elif rid is not None and crl is None:
        warnings.append(Finding(Reason.STATUS_UNCHECKED, "no revocation list for this key"))
    subject = vc.get("credentialSubject")
    bundle = subject.get("fhirBundle") if isinstance(subject, dict) else None
    return Verdict(
        format=FORMAT,
        refusals=tuple(refusals),
        warnings=tuple(warnings),
        checked_at=at,
        status_age=age,
        credential_id=rid,
        claims=bundle if isinstance(bundle, dict) else {},
        **known,
    )


def encode(
    bundle: Mapping[str, Any],
    *,
    key: Any,
    kid: str,
    issuer: str,
    issued_at: int,
    expires_at: int | None = None,
    rid: str | None = None,
    types: Sequence[str] = ("https://smarthealth.cards#immunization",),
) -> str:
    """The ``shc:/`` QR text of ``bundle`` signed ES256 by ``key`` under ``kid``."""
    vc: dict[str, Any] = {
        "type": [HEALTH_CARD, *types],
        "credentialSubject": {"fhirVersion": "4.0.1", "fhirBundle": dict(bundle)},
    }
    if rid is not None:
        vc["rid"] = rid
    payload: dict[str, Any] = {"iss": issuer, "nbf": issued_at, "vc": vc}
    if expires_at is not None:
        payload["exp"] = expires_at
    body = deflate(msgspec.json.encode(payload))
    return jws_to_numeric(sign_compact({"zip": "DEF", "kid": kid}, body, key))
