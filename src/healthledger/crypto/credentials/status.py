"""What a verifier knows about revocations: a cached status source and its age.

- DCC: revoked certificates by the SHA-256 of their unique certificate identifier
  (the DCC revocation list's ``UCI`` hash type);
- SMART Health Cards: each issuer key's revocation list (``crl/<kid>.json``: revoked
  ``rid`` values, each optionally with the time before which cards are revoked);
- SD-JWT VC: IETF Token Status Lists by ``uri`` (``bits`` per index; 0 = valid).

``fetched_at`` dates the cache; the verdict states its age and the policy decides
whether a list older than ``Policy.max_status_age`` refuses or only warns.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from healthledger.crypto.errors import MalformedEncoding
from healthledger.crypto.jose import b64url_decode, b64url_encode


@dataclass(frozen=True)
class ShcRevocations:
    """One SMART Health Cards issuer key's revocation list (method ``rid``)."""

    kid: str
    ctr: int
    rids: Mapping[str, int | None]
    """Revoked ``rid`` to the time (Unix seconds) before which its cards are revoked
    (None: all of them)."""

    @classmethod
    def from_json(cls, crl: object) -> ShcRevocations:
        """Parse ``crl/<kid>.json``."""
        if not isinstance(crl, Mapping) or not isinstance(crl.get("kid"), str):
            raise MalformedEncoding("status", "a revocation list is an object with a kid")
        if crl.get("method", "rid") != "rid" or not isinstance(crl.get("rids"), list):
            raise MalformedEncoding("status", "a revocation list holds rids (method rid)")
        rids: dict[str, int | None] = {}
        for entry in crl["rids"]:
            if not isinstance(entry, str):
                raise MalformedEncoding("status", "a revoked rid is a string")
            rid, _, stamp = entry.partition(".")
            if stamp and not stamp.isdigit():
                raise MalformedEncoding("status", f"revoked rid {entry!r} has a bad timestamp")
            rids[rid] = int(stamp) if stamp else None
        ctr = crl.get("ctr", 0)
        return cls(crl["kid"], ctr if isinstance(ctr, int) else 0, rids)

    def revokes(self, rid: str, nbf: float) -> bool:
        """Whether a card with ``rid`` issued at ``nbf`` is revoked."""
        if rid not in self.rids:
            return False
        before = self.rids[rid]
        return before is None or nbf < before


