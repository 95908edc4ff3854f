"""``ctx``: a contract's only window on the world (ARCHITECTURE.md section 3).

State reads are recorded with the version seen (for MVCC), writes are buffered
into the read/write set, events are collected and delivered only if the
transaction commits valid. No clocks, randomness or I/O: the transaction's own
id and timestamp stand in for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from healthledger.contracts.errors import AccessDenied, StateError
from healthledger.contracts.policy import parse_policy
from healthledger.crypto.canonical import check_canonical
from healthledger.crypto.errors import CanonicalEncodingError
from healthledger.ledger.errors import InvalidTransaction
from healthledger.ledger.state import StateView
from healthledger.ledger.transaction import (
    ContractEvent,
    KeyRead,
    KeyWrite,
    PrivateWrite,
    ReadWriteSet,
    Version,
    check_key,
)

KEY_POLICY_PREFIX = "~policy/"
"""Reserved key prefix holding state-based (per-key) endorsement policies."""
MEMBERSHIP_NAMESPACE = "membership"
"""Namespace of the membership contract, whose organisation records every contract may read."""
MAX_RANGE = 10_000
MAX_EVENTS = 1_000


@dataclass(frozen=True)
class Caller:
    """Who signed the proposal."""

    id: str
    org: str
    role: str
    attributes: Mapping[str, str]


class PrivateData(Protocol):
    """The endorsing peer's access to private-data collections (its org's vault)."""

    def read(self, collection: str, key: str) -> Any | None:
        """The committed private value, or None (also if this peer may not read it)."""
        ...

    def stage(self, tx_id: str, collection: str, key: str, value: Any) -> PrivateWrite:
        """Hold ``value`` until ``tx_id`` commits and return its on-chain commitment."""
        ...


DeclaredQuery = Callable[[str, str, dict[str, Any], "Context"], Any]
"""Runs another contract's query for a calling context (the runtime provides it)."""


