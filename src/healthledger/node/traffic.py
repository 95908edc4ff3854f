"""A traffic client of a consortium network (ARCHITECTURE.md sections 3 and 5): a
read-only replica that holds the organisations' *user* identities (demo custody) and
has every write endorsed by the organisations' own peers.

The client follows the ordering stream like any peer and validates every block as
every peer does, so what the demo simulators read (``node.query``,
``node.peer.store``) is committed, verified state. It holds no peer identity and
endorses nothing itself: :class:`GatewayPeer` sends each signed proposal through a
:class:`~healthledger.node.gateway.Gateway` to the peers its policy names, checks the
endorsed transaction as every peer will (``precheck``) and orders it through its
creator's organisation's peer (``POST /api/v1/transactions``) with the client library
(:mod:`healthledger.client`), as an integrating system of that organisation does.

A proposal with private inputs (a transient map) goes to the gateway of its
creator's organisation's peer instead (``/api/v1/proposals/endorse``, through the
client library too), the gateway a real client of that organisation would use: the
private values it writes to that organisation's collections are kept in that peer's
vault (staged there by the peer itself, or returned to that gateway by the endorsing
peer and checked against their commitments), never on the client, whose vaults stay
empty.

Only the demo's deliberate stale transaction (``submit(tx, precheck=False)``: ordered
after its creator's revocation, for every peer to mark invalid) goes straight to the
JetStream stream, since every peer's API refuses it before ordering.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx

from healthledger import client as hl
from healthledger.contracts.contract import Contract
from healthledger.contracts.errors import ContractError
from healthledger.contracts.policy import principals
from healthledger.contracts.rules import requirement
from healthledger.contracts.runtime import ContractRuntime
from healthledger.crypto.canonical import parse_canonical
from healthledger.ledger.store import LedgerStore
from healthledger.ledger.transaction import SignedProposal, Transaction, ValidationCode
from healthledger.node.consortium_peer import GENESIS_FILE, jetstream_ordering
from healthledger.node.endorsement_answers import refusal_from_body
from healthledger.node.errors import (
    CommitTimeout,
    DuplicateTransaction,
    EndorsementFailed,
    NodeError,
    NodeUnavailable,
    TransactionRefused,
)
from healthledger.node.gateway import DEFAULT_TIMEOUT_S, PEER_ROLE, Gateway
from healthledger.node.keystore import Keystore
from healthledger.node.parts import KEYSTORE_FILE, NODE_FILE, DataDirError, NodeParts
from healthledger.node.peer import Peer, Receipt
from healthledger.node.peer_directory import PeerDirectory
from healthledger.node.peer_tls import peer_transport
from healthledger.node.vault import VaultSet
from healthledger.ordering.orderer import Orderer
from healthledger.ordering.solo import wall_clock_ms

CLIENT_MODE = "client"
CATCH_UP_TIMEOUT_S = 30.0
"""How long the client waits for a peer to commit the blocks it has committed itself."""
POLL_S = 0.05
SUBMITTERS = 64
"""Transactions a traffic client has in flight to the peers at once."""
MAX_COMMIT_WAIT_S = 60.0
"""The longest commit wait a peer's API takes (``POST /api/v1/transactions?timeout=``);
a commit that takes longer is still answered by this replica's own commit."""
"""Transactions a traffic client has in flight to the peers at once."""


