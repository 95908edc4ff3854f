"""The ledger's view of membership and policies: identity resolution and the
endorsement rule used by every peer's validator (ledger.validation protocols).

A peer resolves the same few identities and contract definitions for every
transaction. A ``HeightMemo`` keeps what was derived from the committed state at
one height (an identity, a definition, whether a contract has key policies) and
drops what a new block may have changed (all of it, unless the peer tells it which
namespaces the block wrote), so a revocation, registration or upgrade takes effect
at the first read after its block commits, exactly as an uncached read would.
Inside a block being validated, the memo is used only while no earlier transaction
of the block wrote the namespace in question.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from healthledger.contracts.context import KEY_POLICY_PREFIX, MEMBERSHIP_NAMESPACE
from healthledger.contracts.errors import PolicyError
from healthledger.contracts.policy import Policy, parse_policy, satisfied
from healthledger.crypto.certs import Certificate, load_certificate, verify_issued_by
from healthledger.crypto.errors import CertificateError
from healthledger.crypto.keys import load_public_key
from healthledger.ledger.state import OverlayState, StateView
from healthledger.ledger.transaction import KeyWrite, Transaction, ValidationCode
from healthledger.ledger.validation import Identity

MEMBERSHIP = MEMBERSHIP_NAMESPACE
LIFECYCLE = "lifecycle"
KEY_POLICY_END = KEY_POLICY_PREFIX[:-1] + chr(ord(KEY_POLICY_PREFIX[-1]) + 1)
"""End (exclusive) of the key range holding a namespace's key-level policies."""
MEMO_MAX_ENTRIES = 65_536
"""A memo holding more entries than this at one height starts afresh."""

T = TypeVar("T")


class CommittedState(StateView, Protocol):
    """Committed world state that knows its height (a ledger store)."""

    def height(self) -> int:
        """Number of committed blocks."""
        ...


class HeightMemo:
    """Values derived from one committed state, kept while its height is unchanged.

    Each table of values is tagged with the height read *before* its values were
    computed, and a value is only served to a reader that sees that same height, so
    no value computed from an older state is ever served at a newer height. A value
    read from one namespace only (``get``'s ``namespace``) is carried to the next
    height by ``carry`` when the block in between wrote nothing there: the same
    state gives the same value, and an identity, a definition or a key-policy flag
    is then not read again after every block."""

    def __init__(self, store: CommittedState, *, max_entries: int = MEMO_MAX_ENTRIES) -> None:
        self.store = store
        self._max_entries = max_entries
        self._table: tuple[int, dict[Hashable, tuple[str | None, Any]]] = (-1, {})
        self._lock = threading.Lock()

    def covers(self, state: StateView, *namespaces: str) -> bool:
        """True if reading ``namespaces`` from ``state`` reads the committed store:
        ``state`` is the store, or a block's overlay on it that has not written them."""
        if state is self.store:
            return True
        return (
            isinstance(state, OverlayState)
            and state.base is self.store
            and not any(state.touches(ns) for ns in namespaces)
        )

    def get(self, key: Hashable, compute: Callable[[], T], *, namespace: str | None = None) -> T:
        """The value of ``key`` at the store's current height, computed on first use;
        ``namespace``: the only namespace ``compute`` reads (None: unknown, so the
        value is never carried to another height)."""
        height = self.store.height()
        table_height, table = self._table
        if table_height != height:
            with self._lock:
                table_height, table = self._table
                if height > table_height:
                    table = {}
                    self._table = (height, table)
                elif height != table_height:
                    return compute()  # a reader that lags behind a newer table
        entry = table.get(key)
        if entry is not None:
            value: T = entry[1]
            return value
        value = compute()
        if len(table) >= self._max_entries:
            table.clear()
        table[key] = (namespace, value)
        return value

    def carry(self, height: int, written: Collection[str]) -> None:
        """Block ``height`` has just committed, writing namespaces ``written``: keep,
        for the height after it, the values read from namespaces it did not write.
        Does nothing unless the table is still that of ``height`` and the store has
        moved exactly one block on (anything else starts afresh as before)."""
        with self._lock:
            table_height, table = self._table
            if table_height != height or self.store.height() != height + 1:
                return
            kept = {
                key: entry
                for key, entry in dict(table).items()
                if entry[0] is not None and entry[0] not in written
            }
            self._table = (height + 1, kept)


