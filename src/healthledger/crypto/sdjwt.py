"""Selective Disclosure for JWTs (SD-JWT, RFC 9901): issue, present, verify.

An SD-JWT is an issuer-signed JWT whose disclosable claims are replaced by digests,
followed by the Disclosures the holder chooses to reveal, and optionally a Key Binding
JWT signed by the holder's key (``cnf.jwk``) over the presentation's digest
(``sd_hash``). Only SHA-256 digests (``_sd_alg: sha-256``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric import ec

from healthledger.crypto.errors import CryptoError, MalformedEncoding, SignatureError
from healthledger.crypto.jose import (
    CompactJws,
    Jwk,
    PublicKey,
    b64url_decode,
    b64url_encode,
    decode_compact,
    sign_compact,
    verify_compact,
)

KB_TYP = "kb+jwt"
MAX_DEPTH = 64
_COMPACT = msgspec.json.Encoder()
"""Compact JSON in UTF-8, members in their order: what ``json.dumps(..., separators=(",",
":"), ensure_ascii=False)`` writes, several times faster (a credential has a dozen
Disclosures)."""


class DisclosureMismatch(MalformedEncoding):
    """A Disclosure that no digest of the SD-JWT names, or one named twice."""

    def __init__(self, message: str) -> None:
        super().__init__("disclosure", message)


KB_DEFECTS = ("missing", "malformed", "typ", "no_holder_key", "signature", "sd_hash", "iat",
              "audience", "nonce", "stale")  # fmt: skip
"""The stable names of what can be wrong with a Key Binding (``KeyBindingError.defect``;
``stale`` is the verifier's judgement of ``iat``)."""


class KeyBindingError(MalformedEncoding):
    """The Key Binding JWT is missing, malformed, mis-signed or not for this verifier;
    ``defect`` names which (one of :data:`KB_DEFECTS`)."""

    def __init__(self, message: str, defect: str = "malformed") -> None:
        super().__init__("key_binding", message)
        self.defect = defect


def digest(disclosure: str) -> str:
    """The SHA-256 digest of a Disclosure (its base64url text, as ASCII), base64url."""
    return b64url_encode(hashlib.sha256(disclosure.encode("ascii")).digest())


@dataclass(frozen=True)
class Disclosure:
    """One Disclosure: a salt, a claim name (None for an array element) and a value."""

    text: str
    salt: str
    name: str | None
    value: Any

    @classmethod
    def parse(cls, text: str) -> Disclosure:
        """Decode one Disclosure; raises :class:`MalformedEncoding` (``disclosure``)."""
        raw = b64url_decode(text, stage="disclosure", what="a Disclosure")
        try:
            item = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise MalformedEncoding("disclosure", "a Disclosure is not JSON") from None
        if not isinstance(item, list) or len(item) not in (2, 3) or not isinstance(item[0], str):
            raise MalformedEncoding("disclosure", "a Disclosure is [salt, (name,) value]")
        if len(item) == 2:
            return cls(text, item[0], None, item[1])
        name = item[1]
        if not isinstance(name, str) or name in ("_sd", "..."):
            raise MalformedEncoding("disclosure", f"a Disclosure may not name {name!r}")
        return cls(text, item[0], name, item[2])

    @classmethod
    def make(cls, name: str | None, value: Any, salt: bytes) -> Disclosure:
        """A new Disclosure of ``value`` (under ``name``, None for an array element)."""
        s = b64url_encode(salt)
        item = [s, value] if name is None else [s, name, value]
        text = b64url_encode(_COMPACT.encode(item))
        return cls(text, s, name, value)


class ReservedClaimName(CryptoError, ValueError):
    """A claim to issue is named as RFC 9901 reserves: ``_sd`` or ``...`` anywhere, or
    ``_sd_alg`` at the top level. Issued, it would make an SD-JWT no verifier accepts."""


@dataclass(frozen=True)
class SdJwt:
    """A verified SD-JWT: the issuer JWT's header and the claims after disclosure."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    """The processed payload: disclosed claims in place, digests and ``_sd_alg`` removed."""
    disclosures: tuple[Disclosure, ...]
    key_binding: Mapping[str, Any] | None
    """The Key Binding JWT's payload, when the presentation carries one."""


@dataclass(frozen=True)
class Presentation:
    """An SD-JWT split into its parts (nothing verified yet)."""

    issuer_jwt: CompactJws
    disclosures: tuple[Disclosure, ...]
    kb_jwt: str | None
    """The Key Binding JWT's text, or None (the presentation ends with ``~``)."""
    presented: str
    """Everything up to and including the last ``~``: what ``sd_hash`` covers."""


def split(text: str) -> Presentation:
    """Split and decode ``<JWT>~<D1>~...~<Dn>~[<KB-JWT>]``; raises MalformedEncoding."""
    if "~" not in text:
        raise MalformedEncoding("sd_jwt", "an SD-JWT has a '~' after the issuer's JWT")
    cut = text.rindex("~") + 1
    parts = text[:cut].split("~")[:-1]
    issuer_jwt = decode_compact(parts[0], stage="sd_jwt")
    disclosures = tuple(Disclosure.parse(p) for p in parts[1:])
    kb = text[cut:] or None
    return Presentation(issuer_jwt, disclosures, kb, text[:cut])


def verify(
    text: str,
    *,
    issuer_key: Callable[[CompactJws], PublicKey],
    audience: str | None = None,
    nonce: str | None = None,
    require_key_binding: bool = False,
    key_binding_check: Callable[[Mapping[str, Any]], None] | None = None,
) -> SdJwt:
    """Verify an SD-JWT (or presentation): the issuer's signature (``issuer_key`` gives the
    key for the decoded JWT, raising when it has none), every Disclosure against a digest
    named exactly once, and the Key Binding JWT, if present or required, against
    ``cnf.jwk``, ``sd_hash``, ``audience`` and ``nonce``. ``key_binding_check`` judges its
    ``iat``. Raises :class:`SignatureError` or :class:`MalformedEncoding`."""
    parts = split(text)
    verify_compact(parts.issuer_jwt, issuer_key(parts.issuer_jwt))
    payload = _payload(parts.issuer_jwt)
    alg = payload.get("_sd_alg", "sha-256")
    if alg != "sha-256":
        raise MalformedEncoding("sd_jwt", f"digest algorithm {alg!r} is not supported")
    by_digest: dict[str, Disclosure] = {}
    for d in parts.disclosures:
        if by_digest.setdefault(digest(d.text), d) is not d:
            raise DisclosureMismatch("the same Disclosure is presented twice")
    seen: set[str] = set()
    claims = _process(payload, by_digest, seen, 0)
    unused = set(by_digest) - seen
    if unused:
        raise DisclosureMismatch(f"{len(unused)} Disclosure(s) match no digest of the SD-JWT")
    assert isinstance(claims, dict)
    claims.pop("_sd_alg", None)
    kb = None
    if parts.kb_jwt is not None:
        kb = _key_binding(parts, payload, audience, nonce)
        if key_binding_check is not None:
            key_binding_check(kb)
    elif require_key_binding:
        raise KeyBindingError("the presentation has no Key Binding JWT", "missing")
    return SdJwt(parts.issuer_jwt.header, claims, parts.disclosures, kb)


def _payload(jws: CompactJws) -> dict[str, Any]:
    try:
        value = json.loads(jws.payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedEncoding("sd_jwt", "the issuer JWT's payload is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedEncoding("sd_jwt", "the issuer JWT's payload is not a JSON object")
    return value


def _claim(digest_value: object, seen: set[str]) -> str:
    if not isinstance(digest_value, str):
        raise MalformedEncoding("sd_jwt", "a digest is not a string")
    if digest_value in seen:
        raise DisclosureMismatch("a digest appears twice in the SD-JWT")
    seen.add(digest_value)
    return digest_value


def _process(value: Any, disclosures: Mapping[str, Disclosure], seen: set[str], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise MalformedEncoding("sd_jwt", "the SD-JWT nests too deeply")
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        digests = value.get("_sd", [])
        if not isinstance(digests, list):
            raise MalformedEncoding("sd_jwt", "_sd is not an array")
        for key, item in value.items():
            if key != "_sd":
                out[key] = _process(item, disclosures, seen, depth + 1)
        for d in digests:
            found = disclosures.get(_claim(d, seen))
            if found is None:
                continue  # a decoy digest
            if found.name is None:
                raise DisclosureMismatch("an array-element Disclosure is named in an object")
            if found.name in out:
                raise DisclosureMismatch(f"the disclosed claim {found.name!r} already exists")
            out[found.name] = _process(found.value, disclosures, seen, depth + 1)
        return out
    if isinstance(value, list):
        items: list[Any] = []
        for item in value:
            if isinstance(item, dict) and "..." in item:
                if len(item) != 1:
                    raise MalformedEncoding("sd_jwt", "an array digest object has other members")
                found = disclosures.get(_claim(item["..."], seen))
                if found is None:
                    continue
                if found.name is not None:
                    raise DisclosureMismatch("an object-property Disclosure is named in an array")
                items.append(_process(found.value, disclosures, seen, depth + 1))
            else:
                items.append(_process(item, disclosures, seen, depth + 1))
        return items
    return value


def _key_binding(
    parts: Presentation, payload: Mapping[str, Any], audience: str | None, nonce: str | None
) -> Mapping[str, Any]:
    assert parts.kb_jwt is not None
    try:
        kb = decode_compact(parts.kb_jwt, stage="key_binding")
    except MalformedEncoding as exc:
        raise KeyBindingError(str(exc)) from None
    if kb.header.get("typ") != KB_TYP:
        raise KeyBindingError(f"the Key Binding JWT's typ is not {KB_TYP}", "typ")
    cnf = payload.get("cnf")
    if not isinstance(cnf, dict) or "jwk" not in cnf:
        raise KeyBindingError("the SD-JWT names no holder key (cnf.jwk)", "no_holder_key")
    try:
        holder = Jwk.from_json(cnf["jwk"])
    except MalformedEncoding as exc:
        problem = f"the holder key (cnf.jwk) is unusable: {exc}"
        raise KeyBindingError(problem, "no_holder_key") from None
    try:
        verify_compact(kb, holder.key)
    except SignatureError as exc:
        raise KeyBindingError(f"the Key Binding JWT does not verify: {exc}", "signature") from None
    try:
        claims = json.loads(kb.payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        claims = None
    if not isinstance(claims, dict):
        raise KeyBindingError("the Key Binding JWT's payload is not a JSON object")
    if claims.get("sd_hash") != b64url_encode(hashlib.sha256(parts.presented.encode()).digest()):
        raise KeyBindingError("the Key Binding JWT's sd_hash is not this presentation's", "sd_hash")
    if not isinstance(claims.get("iat"), int):
        raise KeyBindingError("the Key Binding JWT has no iat", "iat")
    if audience is not None and claims.get("aud") != audience:
        raise KeyBindingError(f"the Key Binding JWT is for {claims.get('aud')!r}", "audience")
    if nonce is not None and claims.get("nonce") != nonce:
        raise KeyBindingError("the Key Binding JWT's nonce is not the one asked for", "nonce")
    return claims


def issue(
    claims: Mapping[str, Any],
    *,
    key: ec.EllipticCurvePrivateKey,
    header: Mapping[str, Any],
    always_visible: Collection[str] = (),
    salt: Callable[[], bytes] = lambda: os.urandom(16),
) -> str:
    """An SD-JWT (``<JWT>~<D1>~...~``) of ``claims`` in which every claim, at every level
    of nested objects, is selectively disclosable except the top-level names in
    ``always_visible`` (``iss``, ``vct``, ``cnf``, dates ...)."""
    disclosures: list[Disclosure] = []

    def conceal(obj: Mapping[str, Any], top: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        digests: list[str] = []
        for name, value in obj.items():
            if name in ("_sd", "...") or (top and name == "_sd_alg"):
                raise ReservedClaimName(f"a claim may not be named {name!r} (RFC 9901 reserves it)")
            if top and name in always_visible:
                out[name] = value
                continue
            inner = conceal(value, False) if isinstance(value, Mapping) else value
            d = Disclosure.make(name, inner, salt())
            disclosures.append(d)
            digests.append(digest(d.text))
        if digests:
            out["_sd"] = sorted(digests)
        return out

    payload = {**conceal(claims, True), "_sd_alg": "sha-256"}
    body = _COMPACT.encode(payload)
    jwt = sign_compact(header, body, key)
    return "~".join([jwt, *(d.text for d in disclosures)]) + "~"


def _digests_in(value: Any) -> Iterator[str]:
    """The Disclosure digests ``value`` shows: its objects' ``_sd`` members and its
    arrays' ``{"...": digest}`` elements, at every depth."""
    if isinstance(value, Mapping):
        listed = value.get("_sd")
        if isinstance(listed, list):
            yield from (d for d in listed if isinstance(d, str))
        for name, inner in value.items():
            if name != "_sd":
                yield from _digests_in(inner)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping) and list(item) == ["..."] and isinstance(item["..."], str):
                yield item["..."]
            else:
                yield from _digests_in(item)


def present(
    sd_jwt: str,
    *,
    disclose: Callable[[Disclosure], bool],
    holder_key: ec.EllipticCurvePrivateKey | None,
    audience: str,
    nonce: str,
    issued_at: int,
) -> str:
    """A presentation of ``sd_jwt`` revealing the Disclosures ``disclose`` keeps, with a
    Key Binding JWT signed by ``holder_key`` (None: without key binding). A kept
    Disclosure nested in one not kept is left out: its digest is not shown, so it would
    reveal nothing and a verifier would refuse the presentation for it."""
    parts = split(sd_jwt)
    chosen = {digest(d.text): d for d in parts.disclosures if disclose(d)}
    shown: set[str] = set()
    pending = list(_digests_in(_payload(parts.issuer_jwt)))
    while pending:
        found = pending.pop()
        if found in chosen and found not in shown:
            shown.add(found)
            pending.extend(_digests_in(chosen[found].value))
    kept = [d.text for found, d in chosen.items() if found in shown]
    presented = "~".join([sd_jwt.split("~", 1)[0], *kept]) + "~"
    if holder_key is None:
        return presented
    sd_hash = b64url_encode(hashlib.sha256(presented.encode()).digest())
    body = {"iat": issued_at, "aud": audience, "nonce": nonce, "sd_hash": sd_hash}
    kb = json.dumps(body, separators=(",", ":")).encode()
    return presented + sign_compact({"typ": KB_TYP}, kb, holder_key)
