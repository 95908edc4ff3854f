"""Live demo traffic: each round moves the live cases one step, from maker to patient,
with excursions, recalls and counterfeit attempts now and then."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from healthledger.apps.registry import INSTALLED_APPS
from healthledger.apps.supply.simulate import LIVE_CASES
from healthledger.apps.supply.verification import PublicLedger
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import CONTRACTS, REGULATOR
from tests.support.seam import supply_seam

APP = next(app for app in INSTALLED_APPS if app.name == "supply")
ROUND_MS = 3_000


class SteppingClock:
    """Wall time when the test starts, moved on by the test one round at a time."""

    def __init__(self) -> None:
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def live(tmp_path: Path, clock: SteppingClock) -> Iterator[EmbeddedNode]:
    node = EmbeddedNode.create(
        tmp_path / "data", contracts=CONTRACTS, batch_timeout_s=0.005, clock=clock, plans=DEMO_ORGS
    )
    node.start()
    yield node
    node.stop()


def rounds(node: EmbeddedNode, clock: SteppingClock, rng: random.Random, n: int) -> Counter[str]:
    assert APP.live_step is not None
    total: Counter[str] = Counter()
    for _ in range(n):
        clock.now += ROUND_MS
        total.update(APP.live_step(supply_seam(node), rng))
    return total


def live_units(node: EmbeddedNode) -> list[dict[str, Any]]:
    ledger = PublicLedger(supply_seam(node))
    return [r for _, r in ledger.range("unit/01/") if str(r.get("lot", "")).startswith("LV")]


def live_cases(node: EmbeddedNode) -> list[dict[str, Any]]:
    ledger = PublicLedger(supply_seam(node))
    packs = {u["unit"]: u for u in live_units(node)}
    cases = []
    for _, case in ledger.range("unit/00/"):
        trail = ledger.trail(case["unit"])
        if trail and trail[0]["op"] == "pack":
            anchor = ledger.get(f"anchor/{trail[0]['event_hash'][14:78]}")
            if any(u in packs for u in anchor["units"]):
                cases.append(case)
    return cases


def test_each_round_moves_a_case_one_step(live: EmbeddedNode, clock: SteppingClock) -> None:
    rng = random.Random(11)
    first = rounds(live, clock, rng, 1)
    assert first["master_data"] == 1 and first["cases"] == 1
    (case,) = live_cases(live)
    assert (case["status"], case["custodian"], len(case["children"]) >= 3) == (
        "active",
        "lingnan-bio",
        True,
    )
    rounds(live, clock, rng, 1)
    shipped = next(c for c in live_cases(live) if c["unit"] == case["unit"])
    assert shipped["status"] == "in_transit"
    rounds(live, clock, rng, 1)
    received = next(c for c in live_cases(live) if c["unit"] == case["unit"])
    assert received["status"] == "active" and received["custodian"] != "lingnan-bio"
    assert received["children"] == []  # unpacked at the site
    rounds(live, clock, rng, 1)
    sold = [u for u in live_units(live) if u["status"] == "dispensed"]
    assert sold and all(u["custodian"] == received["custodian"] for u in sold)


def test_live_traffic_keeps_going_after_the_demo_history(
    live: EmbeddedNode, clock: SteppingClock
) -> None:
    assert APP.simulate is not None
    APP.simulate(supply_seam(live), random.Random(5))
    total = rounds(live, clock, random.Random(5), 60)
    assert total.get("refused", 0) == 0
    assert total["cases"] >= LIVE_CASES + 5
    assert total["excursions"] >= 1 and total["counterfeit_attempts"] >= 1
    statuses = Counter(u["status"] for u in live_units(live))
    assert statuses["dispensed"] >= 10
    in_flight = [c for c in live_cases(live) if c["children"] or c["status"] == "in_transit"]
    assert 1 <= len(in_flight) <= LIVE_CASES + 1
    kinds = {
        a["kind"] for a in live.query(REGULATOR, "supply", "alerts", {}) if "FAKE" in a["unit"]
    }
    assert "unknown_serial" in kinds


def test_a_recall_and_quarantine_decisions_happen_live(
    live: EmbeddedNode, clock: SteppingClock
) -> None:
    total = rounds(live, clock, random.Random(2), 120)
    recalls = list(PublicLedger(supply_seam(live)).range("recall/"))
    assert total["recalls"] == len(recalls) >= 1
    assert all(r["lot"].startswith("LV") for _, r in recalls)
    for _, recall in recalls:  # recalled while there was something to take back
        lot = [u for u in live_units(live) if u["lot"] == recall["lot"]]
        assert lot and any(u["status"] != "dispensed" for u in lot), recall
    assert total["quarantine_released"] + total["quarantine_destroyed"] >= 1