def org_key(org: str) -> str:
    """Membership state key of an organisation."""
    return f"org/{org}"


def identity_key(identity_id: str) -> str:
    """Membership state key of an identity (``org/name``)."""
    return f"identity/{identity_id}"


def definition_key(contract: str) -> str:
    """Lifecycle state key of a contract's committed definition."""
    return f"contract/{contract}"


@lru_cache(maxsize=4096)
def _parsed(pem: str) -> Certificate:
    return load_certificate(pem)


@lru_cache(maxsize=4096)
def _chain_ok(cert_pem: str, ca_pem: str) -> bool:
    try:
        verify_issued_by(_parsed(cert_pem), _parsed(ca_pem))
    except CertificateError:
        return False
    return True


class MembershipResolver:
    """Resolves identities from the membership contract's state (through ``memo``,
    if given, when reading its committed store)."""

    def __init__(self, memo: HeightMemo | None = None) -> None:
        self.memo = memo

    def resolve(self, identity_id: str, state: StateView) -> Identity | None:
        """The identity, if registered with a certificate issued by its org's CA."""
        memo = self.memo
        if memo is not None and memo.covers(state, MEMBERSHIP):
            store = memo.store
            return memo.get(
                ("identity", identity_id),
                lambda: _resolve(identity_id, store),
                namespace=MEMBERSHIP,
            )
        return _resolve(identity_id, state)

    def touches_membership(self, ns: str) -> bool:
        """Membership writes change identities."""
        return ns == MEMBERSHIP


def _resolve(identity_id: str, state: StateView) -> Identity | None:
    record = state.get_state(MEMBERSHIP, identity_key(identity_id))
    if record is None or not isinstance(record.value, dict):
        return None
    org_id = identity_id.split("/", 1)[0]
    org = state.get_state(MEMBERSHIP, org_key(org_id))
    if org is None or not isinstance(org.value, dict):
        return None
    cert_pem, ca_pem = record.value.get("cert"), org.value.get("ca_cert")
    if not isinstance(cert_pem, str) or not isinstance(ca_pem, str):
        return None
    return _identity(identity_id, cert_pem, ca_pem, record.value.get("status") == "revoked")


@lru_cache(maxsize=4096)
def _identity(identity_id: str, cert_pem: str, ca_pem: str, revoked: bool) -> Identity | None:
    try:
        cert = _parsed(cert_pem)
    except CertificateError:
        return None
    if not _chain_ok(cert_pem, ca_pem) or f"{cert.org}/{cert.name}" != identity_id:
        return None
    return Identity(
        id=identity_id,
        org=cert.org,
        role=cert.role,
        attributes=cert.attributes,
        public_key=load_public_key(cert.public_key),
        not_before_ms=cert.not_before_ms,
        not_after_ms=cert.not_after_ms,
        revoked=revoked,
    )


@dataclass(frozen=True)
class Requirement:
    """The policies a transaction must satisfy, or why it cannot be endorsed at all."""

    policies: tuple[Policy, ...]
    failure: ValidationCode | None = None
    reason: str = ""


def contract_definition(
    state: StateView, contract: str, memo: HeightMemo | None = None
) -> dict[str, Any] | None:
    """The committed lifecycle definition of ``contract``, or None (callers must not
    change the dict: with ``memo`` it is shared)."""
    if memo is not None and memo.covers(state, LIFECYCLE):
        store = memo.store
        return memo.get(
            ("definition", contract),
            lambda: contract_definition(store, contract),
            namespace=LIFECYCLE,
        )
    record = state.get_state(LIFECYCLE, definition_key(contract))
    if record is None or not isinstance(record.value, dict):
        return None
    return record.value


