"""A peer: endorse, order, validate, commit, query (ARCHITECTURE.md section 3)."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from healthledger.contracts.context import PrivateData
from healthledger.contracts.errors import AccessDenied, ContractError
from healthledger.contracts.rules import HeightMemo, MembershipResolver, Requirement, requirement
from healthledger.contracts.runtime import ContractRuntime
from healthledger.crypto.errors import SignatureError
from healthledger.crypto.keys import SigningKey, VerifiedSignatures
from healthledger.ledger.block import Block
from healthledger.ledger.chain import Chain
from healthledger.ledger.errors import StorageFull, StoreUnavailable
from healthledger.ledger.sqlite_store import storage_error
from healthledger.ledger.store import LedgerStore
from healthledger.ledger.transaction import (
    ProposalResponse,
    SignedProposal,
    Transaction,
    ValidationCode,
)
from healthledger.node.chain_reads import ChainReads, Receipt
from healthledger.node.checkpoint import CheckpointWriter, origin_of
from healthledger.node.endorsers import Endorsers, new_validator
from healthledger.node.errors import (
    BadRequest,
    BadSignature,
    CommitTimeout,
    DuplicateTransaction,
    EndorsementFailed,
    NodeError,
    NodeUnavailable,
    TransactionRefused,
)
from healthledger.node.events import EventHub
from healthledger.node.metrics import NodeMetrics
from healthledger.node.vault import Disclosure, VaultSet
from healthledger.ordering.orderer import Batch, Orderer, OrderingError

log = logging.getLogger(__name__)

MAX_CLOCK_SKEW_MS = 5 * 60 * 1000
"""Proposals older or newer than this are refused at endorsement (replay window)."""


@dataclass(frozen=True)
class Endorsed:
    """This peer's endorsement for another organisation's gateway, and the private
    values the proposal wrote to its creator's collections, which this peer does not
    hold: they go back to that gateway only, never into the transaction."""

    transaction: Transaction
    private: tuple[Disclosure, ...] = ()


class Peer(ChainReads):
    """One organisation's peer (or, embedded, every organisation's)."""

    def __init__(
        self,
        *,
        store: LedgerStore,
        runtime: ContractRuntime,
        orderer: Orderer,
        endorsers: Sequence[tuple[str, SigningKey]],
        vaults: VaultSet,
        clock: Callable[[], int],
        reconnect_interval_s: float = 2.0,
        checkpoints: CheckpointWriter | None = None,
    ) -> None:
        """``checkpoints`` signs a checkpoint every K committed blocks."""
        self.store = store
        self.runtime = runtime
        self.memo = HeightMemo(store)
        """Identities, definitions and key-policy presence at the committed height."""
        self.signatures = VerifiedSignatures()
        """Signatures this peer has verified (a proposal's, again at precheck and commit)."""
        self.chain = Chain(store, new_validator(self.memo, self.signatures))
        self.events = EventHub(store)
        self.metrics = NodeMetrics()
        self._functions = {c.name: frozenset(c.functions) for c in runtime.installed()}
        """Each installed contract's function names (bounded metric labels)."""
        self.vaults = vaults
        self._orderer = orderer
        self._clock = clock
        self._resolver = MembershipResolver(self.memo)
        self._endorsers = Endorsers(endorsers, resolver=self._resolver, signatures=self.signatures)
        self._pending: dict[str, Future[Receipt]] = {}
        self.vaults.follow(self._committed_valid)
        self._pending_lock = threading.Lock()
        self._started = False
        self._reconnect_interval_s = reconnect_interval_s
        self._start_lock = threading.Lock()
        self._stopping = threading.Event()
        self._retry_thread: threading.Thread | None = None
        self.checkpoints = checkpoints
        self._origin: str | None = None
        self.ordering_error: str | None = None
        """Why ordering is not running (the orderer could not start), or None."""
        self.metrics.height.set(store.height())

    # --- life cycle -------------------------------------------------------------

    def _committed_valid(self, tx_id: str) -> bool:
        location = self.store.tx_location(tx_id)
        return location is not None and location.code is ValidationCode.VALID

    def bootstrap(self, genesis: Transaction, *, timestamp: int) -> Block:
        """Commit the genesis block of a new ledger."""
        block = self.chain.commit_genesis(genesis, timestamp=timestamp)
        self._after_commit(block)
        return block

    def start(self, *, retry: bool = False) -> None:
        """Settle private data left pending by a crash, then start ordering.

        With ``retry``, an orderer that cannot start now (NATS down) does not fail the
        peer: queries keep working, writes are refused with NodeUnavailable, and the
        orderer is started again in the background until it runs."""
        for tx_id in {t for v in self.vaults.all() for t in v.pending_tx_ids()}:
            location = self.store.tx_location(tx_id)
            if location is not None:
                self.vaults.settle(tx_id, valid=location.code is ValidationCode.VALID)
        if not retry:
            self._orderer.start(self._deliver)
            self._started = True
            return
        if self._try_start_ordering():
            return
        self._retry_thread = threading.Thread(
            target=self._retry_ordering, name="peer-ordering-retry", daemon=True
        )
        self._retry_thread.start()

    def _try_start_ordering(self) -> bool:
        with self._start_lock:
            if self._stopping.is_set():
                return True
            try:
                self._orderer.start(self._deliver)
            except OrderingError as exc:
                self.ordering_error = str(exc)
                return False
            self.ordering_error = None
            self._started = True
            return True

    def _retry_ordering(self) -> None:
        log.warning("ordering unavailable (%s); retrying in the background", self.ordering_error)
        while not self._stopping.wait(self._reconnect_interval_s):
            if self._try_start_ordering():
                if not self._stopping.is_set():
                    log.info("ordering started")
                return

    @property
    def accepting(self) -> bool:
        """True while the peer takes transactions (ordering runs)."""
        return self._started

    def stop(self) -> None:
        """Commit what is ordered, then stop."""
        self._stopping.set()
        with self._start_lock:
            self._orderer.stop()
        if self._retry_thread is not None:
            self._retry_thread.join()
        self._started = False
        self.events.close()
        with self._pending_lock:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(NodeUnavailable("the node stopped before commit"))
            self._pending.clear()

    def now(self) -> int:
        """The node's clock, Unix milliseconds."""
        return self._clock()

    # --- execute ---------------------------------------------------------------

    def check_proposal(self, signed: SignedProposal) -> None:
        """Refuse a proposal whose creator, signature or timestamp is not acceptable."""
        identity = self._resolver.resolve(signed.proposal.creator, self.store)
        if identity is None:
            raise AccessDenied(f"{signed.proposal.creator} is not a registered identity")
        if identity.revoked:
            raise AccessDenied(f"{signed.proposal.creator} has been revoked")
        try:
            self.signatures.verify(identity.public_key, signed.signature, signed.signed_bytes)
        except SignatureError as exc:
            raise BadSignature(f"proposal signature: {exc}") from exc
        skew = abs(signed.proposal.timestamp - self._clock())
        if skew > MAX_CLOCK_SKEW_MS:
            raise BadRequest(
                f"proposal timestamp is {skew // 1000} s from the node's clock "
                f"(at most {MAX_CLOCK_SKEW_MS // 1000} s)"
            )

    def endorse(
        self, signed: SignedProposal, *, transient: Mapping[str, Any] | None = None
    ) -> Transaction:
        """Simulate a proposal and endorse the result with the identities its policies need.

        ``transient``: private inputs bound by the proposal's transient_hash. Private
        values are staged without an fsync each; one sync makes them durable before the
        transaction can commit (see ``_sync_vaults``)."""
        private = self.vaults.for_proposal(
            signed.proposal.creator, transient, durable=False, disclose=False
        )
        response, need = self._simulate(signed, transient, private)
        chosen = self._endorsers.for_policies(need.policies, self.store)
        endorsements = self._endorsers.sign(signed, response, chosen)
        self.metrics.endorsements.inc()
        return Transaction(signed, response, endorsements)

    def endorse_own(
        self, signed: SignedProposal, *, transient: Mapping[str, Any] | None = None
    ) -> Transaction:
        """Simulate a proposal and endorse it with every registered, unrevoked peer
        identity this peer holds, whether or not they satisfy the policies alone: the
        answer to another organisation's gateway, which gathers the rest. Private values
        are durable before this returns (the transaction is ordered by another peer);
        a write to a collection this peer does not hold is refused."""
        private = self.vaults.for_proposal(signed.proposal.creator, transient, durable=True)
        return self._endorse_as_peer(signed, transient, private)

    def endorse_disclosing(
        self, signed: SignedProposal, *, transient: Mapping[str, Any] | None = None
    ) -> Endorsed:
        """As ``endorse_own``, but a private write to a collection of the proposal
        creator's organisation, which this peer does not hold, is committed to (salted
        as every endorser salts it) and its value returned beside the endorsement, for
        the creator's gateway to check and keep; any other foreign collection is
        refused (see ``node.vault.ProposalStaging``)."""
        private = self.vaults.for_proposal(
            signed.proposal.creator, transient, durable=True, disclose=True
        )
        tx = self._endorse_as_peer(signed, transient, private)
        return Endorsed(tx, tuple(private.disclosures))

    def _endorse_as_peer(
        self,
        signed: SignedProposal,
        transient: Mapping[str, Any] | None,
        private: PrivateData,
    ) -> Transaction:
        response, _ = self._simulate(signed, transient, private)
        endorsements = self._endorsers.sign(signed, response, self._endorsers.own(self.store))
        self.metrics.endorsements.inc()
        return Transaction(signed, response, endorsements)

    def _simulate(
        self,
        signed: SignedProposal,
        transient: Mapping[str, Any] | None,
        private: PrivateData,
    ) -> tuple[ProposalResponse, Requirement]:
        """Check ``signed``, simulate it, and what its writes need endorsed; refuses a
        proposal that is badly signed, stale, already committed, for a contract this
        peer has not installed, or whose requirement cannot be met."""
        self.check_proposal(signed)
        if self.store.tx_location(signed.tx_id) is not None:
            raise DuplicateTransaction(f"transaction {signed.tx_id} is already committed")
        proposal = signed.proposal
        caller = self.runtime.caller(
            proposal.creator, self.store, at_ms=self._clock(), resolver=self._resolver
        )
        response = self.runtime.simulate(
            proposal,
            tx_id=signed.tx_id,
            caller=caller,
            state=self.store,
            private=private,
            transient=transient,
            memo=self.memo,
        )
        need = requirement(
            self.store, proposal.contract, proposal.function, response.rwset.writes, self.memo
        )
        if need.failure is not None:
            raise EndorsementFailed(need.reason)
        return response, need

    def precheck(self, tx: Transaction) -> None:
        """Refuse ``tx`` unless it would validate against the current state, so that a
        forged, replayed or unendorsed transaction never reaches a block."""
        self.check_proposal(tx.signed_proposal)
        if self.store.tx_location(tx.tx_id) is not None:
            raise DuplicateTransaction(f"transaction {tx.tx_id} is already committed")
        outcome = self.chain.validator.validate_block(
            [tx],
            state=self.store,
            height=self.store.height(),
            timestamp=self._clock(),
            # Just looked up; a commit since then is caught when the id is registered.
            is_committed=lambda _tx_id: False,
        )
        if outcome.codes[0] is not ValidationCode.VALID:
            self.metrics.rejections.labels(str(outcome.codes[0])).inc()
            raise TransactionRefused(outcome.codes[0], tx.tx_id)

    def submit(self, tx: Transaction, *, precheck: bool = True) -> Future[Receipt]:
        """Send an endorsed transaction to ordering; the future resolves at commit.

        ``precheck=False`` skips the validation dry run, for transactions this peer has
        just endorsed itself (every peer still validates them in their block)."""
        if precheck:
            self.precheck(tx)
        self._check_accepting()
        future: Future[Receipt] = Future()
        self._register(tx, future)
        try:
            self._sync_vaults([tx])
            self._orderer.submit(tx)
        except (NodeUnavailable, StorageFull):
            self._unregister(tx.tx_id)
            raise
        except OrderingError as exc:
            self._unregister(tx.tx_id)
            raise NodeUnavailable(str(exc)) from exc
        return future

    def submit_many(
        self, transactions: Sequence[Transaction], *, precheck: bool = True
    ) -> list[Future[Receipt]]:
        """Send several endorsed transactions to ordering at once: one vault sync for
        all their private data, and the orderer takes them together (JetStream keeps
        them in flight side by side). One future per transaction, in order; a
        transaction refused by its precheck, or not taken by the orderer, has its
        error (NodeError or ContractError) in its future instead of a receipt. Raises
        NodeUnavailable, taking none, while the peer does not accept transactions."""
        self._check_accepting()
        futures: list[Future[Receipt]] = []
        accepted: list[tuple[Transaction, Future[Receipt]]] = []
        committed = self.store.committed_among([tx.tx_id for tx in transactions])
        for tx in transactions:
            future: Future[Receipt] = Future()
            futures.append(future)
            try:
                if precheck:
                    self.precheck(tx)
                self._register(tx, future, committed)
            except (NodeError, ContractError) as exc:
                future.set_exception(exc)
                continue
            accepted.append((tx, future))
        if not accepted:
            return futures
        ordered = [tx for tx, _ in accepted]
        outcomes: Sequence[Exception | None]
        try:
            self._sync_vaults(ordered)
            outcomes = self._orderer.submit_many(ordered)
        except (NodeUnavailable, StorageFull, OrderingError) as exc:
            error = (
                exc if isinstance(exc, NodeUnavailable | StorageFull) else NodeUnavailable(str(exc))
            )
            outcomes = [error] * len(accepted)
        for (tx, future), outcome in zip(accepted, outcomes, strict=True):
            if outcome is not None:
                self._unregister(tx.tx_id)
                if not future.done():
                    future.set_exception(
                        outcome
                        if isinstance(outcome, NodeError | StorageFull)
                        else NodeUnavailable(str(outcome))
                    )
        return futures

    def _check_accepting(self) -> None:
        if not self._started:
            if self.ordering_error is not None:
                raise NodeUnavailable(
                    f"writes are refused while ordering is unavailable ({self.ordering_error}); "
                    "queries keep working and the node keeps retrying"
                )
            raise NodeUnavailable("the node is not accepting transactions")

    def _register(
        self, tx: Transaction, future: Future[Receipt], committed: set[str] | None = None
    ) -> None:
        """Wait for ``tx``'s commit; DuplicateTransaction if it is waited for already or
        committed (``committed``: the ids of a batch found committed in one query, so
        a batch does not ask the store once per transaction)."""
        with self._pending_lock:
            known = (
                self.store.tx_location(tx.tx_id) is not None
                if committed is None
                else tx.tx_id in committed
            )
            if tx.tx_id in self._pending or known:
                self.metrics.rejections.labels("duplicate").inc()
                raise DuplicateTransaction(f"transaction {tx.tx_id} was already submitted")
            self._pending[tx.tx_id] = future

    def _unregister(self, tx_id: str) -> None:
        with self._pending_lock:
            self._pending.pop(tx_id, None)

    def _sync_vaults(self, transactions: Sequence[Transaction], *, delivered: bool = False) -> None:
        """Private values staged for ``transactions`` become durable before an orderer
        that outlives this process takes them; with an in-process orderer, before
        their block commits (``delivered``), so one fsync serves a whole block."""
        if self._orderer.persistent == delivered:
            return
        if not any(tx.response.rwset.private for tx in transactions):
            return
        try:
            self.vaults.sync()
        except sqlite3.Error as exc:
            failure = storage_error(exc, "private data could not be stored durably")
            if isinstance(failure, StorageFull):
                raise failure from exc
            raise NodeUnavailable(str(failure)) from exc

    def invoke(
        self,
        signed: SignedProposal,
        *,
        timeout: float = 30.0,
        transient: Mapping[str, Any] | None = None,
    ) -> tuple[Receipt, Any]:
        """Endorse, order and wait for commit; returns the receipt and the function's result."""
        tx = self.endorse(signed, transient=transient)
        return self.wait(self.submit(tx, precheck=False), tx.tx_id, timeout), tx.response.result

    @staticmethod
    def wait(future: Future[Receipt], tx_id: str, timeout: float) -> Receipt:
        """The receipt of a submitted transaction, or CommitTimeout."""
        try:
            return future.result(timeout)
        except TimeoutError as exc:
            raise CommitTimeout(f"{tx_id} did not commit within {timeout} s") from exc

    def evaluate(self, signed: SignedProposal) -> Any:
        """Run a query function as the proposal's signed creator."""
        self.check_proposal(signed)
        proposal = signed.proposal
        caller = self.runtime.caller(
            proposal.creator, self.store, at_ms=self._clock(), resolver=self._resolver
        )
        return self.runtime.evaluate(
            contract=proposal.contract,
            function=proposal.function,
            args=dict(proposal.args),
            caller=caller,
            state=self.store,
            timestamp=proposal.timestamp,
            private=self.vaults,
            memo=self.memo,
        )

    # --- commit ----------------------------------------------------------------

    def _deliver(self, batch: Batch) -> None:
        started = time.perf_counter()
        try:
            self._sync_vaults(batch.transactions, delivered=True)
            block = self.chain.append(
                batch.transactions, timestamp=batch.timestamp, stream_seq=batch.stream_seq
            )
        except (StorageFull, StoreUnavailable, NodeUnavailable) as exc:
            if self._orderer.persistent:
                # The batch is in the stream and must not be skipped: the orderer
                # stops delivering, and the peer resumes from its recorded position.
                raise
            self._refuse_batch(
                batch, NodeUnavailable(str(exc)) if isinstance(exc, StoreUnavailable) else exc
            )
            return
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        self._after_commit(block)

    def _refuse_batch(self, batch: Batch, error: Exception) -> None:
        """A batch of the in-process orderer that could not be stored (a full disk, a
        database server out of reach): it lives nowhere else, so it is dropped, and
        each waiting submitter gets the error; the store rolled back, and the next
        batch commits once there is room (or the server is back)."""
        log.error("block of %d transaction(s) not committed: %s", len(batch.transactions), error)
        with self._pending_lock:
            futures = [self._pending.pop(tx.tx_id, None) for tx in batch.transactions]
        for future in futures:
            if future is not None and not future.done():
                future.set_exception(error)

    def _call_labels(self, tx: Transaction) -> tuple[str, str]:
        """A committed call's contract and function as metric labels: names installed
        on this peer only, so that an invalid transaction naming anything cannot
        grow the label sets without bound."""
        proposal = tx.proposal
        functions = self._functions.get(proposal.contract)
        if functions is None:
            return ("other", "other")
        return (proposal.contract, proposal.function if proposal.function in functions else "other")

    def _after_commit(self, block: Block) -> None:
        header = block.header
        log_start = header.log_size - len(block.transactions)
        resolved = []
        settled = []
        written: set[str] = set()
        calls: Counter[tuple[str, str, str]] = Counter()
        for index, (tx, code) in enumerate(zip(block.transactions, block.codes, strict=True)):
            valid = code is ValidationCode.VALID
            if valid:
                written.update(write.ns for write in tx.response.rwset.writes)
            if tx.response.rwset.private:
                settled.append((tx.tx_id, valid, tx.response.rwset.private))
            calls[(*self._call_labels(tx), str(code))] += 1
            resolved.append(
                Receipt.of(
                    tx_id=tx.tx_id,
                    height=header.height,
                    index=index,
                    code=code,
                    block_hash=header.hash,
                    log_index=log_start + index,
                    timestamp=header.timestamp,
                )
            )
        # Identities, definitions and key-policy flags the block did not touch stay known.
        self.memo.carry(header.height, written)
        # Counted per block: a metric's labels cost a locked lookup each.
        codes: Counter[str] = Counter()
        for (contract, function, outcome), count in calls.items():
            self.metrics.contract_calls.labels(contract, function, outcome).inc(count)
            codes[outcome] += count
        for outcome, count in codes.items():
            self.metrics.transactions.labels(outcome).inc(count)
        self.vaults.settle_block(settled)
        with self._pending_lock:
            futures = [(self._pending.pop(r.tx_id, None), r) for r in resolved]
        for future, receipt in futures:
            if future is not None and not future.done():
                future.set_result(receipt)
        self.metrics.blocks.inc()
        self.metrics.height.set(header.height + 1)
        if self.checkpoints is not None:
            self._checkpoint(block)
        self.events.notify()

    def _checkpoint(self, block: Block) -> None:
        assert self.checkpoints is not None
        if self._origin is None:
            self._origin = origin_of(
                block.header if block.header.height == 0 else self.store.header(0)
            )
        try:
            self.checkpoints.observe(block.header, origin=self._origin)
        except OSError as exc:
            # The block is committed; a missing checkpoint only delays a comparison.
            log.warning("checkpoint at height %d not written: %s", block.header.height, exc)


__all__ = ["ContractError", "Endorsed", "Peer", "Receipt"]
