"""The solo orderer: one in-process queue, a block cut at a size limit, at a timeout,
at once for a lone submission, or once a stream of submissions pauses.

A lone submission (one ``submit`` or ``submit_many`` that finds the orderer waiting
and nothing behind it) is cut at once: a client waiting on its own write does not
wait out a timer. Submissions that come together (several found waiting, as under
load, where they queue while the previous block validates and commits) are
gathered until none has arrived for ``idle_timeout_s``: fewer, larger blocks, whose
fixed cost (the commit's fsync, the log's Merkle nodes) is shared. Transactions of
one ``submit_many`` enter the queue together, so no cut falls between them except
at the size limit.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence

from healthledger.ledger.transaction import Transaction
from healthledger.ordering.orderer import Batch, Deliver, OrderingError

_STOP = object()
IDLE_TIMEOUT_S = 0.002
"""A block of several submissions is cut once none has arrived for this long."""


def wall_clock_ms() -> int:
    """Current Unix time in milliseconds."""
    return time.time_ns() // 1_000_000


class SoloOrderer:
    """Orders transactions in arrival order on a single thread."""

    persistent = False
    """Queued transactions live in this process until their block commits."""

    def __init__(
        self,
        *,
        max_block_tx: int = 500,
        batch_timeout_s: float = 0.05,
        max_queue: int = 100_000,
        clock: Callable[[], int] = wall_clock_ms,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        """A block is cut at ``max_block_tx`` transactions, ``batch_timeout_s`` after its
        first, at once if it holds one submission and nothing waits behind it, or
        else once no submission arrived for ``idle_timeout_s``; at most ``max_queue``
        transactions wait to be cut."""
        if max_block_tx < 1:
            raise ValueError("max_block_tx must be at least 1")
        self._max = max_block_tx
        self._timeout = batch_timeout_s
        self._idle = min(idle_timeout_s, batch_timeout_s)
        self._clock = clock
        self._max_queue = max_queue
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._queued = 0
        """Transactions taken and not yet cut into a block (at most ``max_queue``)."""
        self._queued_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._sequence = 0

    def start(self, deliver: Deliver) -> None:
        """Start the cutting thread."""
        if self._thread is not None:
            raise OrderingError("orderer already started")
        self._thread = threading.Thread(
            target=self._run, args=(deliver,), name="solo-orderer", daemon=True
        )
        self._thread.start()

    def submit(self, tx: Transaction) -> None:
        """Queue a transaction."""
        outcome = self.submit_many([tx])[0]
        if outcome is not None:
            raise outcome

    def submit_many(self, transactions: Sequence[Transaction]) -> list[OrderingError | None]:
        """Queue several transactions, in the order given and together: an idle cut
        never falls between them (a block may still end at its size limit). Those past
        the queue's room are refused."""
        if self._stopped or self._thread is None:
            return [OrderingError("the orderer is not running")] * len(transactions)
        with self._queued_lock:
            taken = max(0, min(len(transactions), self._max_queue - self._queued))
            self._queued += taken
        if taken:
            self._queue.put(tuple(transactions[:taken]))
        full = OrderingError("the ordering queue is full; retry later")
        return [None] * taken + [full] * (len(transactions) - taken)

    def stop(self) -> None:
        """Deliver what is queued, then stop."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()

    def _run(self, deliver: Deliver) -> None:
        pending: list[Transaction] = []
        submissions = 0  # queue items (submit or submit_many calls) in the open block
        deadline = 0.0
        idle_at = 0.0
        while True:
            if not pending:
                wait: float | None = None
            elif len(pending) >= self._max:
                wait = 0.0  # a full block is waiting: cut it now, not when the timer says
            else:
                wait = max(0.0, min(deadline, idle_at) - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            stopping = item is _STOP
            if isinstance(item, tuple):
                if not pending:
                    deadline = time.monotonic() + self._timeout
                    submissions = 0
                pending.extend(item)
                submissions += 1
                # Everything already waiting joins the open block.
                while len(pending) < self._max:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        stopping = True
                        break
                    assert isinstance(more, tuple)
                    pending.extend(more)
                    submissions += 1
                # A lone submission is cut now; a stream is gathered until it pauses.
                idle_at = time.monotonic() + (0.0 if submissions == 1 else self._idle)
            if stopping:
                while pending:
                    self._cut(pending[: self._max], deliver)
                    pending = pending[self._max :]
                return
            now = time.monotonic()
            if pending and (len(pending) >= self._max or now >= deadline or now >= idle_at):
                self._cut(pending[: self._max], deliver)
                pending = pending[self._max :]
                submissions = 2  # what is left of a stream
                deadline = time.monotonic() + self._timeout
                idle_at = time.monotonic() + self._idle

    def _cut(self, txs: list[Transaction], deliver: Deliver) -> None:
        with self._queued_lock:
            self._queued -= len(txs)
        batch = Batch(self._sequence, tuple(txs), self._clock())
        self._sequence += 1
        deliver(batch)