@dataclass(frozen=True)
class TokenStatusList:
    """An IETF Token Status List's ``status_list``: ``bits`` (1, 2, 4 or 8) per entry,
    least significant first, the whole list zlib-compressed in ``lst`` (base64url)."""

    bits: int
    entries: bytes
    """The decompressed list."""

    MAX_BYTES = 16 * 1024 * 1024

    @classmethod
    def from_json(cls, value: object) -> TokenStatusList:
        """Parse ``{"bits": 1, "lst": "<base64url zlib>"}``."""
        if not isinstance(value, Mapping) or value.get("bits") not in (1, 2, 4, 8):
            raise MalformedEncoding("status", "a status list has bits 1, 2, 4 or 8 and lst")
        raw = b64url_decode(str(value.get("lst")), stage="status", what="lst")
        inflater = zlib.decompressobj()
        try:
            entries = inflater.decompress(raw, cls.MAX_BYTES)
        except zlib.error:
            raise MalformedEncoding("status", "a status list's lst is not zlib") from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise MalformedEncoding("status", "a status list's lst is truncated or too large")
        return cls(int(value["bits"]), entries)

    def to_json(self) -> dict[str, Any]:
        """The ``status_list`` JSON of this list."""
        return {"bits": self.bits, "lst": b64url_encode(zlib.compress(self.entries, 9))}

    def get(self, idx: int) -> int | None:
        """Entry ``idx`` (0: valid), or None past the end of the list."""
        per_byte = 8 // self.bits
        if not 0 <= idx < len(self.entries) * per_byte:
            return None
        byte = self.entries[idx // per_byte]
        return (byte >> ((idx % per_byte) * self.bits)) & ((1 << self.bits) - 1)


@dataclass(frozen=True)
class StatusSource:
    """A verifier's cached revocation knowledge."""

    fetched_at: int | None = None
    """When the cache was fetched (Unix seconds); None: never, so no age to state."""
    dcc_revoked: frozenset[str] = frozenset()
    """Hex SHA-256 of revoked DCC unique certificate identifiers."""
    shc: Mapping[str, ShcRevocations] = field(default_factory=dict)
    """Per issuer key id."""
    token_lists: Mapping[str, TokenStatusList] = field(default_factory=dict)
    """IETF Token Status Lists by uri."""

    def dcc_is_revoked(self, uci: str) -> bool:
        """Whether the DCC with unique certificate identifier ``uci`` is revoked."""
        return hashlib.sha256(uci.encode("utf-8")).hexdigest() in self.dcc_revoked

    def token_status(self, uri: str, idx: int) -> int | None:
        """Entry ``idx`` of the status list at ``uri`` (None: the list is not held)."""
        found = self.token_lists.get(uri)
        return None if found is None else found.get(idx)

    def age(self, at: int) -> int | None:
        """Seconds since the cache was fetched."""
        return None if self.fetched_at is None else at - self.fetched_at


def dcc_revocation_hash(uci: str) -> str:
    """What a DCC revocation list holds for the certificate ``uci``."""
    return hashlib.sha256(uci.encode("utf-8")).hexdigest()


def status_value(obj: Any) -> tuple[str, int] | None:
    """The ``(uri, idx)`` of an SD-JWT VC's ``status.status_list`` claim, if it has one."""
    status = obj.get("status") if isinstance(obj, Mapping) else None
    ref = status.get("status_list") if isinstance(status, Mapping) else None
    if not isinstance(ref, Mapping):
        return None
    uri, idx = ref.get("uri"), ref.get("idx")
    if not isinstance(uri, str) or not isinstance(idx, int) or isinstance(idx, bool):
        raise MalformedEncoding("status", "status.status_list needs a uri and an integer idx")
    return uri, idx


STATUS_TYPE = "healthledger-status"


def load_status(data: bytes, *, fetched_at: int) -> StatusSource:
    """A status source from a file's bytes: a cached ``healthledger-status`` document::

        {"type": "healthledger-status", "fetched_at": <Unix seconds>,
         "dcc_revoked": ["<hex SHA-256 of a UCI>", ...],
         "shc_crls": [<crl/<kid>.json>, ...],
         "token_status_lists": {"<uri>": {"bits": 1, "lst": "<base64url zlib>"}, ...}}

    or one SMART Health Cards revocation list (``crl/<kid>.json``). ``fetched_at`` dates
    a file that does not say when it was fetched (its modification time)."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedEncoding("status", "a status file is JSON") from None
    if not isinstance(value, Mapping):
        raise MalformedEncoding("status", "a status file is a JSON object")
    if value.get("type") != STATUS_TYPE:
        crl = ShcRevocations.from_json(value)
        return StatusSource(fetched_at=fetched_at, shc={crl.kid: crl})
    when = value.get("fetched_at", fetched_at)
    revoked = value.get("dcc_revoked", [])
    crls = value.get("shc_crls", [])
    lists = value.get("token_status_lists", {})
    if not isinstance(when, int) or not isinstance(revoked, list) or not isinstance(crls, list):
        raise MalformedEncoding("status", "fetched_at, dcc_revoked or shc_crls is malformed")
    if not isinstance(lists, Mapping) or not all(isinstance(h, str) for h in revoked):
        raise MalformedEncoding("status", "dcc_revoked or token_status_lists is malformed")
    parsed = [ShcRevocations.from_json(c) for c in crls]
    return StatusSource(
        fetched_at=when,
        dcc_revoked=frozenset(h.lower() for h in revoked),
        shc={c.kid: c for c in parsed},
        token_lists={str(u): TokenStatusList.from_json(v) for u, v in lists.items()},
    )