def has_key_policies(state: StateView, contract: str, memo: HeightMemo | None = None) -> bool:
    """False only if no key of ``contract``'s namespace has a key-level policy in
    ``state``; then no write needs its key's policy looked up."""
    if memo is not None and isinstance(state, OverlayState) and state.base is memo.store:
        if state.wrote_between(contract, KEY_POLICY_PREFIX, KEY_POLICY_END):
            return True  # an earlier transaction of the block set or removed one: look up
        state = memo.store
    if memo is not None and state is memo.store:
        store = memo.store
        return memo.get(
            ("key-policies", contract),
            lambda: has_key_policies(store, contract),
            namespace=contract,
        )
    return any(True for _ in state.range_state(contract, KEY_POLICY_PREFIX, KEY_POLICY_END, 1))


def requirement(
    state: StateView,
    contract: str,
    function: str,
    writes: Sequence[KeyWrite],
    memo: HeightMemo | None = None,
) -> Requirement:
    """Which endorsement policies govern calling ``contract.function`` with ``writes``."""
    definition = contract_definition(state, contract, memo)
    if definition is None:
        return Requirement((), ValidationCode.UNKNOWN_CONTRACT, f"{contract} is not deployed")
    functions = definition.get("functions")
    text = functions.get(function) if isinstance(functions, dict) else None
    try:
        policies = [parse_policy(text or definition["policy"])]
        look_up: bool | None = None
        for write in writes:
            if write.ns != contract:
                return Requirement(
                    (), ValidationCode.ILLEGAL_WRITE, f"{contract} wrote namespace {write.ns}"
                )
            if look_up is None:
                # One (memoised) range read answers "no key policies" for every write.
                look_up = has_key_policies(state, contract, memo)
            if not look_up:
                continue
            key = write.key.removeprefix(KEY_POLICY_PREFIX)
            record = state.get_state(contract, KEY_POLICY_PREFIX + key)
            if record is not None and isinstance(record.value, str):
                policies.append(parse_policy(record.value))
    except (PolicyError, KeyError) as exc:
        return Requirement((), ValidationCode.ENDORSEMENT_POLICY_FAILURE, str(exc))
    return Requirement(tuple(dict.fromkeys(policies)))


class PolicyEndorsementRule:
    """Every peer's check that a transaction's endorsers satisfy its policies."""

    def __init__(self, memo: HeightMemo | None = None) -> None:
        self.memo = memo
        self._outcomes: dict[tuple[Policy, tuple[tuple[str, str], ...]], bool] = {}
        """satisfied(policy, signers) per policy and signers: most transactions of a
        contract have the same endorsers, and the answer depends on nothing else."""

    def check(
        self, tx: Transaction, endorsers: Sequence[Identity], state: StateView
    ) -> ValidationCode | None:
        """None if the function, contract and per-key policies are all satisfied."""
        need = requirement(
            state, tx.proposal.contract, tx.proposal.function, tx.response.rwset.writes, self.memo
        )
        if need.failure is not None:
            return need.failure
        signers = tuple((e.org, e.role) for e in endorsers)
        if all(self._satisfied(policy, signers) for policy in need.policies):
            return None
        return ValidationCode.ENDORSEMENT_POLICY_FAILURE

    def _satisfied(self, policy: Policy, signers: tuple[tuple[str, str], ...]) -> bool:
        outcome = self._outcomes.get((policy, signers))
        if outcome is None:
            if len(self._outcomes) >= MEMO_MAX_ENTRIES:
                self._outcomes.clear()
            outcome = self._outcomes[(policy, signers)] = satisfied(policy, signers)
        return outcome
