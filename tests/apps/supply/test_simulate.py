"""The demo simulator drives real supply traffic, with its alerts, excursion and recall."""

from __future__ import annotations

import random

from healthledger.apps.registry import INSTALLED_APPS
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import REGULATOR
from tests.support.seam import supply_seam

APP = next(app for app in INSTALLED_APPS if app.name == "supply")


def test_simulator_produces_traffic_and_signals(node: EmbeddedNode) -> None:
    assert APP.simulate is not None
    counts = APP.simulate(supply_seam(node), random.Random(7))
    assert counts["events"] > 20
    assert counts["master_data"] == 6
    assert counts["recalls"] == 1
    assert counts["excursions"] >= 1
    assert counts.get("refused", 0) == 0
    kinds = {a["kind"] for a in node.query(REGULATOR, "supply", "alerts", {})}
    assert {"dispensed_twice", "unknown_serial", "temperature_excursion"} <= kinds
    again = APP.simulate(supply_seam(node), random.Random(8))
    assert again["master_data"] == 0 and again["events"] > 20