class GatewayPeer(Peer):
    """A replica that endorses nothing itself: each proposal is endorsed by the
    organisations' peers through a gateway, once those peers have committed at least
    what this replica has (so they simulate against the state the caller has read);
    one with private inputs through the API of its creator's organisation's peer. Each
    checked transaction is ordered through that peer's API too. Both go through the
    client library (:mod:`healthledger.client`), as an integrating system of that
    organisation does. Each write's receipt is this replica's own, once it has
    committed the block (the caller reads its own writes)."""

    def __init__(
        self,
        *,
        store: LedgerStore,
        runtime: ContractRuntime,
        orderer: Orderer,
        vaults: VaultSet,
        clock: Callable[[], int],
        directory: PeerDirectory,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        catch_up_timeout_s: float = CATCH_UP_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
        reader: hl.Identity | None = None,
    ) -> None:
        super().__init__(
            store=store, runtime=runtime, orderer=orderer, endorsers=(), vaults=vaults, clock=clock
        )
        self.reader = reader
        """The identity that signs this replica's reads of the peers' member-only routes
        (the endorsers' registered certificates)."""
        self.directory = directory
        self._timeout_s = timeout_s
        self._catch_up_timeout_s = catch_up_timeout_s
        self._proposal = threading.local()
        self.gateway = Gateway(
            state=store,
            directory=self._directory_for_proposal,
            timeout_s=timeout_s,
            transport=transport,
        )
        self._transport = transport
        self._clients: dict[str, hl.Client] = {}
        self._clients_lock = threading.Lock()
        self._submitters = ThreadPoolExecutor(SUBMITTERS, thread_name_prefix="traffic-submit")
        self._heights: dict[str, int] = {}
        self._heights_lock = threading.Lock()

    def close_connections(self) -> None:
        """Close the connections to the peers (once the writes in flight are answered)."""
        self._submitters.shutdown(wait=True)
        self.gateway.close()
        with self._clients_lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def client(self, org: str) -> hl.Client:
        """The client library's client of ``org``'s peer (one connection pool each)."""
        with self._clients_lock:
            client = self._clients.get(org)
            if client is None:
                client = hl.Client(
                    self.directory.peers[org],
                    identity=self.reader,
                    timeout=self._timeout_s,
                    transport=self._transport or peer_transport(),
                )
                self._clients[org] = client
            return client

    def endorse(
        self, signed: SignedProposal, *, transient: Mapping[str, Any] | None = None
    ) -> Transaction:
        """The transaction of ``signed``, endorsed by the peers its policies name
        (GatewayError listing every peer's refusal if they cannot be satisfied); one
        with private inputs through the gateway of its creator's organisation's peer
        (:meth:`endorse_at`)."""
        self.check_proposal(signed)
        if self.store.tx_location(signed.tx_id) is not None:
            raise DuplicateTransaction(f"transaction {signed.tx_id} is already committed")
        preferred = self.preferred_orgs(signed)
        self.await_peers(preferred, self.store.height())
        creator_org = signed.proposal.creator.split("/", 1)[0]
        if transient is not None and creator_org in self.directory.peers:
            return self.endorse_at(creator_org, signed, transient)
        self._proposal.orgs = preferred
        try:
            return self.gateway.endorse(signed, transient)
        finally:
            self._proposal.orgs = None

    def endorse_at(
        self, org: str, signed: SignedProposal, transient: Mapping[str, Any]
    ) -> Transaction:
        """The transaction of ``signed`` endorsed through the gateway of ``org``'s peer
        (``POST /api/v1/proposals/endorse`` with the client library, which checks every
        endorsement against its endorser's registered certificate), which keeps the
        private values of ``org``'s collections; checked as every peer will check it.
        The contract's refusal is raised as the contract error it is; any other
        refusal is EndorsementFailed naming the peer."""
        call = hl.SignedCall(signed, dict(transient))
        try:
            tx = self.client(org).endorse(call)
        except hl.ClientError as exc:
            raise _node_error(exc, f"the gateway of {org} ({self.directory.peers[org]})") from exc
        if tx.signed_proposal.canonical != signed.canonical:
            raise EndorsementFailed(
                f"the gateway of {org} ({self.directory.peers[org]}) endorsed a different proposal"
            )
        self.precheck(tx)
        return tx

    def invoke(
        self,
        signed: SignedProposal,
        *,
        timeout: float = 30.0,
        transient: Mapping[str, Any] | None = None,
    ) -> tuple[Receipt, Any]:
        """Endorse, check as every peer checks it, order through the creator's
        organisation's peer and wait for this replica's commit."""
        tx = self.endorse(signed, transient=transient)
        self.precheck(tx)
        return self.wait(self.send(tx, timeout=timeout), tx.tx_id, timeout), tx.response.result

    def submit(self, tx: Transaction, *, precheck: bool = True) -> Future[Receipt]:
        """Check ``tx`` as every peer will, then order it through its creator's
        organisation's peer (``POST /api/v1/transactions`` with the client library).

        ``precheck=False`` orders it straight through the stream instead, unchecked
        here and at any peer's API (which would refuse a stale transaction): the
        demo's deliberate commit after a revocation, which every peer then marks
        invalid in its block."""
        if not precheck:
            return super().submit(tx, precheck=False)
        self.precheck(tx)
        return self.send(tx)

    def submit_many(
        self, transactions: Sequence[Transaction], *, precheck: bool = True
    ) -> list[Future[Receipt]]:
        """As :meth:`submit` for each, in flight side by side; a transaction refused by
        its precheck has its error in its future."""
        if not precheck:
            return super().submit_many(transactions, precheck=False)
        self._check_accepting()
        futures: list[Future[Receipt]] = []
        for tx in transactions:
            try:
                futures.append(self.submit(tx))
            except (NodeError, ContractError) as exc:
                failed: Future[Receipt] = Future()
                failed.set_exception(exc)
                futures.append(failed)
        return futures

    def send(self, tx: Transaction, *, timeout: float | None = None) -> Future[Receipt]:
        """Order the checked transaction ``tx`` through its creator's organisation's peer
        (any peer of the directory if that organisation has none here); the future
        resolves when this replica commits its block, or holds the peer's refusal."""
        self._check_accepting()
        org = tx.proposal.creator.split("/", 1)[0]
        if org not in self.directory.peers:
            org = next(iter(self.directory.peers))
        future: Future[Receipt] = Future()
        self._register(tx, future)
        wait_s = min(self._timeout_s if timeout is None else timeout, MAX_COMMIT_WAIT_S)
        self._submitters.submit(self._order_at, org, tx, future, wait_s)
        return future

    def _order_at(self, org: str, tx: Transaction, future: Future[Receipt], wait_s: float) -> None:
        try:
            self.client(org).submit(tx, timeout=wait_s)
        except hl.ClientError as exc:
            error = _node_error(exc, f"the peer of {org} ({self.directory.peers[org]})")
            if isinstance(exc, _ORDERED):
                # Committed (perhaps invalid, or with parts its contract refused), ordered
                # already, or perhaps still: this replica's commit answers, as for any
                # write (the caller reads the receipt's code and the result).
                return
            self._unregister(tx.tx_id)
            with suppress(InvalidStateError):  # committed meanwhile
                future.set_exception(error)

    def precheck(self, tx: Transaction) -> None:
        """As every peer checks it, once this replica has caught up with the endorsing
        peers: an endorser that committed a block this replica has not read yet
        reports newer read versions, which are current, not conflicting."""
        try:
            super().precheck(tx)
        except TransactionRefused as exc:
            if exc.code is not ValidationCode.MVCC_READ_CONFLICT:
                raise
            orgs = [e.endorser.split("/", 1)[0] for e in tx.endorsements]
            self.catch_up_with(orgs)
            super().precheck(tx)

    def preferred_orgs(self, signed: SignedProposal) -> list[str]:
        """Organisations to ask first: those the contract's (or function's) policy
        names, then the caller's own (for a policy open to any organisation)."""
        proposal = signed.proposal
        need = requirement(self.store, proposal.contract, proposal.function, ())
        named = [p.org for policy in need.policies for p in principals(policy) if p.org != "*"]
        named.append(proposal.creator.split("/", 1)[0])
        return [org for org in dict.fromkeys(named) if org in self.directory.peers]

    def _directory_for_proposal(self) -> PeerDirectory:
        first: list[str] = getattr(self._proposal, "orgs", None) or []
        peers = self.directory.peers
        order = first + [org for org in peers if org not in first]
        return PeerDirectory({org: peers[org] for org in order})

    def peer_height(self, org: str) -> int | None:
        """The height the peer of ``org`` reports now; None if it does not answer."""
        try:
            height = int(self.client(org).status()["height"])
        except (hl.ClientError, ValueError, KeyError, TypeError):
            return None
        with self._heights_lock:
            self._heights[org] = max(height, self._heights.get(org, 0))
        return height

    def await_peers(self, orgs: Sequence[str], height: int) -> None:
        """Wait until the peers of ``orgs`` have committed ``height`` blocks. A peer
        that does not answer is not waited for (the gateway reports it); one that
        answers but stays behind is NodeUnavailable after the catch-up timeout."""
        deadline = time.monotonic() + self._catch_up_timeout_s
        for org in orgs:
            with self._heights_lock:
                known = self._heights.get(org, -1)
            while known < height:
                answered = self.peer_height(org)
                if answered is None:
                    break
                known = answered
                if known >= height:
                    break
                if time.monotonic() > deadline:
                    raise NodeUnavailable(
                        f"the peer of {org} stays at height {known}, behind this client's "
                        f"{height}, after {self._catch_up_timeout_s:g} s"
                    )
                time.sleep(POLL_S)

    def catch_up_with(self, orgs: Sequence[str]) -> None:
        """Wait until this replica has committed as many blocks as the peers of ``orgs``
        report now (NodeUnavailable after the catch-up timeout)."""
        target = max((h for h in map(self.peer_height, orgs) if h is not None), default=0)
        deadline = time.monotonic() + self._catch_up_timeout_s
        while self.store.height() < target:
            if time.monotonic() > deadline:
                raise NodeUnavailable(
                    f"this client stays at height {self.store.height()}, behind the "
                    f"peers' {target}, after {self._catch_up_timeout_s:g} s"
                )
            time.sleep(POLL_S)