class Context:
    """The window a contract function sees for one call."""

    def __init__(
        self,
        *,
        namespace: str,
        state: StateView,
        caller: Caller,
        tx_id: str,
        timestamp: int,
        readonly: bool,
        private: PrivateData | None = None,
        transient: Mapping[str, Any] | None = None,
        queries: DeclaredQuery | None = None,
    ) -> None:
        self._ns = namespace
        self._queries = queries
        self._transient: Mapping[str, Any] = transient or {}
        self._state = state
        self._caller = caller
        self._tx_id = tx_id
        self._timestamp = timestamp
        self._readonly = readonly
        self._private = private
        self._reads: dict[str, Version | None] = {}
        self._foreign_reads: dict[tuple[str, str], Version | None] = {}
        self._writes: dict[str, KeyWrite] = {}
        self._private_writes: list[PrivateWrite] = []
        self._events: list[ContractEvent] = []

    @property
    def caller(self) -> Caller:
        """The identity that signed the proposal."""
        return self._caller

    @property
    def transient(self) -> Mapping[str, Any]:
        """Private inputs sent to the endorser beside the proposal (never on chain)."""
        return self._transient

    @property
    def tx_id(self) -> str:
        """This transaction's id."""
        return self._tx_id

    @property
    def timestamp(self) -> int:
        """The proposal's timestamp, Unix milliseconds (the only clock a contract has)."""
        return self._timestamp

    def require_role(self, *roles: str, org: str | None = None) -> None:
        """Raise AccessDenied unless the caller has one of ``roles`` (in ``org`` if given)."""
        if self._caller.role not in roles:
            raise AccessDenied(
                f"{self._caller.id} has role {self._caller.role!r}; needs one of {list(roles)}"
            )
        if org is not None and self._caller.org != org:
            raise AccessDenied(f"{self._caller.id} is not of organisation {org!r}")

    def get(self, key: str) -> Any | None:
        """The value of ``key`` (this call's own writes included), or None."""
        _check_user_key(key)
        return self._get(key)

    def _get(self, key: str) -> Any | None:
        if key in self._writes:
            write = self._writes[key]
            return None if write.delete else write.value
        current = self._state.get_state(self._ns, key)
        if key not in self._reads:
            self._reads[key] = None if current is None else current.version
        return None if current is None else current.value

    def organisation(self, org: str) -> dict[str, Any] | None:
        """The consortium's record of member ``org`` (its kind, attributes and GS1
        company prefixes), or None if it is no member.

        Read from the membership namespace and MVCC-checked like any read, so a
        transaction endorsed against a record that changes before it commits fails."""
        key = f"org/{org}"
        _check_user_key(key)
        if self._ns == MEMBERSHIP_NAMESPACE:
            value = self._get(key)
        else:
            current = self._state.get_state(MEMBERSHIP_NAMESPACE, key)
            self._foreign_reads.setdefault(
                (MEMBERSHIP_NAMESPACE, key), None if current is None else current.version
            )
            value = None if current is None else current.value
        return value if isinstance(value, dict) else None

    def members(self) -> list[str]:
        """The ids of the consortium's member organisations, from the membership
        namespace: each record read is MVCC-checked (a member admitted meanwhile is not
        detected, as with ``range``). For approvals by a majority of the members."""
        if self._ns == MEMBERSHIP_NAMESPACE:
            return [v["id"] for _, v in self.range("org/", "org0", limit=MAX_RANGE)]
        out = []
        for key, item in self._state.range_state(MEMBERSHIP_NAMESPACE, "org/", "org0", MAX_RANGE):
            self._foreign_reads.setdefault((MEMBERSHIP_NAMESPACE, key), item.version)
            out.append(str(item.value["id"]))
        return out

    def ask(self, contract: str, function: str, args: Mapping[str, Any]) -> Any:
        """The result of ``contract``'s declared query ``function`` run as this caller
        over this call's state: how one application's contract reads another's data.
        Every key the query reads is MVCC-checked as a read of this transaction."""
        if self._queries is None or contract == self._ns:
            raise AccessDenied(f"{self._ns} cannot ask {contract}.{function} here")
        return self._queries(contract, function, dict(args), self)

    def absorb_reads(self, reads: Iterable[KeyRead]) -> None:
        """Count ``reads`` (another contract's, made for this call) as this call's."""
        for read in reads:
            self._foreign_reads.setdefault((read.ns, read.key), read.version)

    def put(self, key: str, value: Any) -> None:
        """Set ``key`` to ``value`` (canonical JSON: no floats)."""
        _check_user_key(key)
        self._put(key, value)

    def _put(self, key: str, value: Any) -> None:
        self._check_writable()
        if value is None:
            raise StateError("None is not a state value: use delete()")
        try:
            check_canonical(value)
        except CanonicalEncodingError as exc:
            raise StateError(f"value for {key!r}: {exc}") from exc
        self._writes[key] = KeyWrite(self._ns, key, value)

    def delete(self, key: str) -> None:
        """Delete ``key``."""
        _check_user_key(key)
        self._check_writable()
        self._writes[key] = KeyWrite(self._ns, key, delete=True)

    def range(self, start: str, end: str = "", *, limit: int = 1000) -> list[tuple[str, Any]]:
        """Keys in [start, end) in order with their values; end "" is unbounded.

        Each key returned is recorded as read; keys inserted into the range by
        another transaction before this one commits are not detected (no
        phantom protection)."""
        if not 1 <= limit <= MAX_RANGE:
            raise StateError(f"range limit must be 1..{MAX_RANGE}")
        result: dict[str, Any] = {}
        for key, item in self._state.range_state(self._ns, start, end, limit + 1):
            if key.startswith("~"):
                continue
            self._reads.setdefault(key, item.version)
            result[key] = item.value
        for key, write in self._writes.items():
            if key >= start and (not end or key < end):
                if write.delete:
                    result.pop(key, None)
                else:
                    result[key] = write.value
        return sorted(result.items())[:limit]

    def history(self, key: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """Committed changes of ``key``, newest first (not MVCC-checked)."""
        _check_user_key(key)
        return [
            {
                "tx_id": h.tx_id,
                "height": h.version[0],
                "timestamp": h.timestamp,
                "value": h.value,
                "deleted": h.deleted,
            }
            for h in self._state.key_history(self._ns, key, min(limit, MAX_RANGE))
        ]

    def emit(self, name: str, payload: Any) -> None:
        """Emit an event, delivered only if this transaction commits valid."""
        self._check_writable()
        if len(self._events) >= MAX_EVENTS:
            raise StateError(f"at most {MAX_EVENTS} events per transaction")
        try:
            check_canonical(payload)
        except CanonicalEncodingError as exc:
            raise StateError(f"event {name!r}: {exc}") from exc
        self._events.append(ContractEvent(name, payload))

    def set_key_policy(self, key: str, policy: str) -> None:
        """Require ``policy`` (as well as the function's) for every later write of ``key``."""
        _check_user_key(key)
        parse_policy(policy)
        self._put(KEY_POLICY_PREFIX + key, policy)

    def key_policy(self, key: str) -> str | None:
        """The state-based policy on ``key``, or None."""
        _check_user_key(key)
        value = self._get(KEY_POLICY_PREFIX + key)
        return value if isinstance(value, str) else None

    def put_private(self, collection: str, key: str, value: Any) -> None:
        """Store ``value`` in ``collection``'s vault; only a salted hash goes on chain."""
        self._check_writable()
        _check_user_key(key)
        if self._private is None:
            raise AccessDenied("this peer holds no private-data vault")
        try:
            check_canonical(value)
        except CanonicalEncodingError as exc:
            raise StateError(f"private value for {key!r}: {exc}") from exc
        self._private_writes.append(self._private.stage(self._tx_id, collection, key, value))

    def get_private(self, collection: str, key: str) -> Any | None:
        """A committed private value this peer may read, or None."""
        _check_user_key(key)
        if self._private is None:
            return None
        return self._private.read(collection, key)

    def _check_writable(self) -> None:
        if self._readonly:
            raise AccessDenied("a query cannot change state or emit events")

    def rwset(self) -> ReadWriteSet:
        """The read/write set this call produced."""
        reads = {(self._ns, k): v for k, v in self._reads.items()} | self._foreign_reads
        return ReadWriteSet(
            reads=tuple(KeyRead(ns, k, v) for (ns, k), v in sorted(reads.items())),
            writes=tuple(self._writes[k] for k in sorted(self._writes)),
            private=tuple(self._private_writes),
        )

    def events(self) -> tuple[ContractEvent, ...]:
        """The events this call emitted."""
        return tuple(self._events)


def _check_user_key(key: object) -> None:
    try:
        check_key(key)
    except InvalidTransaction as exc:
        raise StateError(str(exc)) from exc
    assert isinstance(key, str)
    if key.startswith("~"):
        raise StateError("keys starting with '~' are reserved")
