"""World state views: versioned keys, per-key history, range queries."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from healthledger.ledger.transaction import Version


@dataclass(frozen=True)
class VersionedValue:
    """A state value and the version that wrote it."""

    value: Any
    version: Version


@dataclass(frozen=True)
class HistoryEntry:
    """One change of a key: who wrote it, when, and the value (None if deleted)."""

    tx_id: str
    version: Version
    timestamp: int
    value: Any
    deleted: bool


class StateView(Protocol):
    """Read access to world state at one point of the chain."""

    def get_state(self, ns: str, key: str) -> VersionedValue | None:
        """The current value of ``key`` in namespace ``ns``, or None."""
        ...

    def range_state(
        self, ns: str, start: str, end: str, limit: int
    ) -> Iterator[tuple[str, VersionedValue]]:
        """Keys in [start, end) in key order (end "" means no upper bound)."""
        ...

    def key_history(self, ns: str, key: str, limit: int) -> list[HistoryEntry]:
        """Changes of ``key``, newest first."""
        ...


@runtime_checkable
class BulkStateView(StateView, Protocol):
    """A state view that reads many keys in one round trip (a ledger store)."""

    def get_states(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], VersionedValue]:
        """Current values of several (namespace, key) pairs; absent keys are left out."""
        ...


@dataclass(frozen=True)
class StateUpdate:
    """One write a valid transaction applies."""

    ns: str
    key: str
    value: Any
    deleted: bool
    version: Version
    tx_id: str


class OverlayState:
    """Committed state plus the writes of earlier valid transactions in the same block."""

    def __init__(self, base: StateView) -> None:
        self._base = base
        self._pending: dict[tuple[str, str], VersionedValue | None] = {}
        self._written: dict[str, list[str]] = {}
        """Keys written so far, sorted, per namespace."""
        self._known: dict[tuple[str, str], VersionedValue | None] = {}
        """Committed values read ahead (``prefetch``)."""

    def prefetch(
        self, keys: Iterable[tuple[str, str]], found: Mapping[tuple[str, str], VersionedValue]
    ) -> None:
        """Take ``found`` as the committed values of ``keys`` (absent: no value), read
        from the base in one round trip instead of one read each."""
        for pair in keys:
            self._known[pair] = found.get(pair)

    @property
    def base(self) -> StateView:
        """The committed state under the block's writes."""
        return self._base

    def touches(self, ns: str) -> bool:
        """True if a transaction applied so far wrote namespace ``ns``."""
        return ns in self._written

    def wrote_between(self, ns: str, start: str, end: str) -> bool:
        """True if a transaction applied so far wrote a key of ``ns`` in [start, end)."""
        keys = self._written.get(ns)
        if not keys:
            return False
        i = bisect.bisect_left(keys, start)
        return i < len(keys) and keys[i] < end

    def get_state(self, ns: str, key: str) -> VersionedValue | None:
        """The value as of the transactions applied so far."""
        pending = self._pending.get((ns, key), _MISSING)
        if pending is not _MISSING:
            return pending  # type: ignore[return-value]
        known = self._known.get((ns, key), _MISSING)
        if known is not _MISSING:
            return known  # type: ignore[return-value]
        return self._base.get_state(ns, key)

    def range_state(
        self, ns: str, start: str, end: str, limit: int
    ) -> Iterator[tuple[str, VersionedValue]]:
        """Merge committed keys with pending writes, in key order."""
        merged: dict[str, VersionedValue | None] = {
            k: v for k, v in self._base.range_state(ns, start, end, limit + len(self._pending))
        }
        for (pns, pkey), value in self._pending.items():
            if pns == ns and pkey >= start and (not end or pkey < end):
                merged[pkey] = value
        count = 0
        for key in sorted(merged):
            item = merged[key]
            if item is None:
                continue
            yield key, item
            count += 1
            if count >= limit:
                return

    def key_history(self, ns: str, key: str, limit: int) -> list[HistoryEntry]:
        """History as committed (pending writes are not history yet)."""
        return self._base.key_history(ns, key, limit)

    def apply(self, update: StateUpdate) -> None:
        """Make ``update`` visible to later transactions of the block."""
        pair = (update.ns, update.key)
        if pair not in self._pending:
            bisect.insort(self._written.setdefault(update.ns, []), update.key)
        self._pending[pair] = (
            None if update.deleted else VersionedValue(update.value, update.version)
        )


_MISSING = object()