class TrafficClient:
    """A consortium client: a node's parts on a client folder, following the JetStream
    ordering stream as a read-only replica, with a :class:`GatewayPeer` in place of the
    peer pipeline, so that its writes are endorsed by the organisations' peers of
    ``directory``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        contracts: Sequence[type[Contract]],
        servers: Sequence[str],
        directory: PeerDirectory,
        clock: Callable[[], int] = wall_clock_ms,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        catch_up_timeout_s: float = CATCH_UP_TIMEOUT_S,
    ) -> None:
        made: list[Orderer] = []
        follow = jetstream_ordering(servers, name="traffic-client")

        def resume(start_seq: int) -> Orderer:
            orderer = follow(start_seq)
            made.append(orderer)
            return orderer

        self.parts = NodeParts(data_dir, contracts=contracts, clock=clock, resume_orderer=resume)
        parts = self.parts
        if parts.mode != CLIENT_MODE:
            parts.close()
            raise DataDirError(f"{data_dir} is not a traffic client folder")
        built = parts.peer
        # The same store, contracts, stream and (empty) vaults, with endorsement
        # through the gateway instead of by keys this client does not hold.
        self.gateway_peer = GatewayPeer(
            store=built.store,
            runtime=built.runtime,
            orderer=made[0],
            vaults=built.vaults,
            clock=clock,
            directory=directory,
            timeout_s=timeout_s,
            catch_up_timeout_s=catch_up_timeout_s,
            reader=reader_identity(parts.keystore),
        )
        parts.peer = self.gateway_peer
        self.data_dir, self.mode, self.keystore, self.clock = (
            parts.data_dir,
            parts.mode,
            parts.keystore,
            parts.clock,
        )
        self.peer: Peer = self.gateway_peer
        self.app_objects, self.app_objects_lock = parts.app_objects, parts.app_objects_lock

    def start(self, *, retry: bool | None = None) -> TrafficClient:
        """Start following the stream (see :meth:`NodeParts.start`)."""
        self.parts.start(retry=retry)
        return self

    def stop(self) -> None:
        """Stop following the stream, close the stores and the connections to the peers."""
        self.parts.close()
        self.gateway_peer.close_connections()

    def propose(
        self,
        identity: str,
        contract: str,
        function: str,
        args: dict[str, Any],
        *,
        transient: dict[str, Any] | None = None,
    ) -> SignedProposal:
        """A proposal signed with ``identity``'s key (a user key this client holds)."""
        return self.parts.propose(identity, contract, function, args, transient=transient)

    def invoke(
        self,
        identity: str,
        contract: str,
        function: str,
        args: dict[str, Any],
        *,
        timeout: float = 30.0,
        transient: dict[str, Any] | None = None,
    ) -> tuple[Receipt, Any]:
        """Sign as ``identity``, have the peers endorse, order and wait for the commit."""
        return self.parts.invoke(
            identity, contract, function, args, timeout=timeout, transient=transient
        )

    def query(self, identity: str, contract: str, function: str, args: dict[str, Any]) -> Any:
        """Run a query as ``identity`` on this replica's committed state."""
        return self.parts.query(identity, contract, function, args)

    def catch_up(self, height: int, *, timeout: float = CATCH_UP_TIMEOUT_S) -> None:
        """Wait until this replica has committed ``height`` blocks (NodeUnavailable
        after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while self.peer.store.height() < height:
            if time.monotonic() > deadline:
                raise NodeUnavailable(
                    f"this client stays at height {self.peer.store.height()}, behind the "
                    f"network's {height}, after {timeout:g} s"
                )
            time.sleep(POLL_S)


def reader_identity(keystore: Keystore) -> hl.Identity | None:
    """An organisation admin's identity of ``keystore`` (else any user's) to sign reads
    with; None if it holds none."""
    entries = sorted(keystore.entries(), key=lambda e: (not e.id.endswith("/admin"), e.id))
    for entry in entries:
        try:
            return hl.Identity(certificate=entry.cert, key=entry.key)
        except hl.IdentityError:
            continue
    return None


def user_keystore(org_folders: Sequence[Path]) -> Keystore:
    """Every identity but the peers', every CA and every vault key material held in
    the organisations' folders (demo custody: they lie under one network root)."""
    entries = {}
    vault_keys: dict[str, dict[str, str]] = {}
    cas = {}
    for folder in org_folders:
        keystore = Keystore.load(folder / KEYSTORE_FILE)
        entries.update({e.id: e for e in keystore.entries() if e.cert.role != PEER_ROLE})
        vault_keys.update(keystore.vault_keys)
        cas.update(keystore.cas)
    return Keystore(entries, vault_keys, cas=cas)


