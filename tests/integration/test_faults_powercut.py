"""A power cut that loses what was not synced: the node's data folder is mounted
through a filesystem that keeps every unsynced write in memory and drops it at the cut
(``tests/support/powercut_fs.py``, a stand-in for LazyFS, which is not packaged for
this machine). With the store's ``synchronous=FULL`` a commit is acknowledged only
after its write-ahead log frames were synced, so nothing acknowledged is lost; with
``synchronous=OFF`` the same harness loses acknowledged transactions, which shows it
can fail. The long run is ``benchmarks/powercut.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.powercut import run_power_cuts

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/fuse"),
    reason="a FUSE mount needs root and /dev/fuse",
)


def test_power_cuts_lose_no_acknowledged_transaction_with_synchronous_full(
    tmp_path: Path,
) -> None:
    figures = run_power_cuts(tmp_path, cycles=3, seed=20260511, most_acks=24)
    assert figures.acknowledged >= 3
    assert figures.dropped_bytes > 0, "the cuts dropped nothing: nothing was tested"
    assert figures.lost == 0, figures


def test_power_cut_loses_acknowledged_transactions_with_synchronous_off(tmp_path: Path) -> None:
    """The control: a store that acknowledges before syncing loses what it acknowledged."""
    figures = run_power_cuts(
        tmp_path, cycles=1, seed=7, synchronous="OFF", most_acks=8, audit=False
    )
    assert figures.acknowledged >= 1
    assert figures.lost > 0, figures
