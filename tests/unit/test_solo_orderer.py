"""The solo orderer cuts a full block at once, however long its timers."""

from __future__ import annotations

import threading
from typing import Any

from healthledger.ordering.orderer import Batch
from healthledger.ordering.solo import SoloOrderer


def test_full_blocks_queued_behind_a_cut_are_cut_without_waiting_for_a_timer() -> None:
    # Timers of a minute: a full block left to wait for one would not be delivered
    # within the test's wait. The orderer never looks inside a transaction.
    orderer = SoloOrderer(max_block_tx=2, batch_timeout_s=60.0, idle_timeout_s=60.0)
    batches: list[Batch] = []
    all_in = threading.Event()

    def deliver(batch: Batch) -> None:
        batches.append(batch)
        if sum(len(b.transactions) for b in batches) == 7:
            all_in.set()

    transactions: list[Any] = [f"tx-{i}" for i in range(7)]
    orderer.start(deliver)
    try:
        assert orderer.submit_many(transactions) == [None] * 7
        # Three full blocks at once; the last, half full, waits for more or a timer.
        delivered = threading.Event()
        for _ in range(200):
            if len(batches) >= 3:
                delivered.set()
                break
            all_in.wait(0.05)
        assert delivered.is_set(), f"only {len(batches)} of 3 full blocks cut"
        assert [list(b.transactions) for b in batches[:3]] == [
            ["tx-0", "tx-1"],
            ["tx-2", "tx-3"],
            ["tx-4", "tx-5"],
        ]
    finally:
        orderer.stop()  # delivers the rest
    assert [list(b.transactions) for b in batches[3:]] == [["tx-6"]]
    assert [b.sequence for b in batches] == [0, 1, 2, 3]
