"""Several transactions in one stream message, when the load allows it.

With ``sync_interval: always`` every stream message costs an fsync on each server that
stores it, so a cluster acknowledges about as many messages per second as its disks
sync, whatever their size. Under load a peer therefore packs the transactions waiting
to be published into one message (a canonical JSON array of canonical transactions),
while at most ``max_in_flight`` messages await their acks: a transaction that finds
the peer idle still goes out at once, alone, as before. Packing changes no block: the
cutter unpacks a message into its transactions in order, and blocks are still cut
only between messages, so a peer that resumes after the closing message of its last
block cuts what every other peer cuts.

A message of one transaction has the transaction id as its message id, as always; a
packed message has the hash of its transaction ids, so the stream drops a packed
message published again (a retry after a lost ack). A transaction resubmitted in
another pack is not dropped by the stream: every peer marks its second occurrence
``DUPLICATE_TXID`` when it validates the block, as it does past the stream's
de-duplication window, and its receipt stays the first occurrence's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from healthledger.crypto.canonical import parse_canonical
from healthledger.crypto.errors import CryptoError
from healthledger.ledger.errors import InvalidTransaction, LedgerError
from healthledger.ledger.transaction import Transaction
from healthledger.ordering.orderer import OrderingError

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 512 * 1024
"""The largest packed message (NATS refuses payloads over 1 MiB by default); a single
larger transaction still goes alone."""


@dataclass(frozen=True)
class StreamMessage:
    """What is published for one or several transactions."""

    payload: bytes
    msg_id: str
    """The stream's de-duplication id."""
    count: int
    first_tx_id: str

    def describe(self) -> str:
        """The transaction(s) it carries, for an error message."""
        if self.count == 1:
            return self.first_tx_id
        return f"{self.count} transactions ({self.first_tx_id} first)"


def pack(transactions: Sequence[Transaction]) -> StreamMessage:
    """The stream message carrying ``transactions`` (at least one), in order."""
    if not transactions:
        raise ValueError("a stream message carries at least one transaction")
    first = transactions[0].tx_id
    if len(transactions) == 1:
        return StreamMessage(transactions[0].canonical, first, 1, first)
    ids = ",".join(tx.tx_id for tx in transactions).encode("ascii")
    payload = b"[" + b",".join(tx.canonical for tx in transactions) + b"]"
    return StreamMessage(
        payload, "txs-" + hashlib.sha256(ids).hexdigest(), len(transactions), first
    )


def unpack(payload: bytes) -> tuple[list[Transaction], int]:
    """The transactions a stream message carries, in order, and how many of its parts
    were not transactions (skipped the same way by every peer); InvalidTransaction if
    the message is neither a transaction nor an array of them."""
    try:
        parsed = parse_canonical(payload)
    except CryptoError as exc:
        raise InvalidTransaction(f"not canonical JSON: {exc}") from exc
    if not isinstance(parsed, list):
        try:
            return [Transaction.from_json(parsed)], 0
        except (LedgerError, CryptoError) as exc:
            raise InvalidTransaction(str(exc)) from exc
    if not parsed:
        raise InvalidTransaction("an empty array of transactions")
    found: list[Transaction] = []
    bad = 0
    for part in parsed:
        try:
            found.append(Transaction.from_json(part))
        except (LedgerError, CryptoError) as exc:
            bad += 1
            log.warning("a packed stream message holds a part that is no transaction: %s", exc)
    return found, bad


Publish = Callable[[StreamMessage, float], Awaitable[None]]
"""Publishes one message by a deadline (``time.monotonic()``); OrderingError if not stored."""


class Outbox:
    """Transactions waiting for the stream, packed into messages as they leave: at
    most ``max_in_flight`` messages await their acks at once, each carrying up to
    ``max_tx`` transactions and ``MAX_MESSAGE_BYTES``. Runs on the orderer's loop."""

    def __init__(
        self, *, publish: Publish, max_tx: int, max_in_flight: int, timeout_s: float
    ) -> None:
        self._publish = publish
        self.max_tx = max(1, max_tx)
        self.max_in_flight = max(1, max_in_flight)
        self.timeout_s = timeout_s
        self._queue: deque[tuple[Transaction, float, asyncio.Future[OrderingError | None]]]
        self._queue = deque()
        self._in_flight = 0

    async def order(self, transactions: Sequence[Transaction]) -> list[OrderingError | None]:
        """Publish ``transactions``; per transaction, None once the stream stored it,
        else the OrderingError that says why not."""
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        futures = []
        for tx in transactions:
            future: asyncio.Future[OrderingError | None] = loop.create_future()
            self._queue.append((tx, now, future))
            futures.append(future)
        self._pump()
        return [await future for future in futures]

    def _pump(self) -> None:
        while self._queue and self._in_flight < self.max_in_flight:
            taken = [self._queue.popleft()]
            size = len(taken[0][0].canonical)
            while self._queue and len(taken) < self.max_tx:
                more = len(self._queue[0][0].canonical) + 1
                if size + more > MAX_MESSAGE_BYTES:
                    break
                taken.append(self._queue.popleft())
                size += more
            self._in_flight += 1
            asyncio.get_running_loop().create_task(self._send(taken))

    async def _send(
        self, taken: list[tuple[Transaction, float, asyncio.Future[OrderingError | None]]]
    ) -> None:
        outcome: OrderingError | None = None
        try:
            # The oldest transaction's wait counts: none waits longer than the timeout.
            await self._publish(pack([tx for tx, _, _ in taken]), taken[0][1] + self.timeout_s)
        except OrderingError as exc:
            outcome = exc
        except Exception as exc:  # noqa: BLE001 - every waiting submitter must hear of it
            outcome = OrderingError(f"publishing failed: {type(exc).__name__}: {exc}")
        finally:
            self._in_flight -= 1
        for _, _, future in taken:
            if not future.done():
                future.set_result(outcome)
        self._pump()
