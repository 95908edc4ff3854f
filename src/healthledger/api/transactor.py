"""Writes and queries: read what a client sent, endorse, check, order and await the commit.

A transaction is checked against the current state before it is ordered, so that a
forged, replayed or unendorsed transaction is refused with a problem and never
lands in a block. (A transaction that passes may still be invalidated at commit by
a concurrent write; its receipt then says so.)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from healthledger.api.problems import ApiError, problem
from healthledger.contracts.refusal import settle
from healthledger.errors import HealthledgerError
from healthledger.ledger.transaction import SignedProposal, Transaction, ValidationCode
from healthledger.node.gateway import consortium_gateway
from healthledger.node.parts import Node
from healthledger.node.peer import Receipt

MAX_WAIT_S = 60.0
"""The longest a request may wait for its transaction to commit."""


@dataclass(frozen=True)
class DemoIdentity:
    """An identity whose key the server holds in demo custody."""

    id: str
    org: str
    name: str
    role: str


class Transactor:
    """Turns client requests into endorsed, ordered, committed transactions."""

    def __init__(self, node: Node, *, demo_custody: bool) -> None:
        self.node = node
        self.peer = node.peer
        self.demo_custody = demo_custody
        self.gateway = consortium_gateway(node)
        """A consortium peer's gateway, which gathers the endorsements of other
        organisations' peers; None on an embedded node (it holds every key)."""

    def demo_proposal(
        self, identity: str, contract: str, function: str, args: dict[str, Any]
    ) -> SignedProposal:
        """A proposal the server signs with ``identity``'s demo key."""
        signed, _ = self.demo_call(identity, contract, function, args)
        return signed

    def demo_call(
        self,
        identity: str,
        contract: str,
        function: str,
        args: dict[str, Any],
        transient: dict[str, Any] | None = None,
    ) -> tuple[SignedProposal, dict[str, Any] | None]:
        """A proposal the server signs with ``identity``'s demo key, and ``transient``
        salted (so its hash on chain cannot be guessed) and bound by that hash."""
        if not self.demo_custody:
            raise ApiError(problem("not-found", "demo custody is not enabled on this node"))
        if self.node.keystore.get(identity) is None:
            raise ApiError(problem("access-denied", f"no demo key is held for {identity}"))
        salted = None if transient is None else self.node.keystore.with_salt(transient)
        return self.node.propose(identity, contract, function, args, transient=salted), salted

    def demo_identities(self) -> list[DemoIdentity]:
        """The identities whose keys the server holds (empty without demo custody)."""
        if not self.demo_custody:
            return []
        return [
            DemoIdentity(e.id, e.cert.org, e.cert.name, e.cert.role)
            for e in self.node.keystore.entries()
        ]

    # --- execute, check, order ---------------------------------------------------------

    def endorse(
        self, signed: SignedProposal, transient: Mapping[str, Any] | None = None
    ) -> Transaction:
        """Simulate and endorse a proposal; ``transient`` reaches the contract only (and,
        on a consortium peer, the other organisations' peers its policies need)."""
        if self.gateway is not None:
            return self.gateway.endorse(signed, transient)
        return self.peer.endorse(signed, transient=transient)

    def checked_submit(self, tx: Transaction) -> Future[Receipt]:
        """Precheck ``tx`` and send it to ordering."""
        return self.peer.submit(tx, precheck=True)

    def checked_submit_many(self, txs: Sequence[Transaction]) -> list[Future[Receipt]]:
        """Precheck each of ``txs`` and send those that pass to ordering together; one
        future per transaction, holding the refusal of one that did not pass."""
        return self.peer.submit_many(txs, precheck=True)

    async def committed(self, future: Future[Receipt], tx_id: str, timeout: float) -> Receipt:
        """The receipt once ``tx_id`` commits valid; problem otherwise. Awaits without
        holding a thread."""
        timeout = min(timeout, MAX_WAIT_S)
        try:
            receipt = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout)
        except TimeoutError as exc:
            raise _commit_timeout(tx_id, timeout) from exc
        return _valid(receipt, tx_id)

    async def committed_many(
        self, waiting: Sequence[tuple[str, Future[Receipt]]], timeout: float
    ) -> list[Receipt | HealthledgerError]:
        """As :meth:`committed` for each ``(tx_id, future)``, awaited together: the event
        loop is woken once for the lot (when the last settles, or at the timeout) rather
        than once per transaction; per transaction, its receipt or the error
        :meth:`committed` raises."""
        return await receipts_of(waiting, min(timeout, MAX_WAIT_S))

    async def submit(self, tx: Transaction, *, timeout: float) -> Receipt:
        """Check, order and await a client-assembled transaction; a committed one whose
        result reports a refused part raises :class:`RefusedInPart`."""
        future = await run_in_threadpool(self.checked_submit, tx)
        receipt = await self.committed(future, tx.tx_id, timeout)
        settle(tx.tx_id, receipt.to_json(), tx.response.result)
        return receipt

    async def submit_nowait(self, tx: Transaction) -> None:
        """Check and order a transaction without waiting for its commit."""
        await run_in_threadpool(self.checked_submit, tx)

    async def invoke(
        self,
        signed: SignedProposal,
        *,
        timeout: float,
        transient: Mapping[str, Any] | None = None,
    ) -> tuple[Receipt, Any]:
        """Endorse, order and await a proposal; the receipt and the function's result.
        A committed transaction whose result reports a part its contract refused (and
        recorded as evidence) raises :class:`RefusedInPart`: never a bare success."""
        tx = await run_in_threadpool(self.endorse, signed, transient)
        future = await run_in_threadpool(self.peer.submit, tx)
        receipt = await self.committed(future, tx.tx_id, timeout)
        return receipt, settle(tx.tx_id, receipt.to_json(), tx.response.result)

    async def query(self, signed: SignedProposal) -> Any:
        """Run a query function as the proposal's creator."""
        return await run_in_threadpool(self.peer.evaluate, signed)


