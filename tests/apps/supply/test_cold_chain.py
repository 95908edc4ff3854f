"""Cold chain: an excursion quarantines units through aggregation; the maker decides."""

from __future__ import annotations

import pytest

from healthledger.apps.supply.dashboards import unit_trace
from healthledger.apps.supply.service import temperatures_dc
from healthledger.apps.supply.verification import PublicLedger
from healthledger.contracts.errors import AccessDenied, Rejected
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import (
    DISTRIBUTOR,
    MAKER,
    MAKER_OPS,
    PHARMACY,
    PHARMACY_GLN,
    REGULATOR,
    SSCC,
    capture,
    commission,
    step,
    unit,
)
from tests.support.seam import supply_seam

CASE = f"00/{SSCC}"


def _record(node: EmbeddedNode, serial: str) -> dict[str, object]:
    found = node.query(REGULATOR, "supply", "unit", {"unit": unit(serial)})
    assert isinstance(found, dict)
    return found


def _in_transit_case(node: EmbeddedNode) -> None:
    commission(node, "T1", "T2", "T3")
    capture(node, MAKER_OPS, step("pack", "pack", [unit("T1"), unit("T2")], parent=CASE))
    capture(node, MAKER_OPS, step("ship", "ship", [CASE], destination=PHARMACY_GLN))


def test_readings_inside_the_range_change_nothing(supply: EmbeddedNode) -> None:
    _in_transit_case(supply)
    result = capture(
        supply, DISTRIBUTOR, step("ok", "observe", [CASE], temperatures_dc=[25, 40, 80])
    )
    assert result["alerts"] == 0
    assert _record(supply, "T1")["quarantined"] is False


def test_the_trace_chart_names_each_step_in_words(supply: EmbeddedNode) -> None:
    _in_transit_case(supply)
    capture(supply, DISTRIBUTOR, step("ok", "observe", [CASE], temperatures_dc=[25, 40, 80]))
    trace = unit_trace(PublicLedger(supply_seam(supply)), unit("T1"))
    assert trace is not None
    bars = next(layer for layer in trace["chart"]["layer"] if layer["mark"]["type"] == "rule")
    assert [row["what"] for row in bars["data"]["values"]] == ["checked in transit"]


def test_excursion_quarantines_the_case_contents(supply: EmbeddedNode) -> None:
    _in_transit_case(supply)
    result = capture(supply, DISTRIBUTOR, step("hot", "observe", [CASE], temperatures_dc=[50, 123]))
    assert result["alerts"] == 1
    assert _record(supply, "T1")["quarantined"] is True
    assert _record(supply, "T2")["quarantined"] is True
    assert _record(supply, "T3")["quarantined"] is False
    alerts = supply.query(MAKER, "supply", "alerts", {})
    assert [a["kind"] for a in alerts] == ["temperature_excursion"]
    assert sorted(alerts[0]["units"]) == sorted([unit("T1"), unit("T2")])
    assert supply.query(DISTRIBUTOR, "supply", "alerts", {}) == alerts  # the holder sees it
    capture(supply, PHARMACY, step("recv", "receive", [CASE]))
    capture(supply, PHARMACY, step("open", "unpack", [], parent=CASE))
    refused = capture(
        supply, PHARMACY, step("sell", "dispense", [unit("T1")], location=PHARMACY_GLN)
    )
    assert "quarantined" in refused["refused"][0]["reason"]

    decide = {"unit": unit("T1"), "decision": "release", "reason": "stability data OK"}
    with pytest.raises(AccessDenied):
        supply.invoke(MAKER_OPS, "supply", "decide_quarantine", decide)
    with pytest.raises(AccessDenied):
        supply.invoke(REGULATOR, "supply", "decide_quarantine", decide)
    supply.invoke(MAKER, "supply", "decide_quarantine", decide)
    with pytest.raises(Rejected, match="not quarantined"):
        supply.invoke(MAKER, "supply", "decide_quarantine", decide)
    sold = capture(
        supply, PHARMACY, step("sell-2", "dispense", [unit("T1")], location=PHARMACY_GLN)
    )
    assert sold["refused"] == []
    destroy = {"unit": unit("T2"), "decision": "destroy", "reason": "excursion too long"}
    supply.invoke(MAKER, "supply", "decide_quarantine", destroy)
    assert _record(supply, "T2")["status"] == "destroyed"


def test_temperatures_from_sensor_reports() -> None:
    event = {
        "sensorElementList": [
            {
                "sensorReport": [
                    {"type": "Temperature", "value": 26.15, "uom": "CEL"},
                    {"type": "gs1:Temperature", "minValue": 35.6, "maxValue": 46.4, "uom": "FAH"},
                    {"type": "Humidity", "value": 12.1, "uom": "A93"},
                    {"type": "Temperature", "value": True},
                ]
            }
        ]
    }
    assert temperatures_dc(event) == [262, 20, 80]