def create_client_folder(
    folder: Path,
    *,
    genesis_file: Path,
    org_folders: Sequence[Path],
    contracts: Sequence[type[Contract]],
    clock: Callable[[], int] = wall_clock_ms,
) -> None:
    """Make a traffic client folder: the user keystore of ``org_folders`` and the
    consortium's genesis block from ``genesis_file``; the stream brings the rest."""
    if (folder / NODE_FILE).exists():
        raise DataDirError(f"{folder} already holds a ledger")
    folder.mkdir(parents=True, exist_ok=True)
    user_keystore(org_folders).save(folder / KEYSTORE_FILE)
    organisations = [f.name for f in org_folders]
    (folder / NODE_FILE).write_text(
        json.dumps({"format": 1, "mode": CLIENT_MODE, "organisations": organisations}, indent=1)
    )
    genesis = Transaction.from_json(parse_canonical(genesis_file.read_bytes()))
    parts = NodeParts(folder, contracts=contracts, clock=clock)
    try:
        parts.peer.bootstrap(genesis, timestamp=genesis.proposal.timestamp)
    finally:
        parts.close()


_CODES = frozenset(code.value for code in ValidationCode)
_ORDERED = (
    hl.DuplicateTransaction,
    hl.CommitTimeout,
    hl.RefusedRecorded,
    hl.TransactionInvalidated,
)
"""The peer's answers to a transaction that was ordered."""


