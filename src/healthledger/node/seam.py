"""The application seam: the node as one application sees it (ARCHITECTURE.md section 6).

An application receives one :class:`AppNode` from the platform and nothing else of
``node``. Through it, and only through it, the application

* reads committed state of its own namespaces (its contracts' names): one key, every
  key under a prefix, a key's history; and the consortium's organisation records;
* invokes and queries its contracts as a named identity whose key this node holds,
  signed inside the platform (the application never sees a private key);
* follows a resumable feed of committed events from any point;
* reads its organisation's vault for its own private data;
* keeps its read models in a folder of its own;
* has the inclusion proof of any committed transaction and the node's clock.

Another application's data is reached only through that application's contract
queries (``query(..., contract=...)``) or its events, never through its state.
Background workers are declared by the application and started, supervised and
stopped by the platform (:mod:`healthledger.node.workers`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from healthledger.contracts.context import MEMBERSHIP_NAMESPACE
from healthledger.contracts.contract import Contract
from healthledger.contracts.errors import ContractError
from healthledger.crypto.keys import decode_b64
from healthledger.ledger.transaction import SignedProposal, Transaction, ValidationCode
from healthledger.node.chain_reads import Receipt
from healthledger.node.consortium import OrgPlan
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.errors import NodeError, TransactionRefused
from healthledger.node.events import LedgerEvent
from healthledger.node.parts import NODE_FILE, DataDirError, Node
from healthledger.node.workers import Worker

T = TypeVar("T")
PAST_EVERY_CHARACTER = "\U0010ffff"
"""Sorts after every character a state key may hold."""
APPS_FOLDER = "apps"
"""Folder of the data folder under which each application has its own."""


class OutsideNamespace(NodeError):
    """An application asked for state outside its own namespaces."""


@dataclass(frozen=True)
class Call:
    """One contract call of a batch (``AppNode.invoke_many``)."""

    identity: str
    contract: str
    function: str
    args: dict[str, Any]
    transient: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one call of a batch: its receipt and result, or its error."""

    receipt: Receipt | None
    result: Any
    error: Exception | None

    @property
    def valid(self) -> bool:
        """The call committed valid."""
        return self.receipt is not None and self.receipt.code is ValidationCode.VALID


@dataclass(frozen=True)
class Sent:
    """Calls endorsed and ordered (``AppNode.send_many``) whose commits may be still to
    come: each call's transaction and its commit's future, or the error that refused it."""

    calls: tuple[
        tuple[Transaction, Future[Receipt]] | tuple[ContractError | TransactionRefused, None],
        ...,
    ]

    def outcomes(self, *, timeout: float = 60.0) -> list[Outcome]:
        """One outcome per call, in order, once each has committed (waiting up to
        ``timeout`` seconds for each); a call refused before ordering, or whose
        commit failed, has its error."""
        outcomes = []
        for tx, future in self.calls:
            if future is None or not isinstance(tx, Transaction):
                assert isinstance(tx, Exception)
                outcomes.append(Outcome(None, None, tx))
                continue
            try:
                receipt = future.result(timeout=timeout)
            except (ContractError, NodeError) as exc:
                outcomes.append(Outcome(None, None, exc))
                continue
            outcomes.append(Outcome(receipt, tx.response.result, None))
        return outcomes


@dataclass(frozen=True)
class StateEntry:
    """One committed change of a key: the transaction, block height and time of it."""

    tx_id: str
    height: int
    timestamp: int
    value: Any
    deleted: bool


