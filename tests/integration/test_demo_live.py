"""The demo's live traffic: rounds keep committing while the console is served, and a
failing round is reported without stopping the others."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping

import pytest

from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.demo.traffic import LiveTraffic, contracts_changed
from healthledger.node.embedded import EmbeddedNode
from tests.conftest import CONTRACTS
from tests.support.contracts import Notebook

DOCTOR = "gz-first-hospital/dr-li"


def _count_up(node: EmbeddedNode, rng: random.Random) -> Mapping[str, int]:
    node.invoke(DOCTOR, "notebook", "add", {"key": "live", "amount": rng.randint(1, 3)})
    return {"writes": 1}


def _broken(node: EmbeddedNode, rng: random.Random) -> Mapping[str, int]:
    raise RuntimeError("the simulator lost its way")


def test_a_round_runs_every_step_and_survives_a_failing_one(node: EmbeddedNode) -> None:
    live = LiveTraffic(
        node, [("broken", _broken), ("notebook", _count_up)], random.Random(1), every=60
    )
    live.run_round()
    live.run_round()
    assert live.failures == 2
    assert live.rounds == 2
    assert live.counts == {"notebook.writes": 2}
    assert node.query(DOCTOR, "notebook", "get", {"key": "live"})["value"] >= 2


def test_rounds_run_in_the_background_until_stopped(node: EmbeddedNode) -> None:
    live = LiveTraffic(node, [("notebook", _count_up)], random.Random(2), every=0.05)
    height = node.peer.store.height()
    live.start()
    deadline = time.monotonic() + 30
    while live.rounds < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    live.stop()
    assert live.rounds >= 3
    stopped_at = live.rounds
    assert node.peer.store.height() > height
    time.sleep(0.2)
    assert live.rounds == stopped_at


def test_the_interval_must_be_positive(node: EmbeddedNode) -> None:
    with pytest.raises(ValueError, match="positive"):
        LiveTraffic(node, [], random.Random(3), every=0)


class ChangedNotebook(Notebook):
    """The Notebook contract as another version of healthledger would install it."""

    name = "notebook"

    def note(self) -> str:
        """Code the approved version does not have."""
        return "changed"


def test_a_demo_folder_of_another_version_names_the_contracts_that_changed(
    node: EmbeddedNode,
) -> None:
    """`healthledger demo` reopening a folder checks this first: its ledger approved
    other code for these contracts, so the demo says so in one line instead of failing
    at the first transaction of one of them."""
    assert contracts_changed(node, CONTRACTS) == []
    changed = contracts_changed(node, (*SYSTEM_CONTRACTS, ChangedNotebook))
    assert changed == ["notebook"]