def _node_error(exc: hl.ClientError, who: str) -> Exception:
    """The node-side error a client library error of ``who`` stands for: the
    contract's refusal as that contract error, a refusal of the transaction as
    TransactionRefused, no answer or an unavailable peer as NodeUnavailable."""
    if isinstance(exc, hl.ProblemError):
        refusal = refusal_from_body(exc.problem, marked=False)
        if refusal is not None:
            return refusal
        code, tx_id = exc.problem.get("code"), exc.problem.get("tx_id")
        if isinstance(code, str) and code in _CODES and isinstance(tx_id, str):
            return TransactionRefused(ValidationCode(code), tx_id)
        if isinstance(exc, hl.DuplicateTransaction):
            return DuplicateTransaction(f"{who}: {exc}")
        if isinstance(exc, hl.CommitTimeout):
            return CommitTimeout(f"{who}: {exc}")
        if isinstance(exc, hl.Unavailable | hl.ServerError):
            return NodeUnavailable(f"{who} cannot take it now: {exc}")
        return EndorsementFailed(f"{who} refused it: {exc}")
    if isinstance(exc, hl.ConnectionFailed):
        return NodeUnavailable(f"{who} is unreachable: {exc}")
    return EndorsementFailed(f"{who} answered what cannot be used: {exc}")


__all__ = [
    "CLIENT_MODE",
    "GENESIS_FILE",
    "GatewayPeer",
    "TrafficClient",
    "create_client_folder",
    "user_keystore",
]