async def receipts_of(
    waiting: Sequence[tuple[str, Future[Receipt]]], timeout: float
) -> list[Receipt | HealthledgerError]:
    """Per ``(tx_id, future)``, once every future has settled or ``timeout`` s have
    passed: its receipt if it committed valid, else the problem (commit-timeout,
    transaction-invalidated) or the refusal its future holds."""
    await _all_settled([future for _, future in waiting], timeout)
    outcomes: list[Receipt | HealthledgerError] = []
    for tx_id, future in waiting:
        try:
            if not future.done():
                raise _commit_timeout(tx_id, timeout)
            outcomes.append(_valid(future.result(), tx_id))
        except HealthledgerError as exc:
            outcomes.append(exc)
    return outcomes


def _commit_timeout(tx_id: str, timeout: float) -> ApiError:
    return ApiError(
        problem(
            "commit-timeout",
            f"{tx_id} did not commit within {timeout:g} s; fetch its receipt later",
            extensions={
                "tx_id": tx_id,
                "receipt": f"/api/v1/transactions/{tx_id}/receipt",
            },
        )
    )


def _valid(receipt: Receipt, tx_id: str) -> Receipt:
    """``receipt`` if its transaction committed valid; else the problem that says so."""
    if receipt.code is not ValidationCode.VALID:
        raise ApiError(
            problem(
                "transaction-invalidated",
                f"{tx_id} committed in block {receipt.height} but was marked "
                f"{receipt.code} and changed nothing",
                extensions={"receipt": receipt.to_json()},
            )
        )
    return receipt


async def _all_settled(futures: Sequence[Future[Receipt]], timeout: float) -> None:
    """Return once every one of ``futures`` is done, or after ``timeout`` s. The last to
    settle wakes the event loop, once (a wrapped future per transaction would wake it,
    and write to its self-pipe, once each)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    lock = threading.Lock()
    left = len(futures)

    def settled(_: Future[Receipt]) -> None:
        nonlocal left
        with lock:
            left -= 1
            last = left == 0
        if last:
            loop.call_soon_threadsafe(_resolve, done)

    if not futures:
        return
    for future in futures:
        future.add_done_callback(settled)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(done), timeout)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
