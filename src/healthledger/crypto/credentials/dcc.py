"""EU Digital COVID Certificate (HCERT): ``HC1:`` + Base45(zlib(COSE_Sign1(CWT))).

The CWT's claim -260 holds the DCC (JSON schema 1.3.0: ``ver``, ``nam``, ``dob`` and
exactly one of the ``v``, ``t``, ``r`` groups); its signer is a document-signer
certificate found by key id (the first 8 bytes of the certificate's SHA-256), whose
extended key usage, when it names DCC types, must name this certificate's type.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema_rs
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from healthledger.crypto.base45 import b45decode, b45encode
from healthledger.crypto.cose import CoseSign1, cbor_dumps, cbor_loads, decode_sign1, sign1
from healthledger.crypto.cose import verify_sign1 as verify_cose
from healthledger.crypto.credentials.dcc_valuesets import unknown_codes
from healthledger.crypto.credentials.policy import Policy
from healthledger.crypto.credentials.status import StatusSource
from healthledger.crypto.credentials.trust import TrustStore, dcc_kid
from healthledger.crypto.credentials.verdict import Finding, Reason, Verdict, refused
from healthledger.crypto.errors import MalformedEncoding, SignatureError

PREFIX = "HC1:"
FORMAT = "dcc"
MAX_CWT_BYTES = 65_536
"""The largest decompressed COSE message accepted (a QR code holds under 3 kB)."""
CWT_ISS, CWT_EXP, CWT_IAT, CWT_HCERT = 1, 4, 6, -260
KEY_USAGE_OIDS = {
    "t": frozenset({"1.3.6.1.4.1.1847.2021.1.1", "1.3.6.1.4.1.0.1847.2021.1.1"}),
    "v": frozenset({"1.3.6.1.4.1.1847.2021.1.2", "1.3.6.1.4.1.0.1847.2021.1.2"}),
    "r": frozenset({"1.3.6.1.4.1.1847.2021.1.3", "1.3.6.1.4.1.0.1847.2021.1.3"}),
}
"""Extended key usages that restrict a document signer to test, vaccination or recovery
certificates (the DCC's own arc and its alternate)."""
_STAGE_REASON = {
    "prefix": Reason.MALFORMED_PREFIX,
    "base45": Reason.MALFORMED_BASE45,
    "zlib": Reason.MALFORMED_ZLIB,
    "cbor": Reason.MALFORMED_CBOR,
    "cose": Reason.MALFORMED_COSE,
    "cwt": Reason.MALFORMED_CWT,
}


@dataclass(frozen=True)
class Hcert:
    """A decoded (not yet verified) health certificate."""

    message: CoseSign1
    issuer: str | None
    issued_at: int
    expires_at: int
    dcc: Any
    """The DCC as decoded from CBOR (to be checked against the schema)."""

    @property
    def kid(self) -> str | None:
        """The key id, base64."""
        kid = self.message.kid
        return None if kid is None else base64.b64encode(kid).decode("ascii")


def decode(text: str) -> Hcert:
    """Decode an ``HC1:`` text down to its CWT claims; raises :class:`MalformedEncoding`
    whose ``stage`` is ``prefix``, ``base45``, ``zlib``, ``cbor``, ``cose`` or ``cwt``."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise MalformedEncoding("prefix", f"an EU DCC starts with {PREFIX}")
    compressed = b45decode(text[len(PREFIX) :])
    if not compressed or compressed[0] & 0x0F != 8:
        raise MalformedEncoding("zlib", "the certificate is not zlib-compressed")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, MAX_CWT_BYTES)
    except zlib.error as exc:
        raise MalformedEncoding("zlib", f"broken zlib stream: {exc}") from None
    if inflater.unconsumed_tail:
        raise MalformedEncoding("zlib", f"the certificate inflates past {MAX_CWT_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise MalformedEncoding("zlib", "the zlib stream is truncated or followed by garbage")
    message = decode_sign1(raw)
    claims = cbor_loads(message.payload, stage="cwt")
    if not isinstance(claims, Mapping):
        raise MalformedEncoding("cwt", "the CWT claims are not a map")
    issuer, iat, exp = claims.get(CWT_ISS), claims.get(CWT_IAT), claims.get(CWT_EXP)
    if issuer is not None and not isinstance(issuer, str):
        raise MalformedEncoding("cwt", "the CWT issuer is not text")
    if not _is_time(iat) or not _is_time(exp):
        raise MalformedEncoding("cwt", "the CWT needs integer iat and exp")
    hcert = claims.get(CWT_HCERT)
    if not isinstance(hcert, Mapping) or 1 not in hcert:
        raise MalformedEncoding("cwt", "the CWT holds no health certificate (claim -260)")
    assert iat is not None and exp is not None
    return Hcert(message, issuer, int(iat), int(exp), hcert[1])


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def verify(
    text: str, *, trust: TrustStore, status: StatusSource | None, at: int, policy: Policy
) -> Verdict:
    """The verdict on an ``HC1:`` text at Unix time ``at``."""
    try:
        cert = decode(text)
    except MalformedEncoding as exc:
        code = _STAGE_REASON.get(exc.stage, Reason.MALFORMED_CBOR)
        return refused(FORMAT, code, str(exc), at=at)
    known: dict[str, Any] = {
        "issuer": cert.issuer,
        "kid": cert.kid,
        "issued_at": cert.issued_at,
        "expires_at": cert.expires_at,
    }
    candidates = [k for k in trust.for_kid(cert.kid) if k.kid is not None] if cert.kid else []
    if not candidates:
        why = f"no trusted document signer has key id {cert.kid}" if cert.kid else "no key id"
        return refused(FORMAT, Reason.UNKNOWN_ISSUER, why, at=at, **known)
    signer = None
    for candidate in candidates:
        try:
            verify_cose(cert.message, candidate.key)
        except SignatureError:
            continue
        signer = candidate
        break
    if signer is None:
        return refused(FORMAT, Reason.SIGNATURE, "the signature does not verify", at=at, **known)
    refusals: list[Finding] = []
    warnings: list[Finding] = []
    if at + policy.clock_skew < cert.issued_at:
        refusals.append(Finding(Reason.NOT_YET_VALID, "the certificate is issued after now"))
    if at > cert.expires_at:
        refusals.append(Finding(Reason.EXPIRED, "the certificate has expired"))
    dcc = _json(cert.dcc)
    problems = _schema_problems(dcc)
    if problems:
        refusals.append(Finding(Reason.SCHEMA, "; ".join(problems[:3])))
    groups = [g for g in ("v", "t", "r") if isinstance(dcc, dict) and g in dcc]
    if signer.certificate is not None:
        refusals += _signer_problems(signer.certificate, groups, cert.issued_at)
    entry = _entry(dcc, groups)
    uci = entry.get("ci") if isinstance(entry.get("ci"), str) else None
    age = None
    if status is not None:
        age = status.age(at)
        if uci is not None and status.dcc_is_revoked(uci):
            refusals.append(Finding(Reason.REVOKED, "the certificate identifier is revoked"))
        refusals += _stale(age, policy, warnings)
    else:
        warnings.append(Finding(Reason.STATUS_UNCHECKED, "no revocation list was given"))
    unknown = unknown_codes(entry, groups[0] if len(groups) == 1 else None)
    if unknown:
        warnings.append(Finding(Reason.VALUE_SET, f"codes outside the value sets: {unknown}"))
    return Verdict(
        format=FORMAT,
        refusals=tuple(refusals),
        warnings=tuple(warnings),
        checked_at=at,
        status_age=age,
        credential_id=uci,
        claims=dcc if isinstance(dcc, dict) else {},
        **known,
    )


def _stale(age: int | None, policy: Policy, warnings: list[Finding]) -> list[Finding]:
    if age is None or age <= policy.max_status_age:
        return []
    finding = Finding(Reason.STATUS_STALE, f"the status list is {age} s old")
    if policy.refuse_stale_status:
        return [finding]
    warnings.append(finding)
    return []


def _entry(dcc: Any, groups: list[str]) -> dict[str, Any]:
    if len(groups) != 1:
        return {}
    items = dcc[groups[0]]
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}


def _signer_problems(
    certificate: x509.Certificate, groups: list[str], issued_at: int
) -> list[Finding]:
    found = []
    signed = dt.datetime.fromtimestamp(issued_at, dt.UTC)
    if not certificate.not_valid_before_utc <= signed <= certificate.not_valid_after_utc:
        found.append(Finding(Reason.SIGNER_NOT_VALID, "signed outside the signer's validity"))
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        # A trusted signer whose extensions do not parse restricts nothing (dgc-testdata
        # CO15: a document signer with an empty extension list signs recoveries).
        return found
    oids = {o.dotted_string for o in usage}
    restricted = {g for g, allowed in KEY_USAGE_OIDS.items() if oids & allowed}
    if restricted and not set(groups) <= restricted:
        found.append(Finding(Reason.KEY_USAGE, f"the signer may sign only {sorted(restricted)}"))
    return found


def _json(value: Any, depth: int = 0) -> Any:
    """The decoded CBOR as JSON values; anything JSON cannot hold becomes a marker the
    schema refuses."""
    if depth > 32:
        return {"$unrepresentable": "nesting"}
    kind = type(value)
    if kind is str or kind is int:  # the commonest leaves, without the ABC checks below
        return value
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            return {"$unrepresentable": "non-text map key"}
        return {k: _json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v, depth + 1) for v in value]
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return value
    return {"$unrepresentable": type(value).__name__}


@functools.cache
def _validator() -> Any:
    schema = resources.files(__package__).joinpath("data/DCC.combined-schema-1.3.0.json")
    return jsonschema_rs.validator_for(json.loads(schema.read_text(encoding="utf-8")))


def _schema_problems(dcc: Any) -> list[str]:
    """What the DCC JSON schema 1.3.0 finds wrong with ``dcc`` (empty: nothing)."""
    return [
        f"{'/'.join(map(str, e.instance_path)) or 'dcc'}: {e.message[:120]}"
        for e in _validator().iter_errors(dcc)
    ]


def encode(
    dcc: Mapping[str, Any],
    *,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    issuer: str,
    issued_at: int,
    expires_at: int,
) -> str:
    """The ``HC1:`` text of ``dcc`` signed by the document signer ``key`` (ES256 for a
    P-256 key) whose certificate is ``certificate``; refuses a DCC the schema refuses."""
    problems = _schema_problems(_json(dcc))
    if problems:
        raise MalformedEncoding("schema", "; ".join(problems[:3]))
    claims = {CWT_ISS: issuer, CWT_IAT: issued_at, CWT_EXP: expires_at, CWT_HCERT: {1: dict(dcc)}}
    kid = base64.b64decode(dcc_kid(certificate))
    message = sign1(cbor_dumps(claims), key, kid=kid)
    return PREFIX + b45encode(zlib.compress(message, 9))
