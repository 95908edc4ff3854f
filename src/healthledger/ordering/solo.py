"""The solo orderer: one in-process queue, a block cut at a size limit, at a timeout,
or as soon as no transaction has arrived for a moment (the queue went idle)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence

from healthledger.ledger.transaction import Transaction
from healthledger.ordering.orderer import Batch, Deliver, OrderingError

_STOP = object()
IDLE_TIMEOUT_S = 0.002
"""An open block is cut once no transaction has arrived for this long."""


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
        first, or once no transaction arrived for ``idle_timeout_s``, so that a client
        waiting for its commit does not wait out the whole batch timeout."""
        if max_block_tx < 1:
            raise ValueError("max_block_tx must be at least 1")
        self._max = max_block_tx
        self._timeout = batch_timeout_s
        self._idle = min(idle_timeout_s, batch_timeout_s)
        self._clock = clock
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
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
        if self._stopped or self._thread is None:
            raise OrderingError("the orderer is not running")
        try:
            self._queue.put_nowait(tx)
        except queue.Full as exc:
            raise OrderingError("the ordering queue is full; retry later") from exc

    def submit_many(self, transactions: Sequence[Transaction]) -> list[OrderingError | None]:
        """Queue several transactions (in the order given)."""
        outcomes: list[OrderingError | None] = []
        for tx in transactions:
            try:
                self.submit(tx)
            except OrderingError as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)
        return outcomes

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
        deadline = 0.0
        idle_at = 0.0
        while True:
            wait = None if not pending else max(0.0, min(deadline, idle_at) - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            if item is _STOP:
                if pending:
                    self._cut(pending, deliver)
                return
            if isinstance(item, Transaction):
                if not pending:
                    deadline = time.monotonic() + self._timeout
                pending.append(item)
                while len(pending) < self._max:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        self._queue.put(_STOP)
                        break
                    assert isinstance(more, Transaction)
                    pending.append(more)
                idle_at = time.monotonic() + self._idle
            now = time.monotonic()
            if pending and (len(pending) >= self._max or now >= deadline or now >= idle_at):
                self._cut(pending[: self._max], deliver)
                pending = pending[self._max :]
                deadline = time.monotonic() + self._timeout
                idle_at = time.monotonic() + self._idle

    def _cut(self, txs: list[Transaction], deliver: Deliver) -> None:
        batch = Batch(self._sequence, tuple(txs), self._clock())
        self._sequence += 1
        deliver(batch)