class AppNode:
    """The node as application ``name`` sees it: its namespaces, its identities'
    signatures, the event feed, its organisation's vault and its own folder."""

    def __init__(self, node: Node, *, name: str, namespaces: Sequence[str]) -> None:
        if not namespaces:
            raise ValueError(f"application {name} declares no namespace")
        self._node = node
        self.name = name
        """The application's name (its URL prefix and folder name)."""
        self.namespaces = tuple(namespaces)
        """The state namespaces the application reads: its contracts' names."""
        self.folder = node.data_dir / APPS_FOLDER / name
        """Where the application keeps its read models (made on first use)."""

    def shared(self, name: str, make: Callable[[], T]) -> T:
        """The application's one ``name`` object on this node (a read model, a
        service), made by ``make`` on first use and handed to every later caller: so
        pages, routes and workers of one process share one read model."""
        key = (self.name, name)
        with self._node.app_objects_lock:
            if key not in self._node.app_objects:
                self._node.app_objects[key] = make()
            found: T = self._node.app_objects[key]
            return found

    # --- time and identities -------------------------------------------------------

    def clock(self) -> int:
        """The node's clock, Unix milliseconds."""
        return self._node.clock()

    @property
    def data_dir(self) -> Path:
        """The node's data folder (for messages naming it; write only in ``folder``)."""
        return self._node.data_dir

    @property
    def mode(self) -> str:
        """``embedded`` (the node holds every organisation's keys) or ``consortium``."""
        return self._node.mode

    def identities(self, *, role: str | None = None, org: str | None = None) -> list[str]:
        """Identities (``org/name``) whose keys this node holds, by ``role`` and ``org``."""
        return [
            entry.id
            for entry in self._node.keystore.entries()
            if (role is None or entry.cert.role == role) and (org is None or entry.cert.org == org)
        ]

    def holds(self, identity: str) -> bool:
        """True if this node holds ``identity``'s key (and so may sign as it)."""
        return self._node.keystore.get(identity) is not None

    def role_of(self, identity: str) -> str | None:
        """The role of ``identity`` if this node holds its key, else None."""
        entry = self._node.keystore.get(identity)
        return None if entry is None else entry.cert.role

    def derived_secret(self, org: str, purpose: bytes) -> bytes:
        """HMAC-SHA256 of ``purpose`` under ``org``'s vault secret, if this node holds
        ``org``'s vault key: a key that lives only where that vault key lives."""
        material = self._node.keystore.vault_keys.get(org)
        if material is None:
            raise NodeError(f"this node holds no vault key of {org}")
        return hmac.new(decode_b64(material["secret"]), purpose, hashlib.sha256).digest()

    def organisations(self) -> list[dict[str, Any]]:
        """The consortium's member records (id, name, kind, attributes, GS1 prefixes)."""
        return [
            found.value
            for _, found in self._node.peer.store.range_state(
                MEMBERSHIP_NAMESPACE, "org/", "org0", 100_000
            )
        ]

    def organisation(self, org: str) -> dict[str, Any] | None:
        """Member ``org``'s record, or None."""
        found = self._node.peer.store.get_state(MEMBERSHIP_NAMESPACE, f"org/{org}")
        return None if found is None else dict(found.value)

    # --- state ---------------------------------------------------------------------

    def _namespace(self, ns: str | None) -> str:
        if ns is None:
            return self.namespaces[0]
        if ns not in self.namespaces:
            raise OutsideNamespace(
                f"application {self.name} reads {', '.join(self.namespaces)}, not {ns!r}: "
                "use that application's queries or events"
            )
        return ns

    def height(self) -> int:
        """Number of committed blocks."""
        return self._node.peer.store.height()

    def get(self, key: str, *, ns: str | None = None) -> Any | None:
        """The committed value of ``key`` (in the first namespace unless ``ns``), or None."""
        found = self._node.peer.store.get_state(self._namespace(ns), key)
        return None if found is None else found.value

    def range(
        self, prefix: str, *, ns: str | None = None, start: str = "", limit: int = 10_000_000
    ) -> Iterator[tuple[str, Any]]:
        """Committed ``(key, value)`` pairs of every key starting with ``prefix`` (from
        key ``start`` on, if given: to resume), in key order, at most ``limit``."""
        # Keys are printable text compared by code point: the highest one ends the range.
        first = max(prefix, start)
        store = self._node.peer.store
        end = prefix + PAST_EVERY_CHARACTER
        for key, found in store.range_state(self._namespace(ns), first, end, limit):
            yield key, found.value

    def history(self, key: str, *, ns: str | None = None, limit: int = 100) -> list[StateEntry]:
        """Committed changes of ``key``, newest first."""
        return [
            StateEntry(h.tx_id, h.version[0], h.timestamp, h.value, h.deleted)
            for h in self._node.peer.store.key_history(self._namespace(ns), key, limit)
        ]

    # --- contracts -----------------------------------------------------------------

    def _own_contract(self, contract: str) -> str:
        if contract not in self.namespaces:
            raise OutsideNamespace(
                f"application {self.name} writes through {', '.join(self.namespaces)}, "
                f"not {contract!r}"
            )
        return contract

    def invoke(
        self,
        identity: str,
        contract: str,
        function: str,
        args: dict[str, Any],
        *,
        transient: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> tuple[Receipt, Any]:
        """Sign as ``identity`` (its key must be on this node), endorse, order and wait
        for the commit of ``function`` of ``contract`` (one of the application's own);
        ``transient`` (private inputs) never goes on chain."""
        return self._node.invoke(
            identity,
            self._own_contract(contract),
            function,
            args,
            timeout=timeout,
            transient=None if transient is None else dict(transient),
        )

    def query(self, identity: str, contract: str, function: str, args: dict[str, Any]) -> Any:
        """Run query ``function`` of ``contract`` as ``identity``: the application's own,
        or another application's declared queries, or the system contracts'."""
        return self._node.query(identity, contract, function, args)

    def invoke_many(self, calls: Sequence[Call], *, timeout: float = 60.0) -> list[Outcome]:
        """Endorse every call, order them together and wait for their commits: one
        outcome per call, in order. A call its contract refuses, or that the orderer
        does not take, has its error and leaves the others unaffected; a node that
        cannot take transactions at all raises NodeError."""
        return self.send_many(calls).outcomes(timeout=timeout)

    def send_many(self, calls: Sequence[Call]) -> Sent:
        """Endorse every call and order them together, as ``invoke_many`` does, without
        waiting for their commits: the caller endorses its next calls meanwhile, and
        waits with ``Sent.outcomes``."""
        endorsed: list[Transaction | ContractError | TransactionRefused] = []
        for call in calls:
            salted = (
                None
                if call.transient is None
                else self._node.keystore.with_salt(dict(call.transient))
            )
            proposal = self._node.propose(
                call.identity,
                self._own_contract(call.contract),
                call.function,
                call.args,
                transient=salted,
            )
            try:
                endorsed.append(self._node.peer.endorse(proposal, transient=salted))
            except (ContractError, TransactionRefused) as exc:
                endorsed.append(exc)
        return self._order(endorsed, precheck=True)

    def propose(
        self, identity: str, contract: str, function: str, args: dict[str, Any]
    ) -> SignedProposal:
        """A proposal of ``function`` of ``contract`` (one of the application's own)
        signed as ``identity`` now, but neither endorsed nor ordered: what a client
        signs before it sends (``invoke_signed``). The key stays in the platform."""
        return self._node.propose(identity, self._own_contract(contract), function, args)

    def invoke_signed(
        self, proposals: Sequence[SignedProposal], *, timeout: float = 60.0
    ) -> list[Outcome]:
        """Endorse proposals signed earlier (``propose``), order them together and wait
        for their commits: one outcome per proposal, in order, as ``invoke_many``. As
        ``invoke`` does, what this peer has just endorsed goes to ordering without a
        validation dry run (the block's validation still checks everything)."""
        return self.send_signed(proposals).outcomes(timeout=timeout)

    def send_signed(self, proposals: Sequence[SignedProposal]) -> Sent:
        """Endorse and order proposals signed earlier, as ``invoke_signed`` does, without
        waiting for their commits: the caller endorses its next proposals meanwhile,
        and waits with ``Sent.outcomes``."""
        endorsed: list[Transaction | ContractError | TransactionRefused] = []
        for signed in proposals:
            self._own_contract(signed.proposal.contract)
            try:
                endorsed.append(self._node.peer.endorse(signed))
            except (ContractError, TransactionRefused) as exc:
                endorsed.append(exc)
        return self._order(endorsed, precheck=False)

    def _order(
        self,
        endorsed: Sequence[Transaction | ContractError | TransactionRefused],
        *,
        precheck: bool,
    ) -> Sent:
        ordered = [tx for tx in endorsed if isinstance(tx, Transaction)]
        submitted = self._node.peer.submit_many(ordered, precheck=precheck) if ordered else []
        futures = iter(submitted)
        return Sent(
            tuple(
                (tx, next(futures)) if isinstance(tx, Transaction) else (tx, None)
                for tx in endorsed
            )
        )

    # --- events, proofs, vault -----------------------------------------------------

    def events(self, after: str | None = None, *, limit: int = 1000) -> list[LedgerEvent]:
        """Committed contract events after event id ``after`` (None: from the first
        block), oldest first; resume from the last one's ``id``."""
        return self._node.peer.events.read(after, limit=limit)

    def follow(self, after: str | None = None, *, poll_s: float = 1.0) -> Iterator[LedgerEvent]:
        """Every committed event after ``after``, then each new one as it commits,
        until the node stops."""
        return self._node.peer.events.follow(after, poll_s=poll_s)

    def wait_for_height(self, height: int, timeout: float) -> bool:
        """Wait until block ``height`` is committed; False on timeout or stop."""
        return self._node.peer.events.wait_for_height(height, timeout)

    def block_hash(self, height: int) -> str | None:
        """The hash of committed block ``height``, or None above the head: what a read
        model saved at a height is checked against before it is trusted."""
        store = self._node.peer.store
        return store.header(height).hash if 0 <= height < store.height() else None

    def inclusion_proof(self, tx_id: str) -> dict[str, Any]:
        """The RFC 9162 inclusion proof of committed transaction ``tx_id``."""
        return self._node.peer.inclusion_proof(tx_id)

    def private(self, collection: str, key: str) -> Any | None:
        """The committed private value of ``key`` in ``collection`` of this node's
        organisations' vaults, or None (also where this node may not read it)."""
        return self._node.peer.vaults.read(collection, key)


class Application(Protocol):
    """What the platform needs to know of an application to attach it to a node."""

    @property
    def name(self) -> str:
        """Its name."""
        ...

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Its contracts' names."""
        ...


def attach(node: Node, app: Application) -> AppNode:
    """``node`` as ``app`` sees it."""
    return AppNode(node, name=app.name, namespaces=app.namespaces)


@contextmanager
def scratch_ledger(
    folder: Path,
    *,
    name: str,
    namespaces: Sequence[str],
    contracts: Sequence[type[Contract]],
    plans: Sequence[OrgPlan],
    **options: Any,
) -> Iterator[AppNode]:
    """A new consortium of ``plans`` founded in the empty ``folder`` with ``contracts``
    (the system contracts and the application's), started, as application ``name``
    sees it; stopped when the block ends. For an application's benchmarks."""
    node = EmbeddedNode.create(folder, contracts=contracts, plans=plans, **options).start()
    try:
        yield AppNode(node, name=name, namespaces=namespaces)
    finally:
        node.stop()


@contextmanager
def opened_ledger(
    data_dir: Path, *, name: str, namespaces: Sequence[str], contracts: Sequence[type[Contract]]
) -> Iterator[AppNode]:
    """The committed ledger in ``data_dir`` (not started: nothing is ordered or
    committed), as application ``name`` sees it, closed when the block ends; a
    DataDirError (a NodeError) if the folder holds no ledger. For offline checks."""
    if not (Path(data_dir) / NODE_FILE).is_file():
        raise DataDirError(f"{data_dir} is not a healthledger data folder (no {NODE_FILE})")
    node = EmbeddedNode(Path(data_dir), contracts=contracts)
    try:
        yield AppNode(node, name=name, namespaces=namespaces)
    finally:
        node.stop()


__all__ = [
    "AppNode",
    "Application",
    "Call",
    "LedgerEvent",
    "NodeError",
    "Outcome",
    "OutsideNamespace",
    "Receipt",
    "Sent",
    "StateEntry",
    "TransactionRefused",
    "Worker",
    "attach",
    "opened_ledger",
    "scratch_ledger",
]
