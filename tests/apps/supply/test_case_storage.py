"""A case has no product of its own: its trace takes the storage range of the packs it
holds (or held, once unpacked), the narrowest one within them all where they differ,
and says why where there is none."""

from __future__ import annotations

from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.apps.supply.dashboards import unit_trace
from healthledger.apps.supply.verification import PublicLedger
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import (
    DISTRIBUTOR,
    MAKER,
    MAKER_OPS,
    OTHER_GTIN,
    PHARMACY,
    PHARMACY_GLN,
    PLANT,
    capture,
    commission,
    step,
    unit,
    with_check,
)
from tests.support.members import member_reads
from tests.support.seam import supply_seam

CASE = f"00/{with_check('16951234000000091')}"


def _register(node: EmbeddedNode, low_dc: int, high_dc: int) -> None:
    node.invoke(
        MAKER,
        "supply",
        "register_product",
        {
            "gtin": OTHER_GTIN,
            "name": "Insulin pen",
            "dosage_form": "injection",
            "temp_min_dc": low_dc,
            "temp_max_dc": high_dc,
            "shelf_life_days": 365,
        },
    )


def _packed(node: EmbeddedNode, *units: str) -> None:
    capture(node, MAKER_OPS, step("pack", "pack", list(units), parent=CASE))


def _other(node: EmbeddedNode, serial: str) -> str:
    capture(
        node,
        MAKER_OPS,
        step(
            f"c-{serial}",
            "commission",
            [unit(serial, OTHER_GTIN)],
            location=PLANT,
            lot="M1",
            expiry="2099-12-31",
        ),
    )
    return unit(serial, OTHER_GTIN)


def _trace(node: EmbeddedNode) -> dict[str, object]:
    found = unit_trace(PublicLedger(supply_seam(node)), CASE)
    assert found is not None
    return found


def _caption(trace: dict[str, object]) -> str:
    chart = trace["chart"]
    assert isinstance(chart, dict)
    return str(chart["title"]["subtitle"])


def test_a_case_of_one_product_takes_its_range_and_marks_excursions(
    supply: EmbeddedNode,
) -> None:
    commission(supply, "S1", "S2")
    _packed(supply, unit("S1"), unit("S2"))
    capture(supply, MAKER_OPS, step("ship", "ship", [CASE], destination=PHARMACY_GLN))
    capture(supply, DISTRIBUTOR, step("warm", "observe", [CASE], temperatures_dc=[40, 95]))
    trace = _trace(supply)
    assert trace["storage"] == {"temp_min_dc": 20, "temp_max_dc": 80}
    assert (
        trace["storage_note"]
        == "The storage range of the packs it holds: Influenza vaccine 0.5 ml."
    )
    assert "Shaded: the storage range, 2.0 °C to 8.0 °C. The storage range of the packs" in (
        _caption(trace)
    )
    timeline = trace["timeline"]
    assert isinstance(timeline, list)
    assert [e["excursion"] for e in timeline if e["op"] == "observe"] == [True]
    # received, the case is unpacked: the packs it held still give its journey's range
    capture(supply, PHARMACY, step("in", "receive", [CASE], location=PHARMACY_GLN))
    capture(supply, PHARMACY, step("open", "unpack", [], parent=CASE))
    after = _trace(supply)
    assert after["unit"]["children"] == []  # type: ignore[index]
    assert after["storage"] == {"temp_min_dc": 20, "temp_max_dc": 80}
    assert (
        after["storage_note"] == "The storage range of the packs it held: Influenza vaccine 0.5 ml."
    )


def test_products_that_differ_give_the_narrowest_range_within_them_all(
    supply: EmbeddedNode,
) -> None:
    _register(supply, 0, 60)
    commission(supply, "S1")
    _packed(supply, unit("S1"), _other(supply, "N1"))
    trace = _trace(supply)
    assert trace["storage"] == {"temp_min_dc": 20, "temp_max_dc": 60}
    assert trace["storage_note"] == (
        "The products it holds differ (Influenza vaccine 0.5 ml: 2.0 °C to 8.0 °C; Insulin"
        " pen: 0.0 °C to 6.0 °C): this is the narrowest range, within every one of them."
    )


def test_products_with_no_range_in_common_say_so(supply: EmbeddedNode) -> None:
    _register(supply, 150, 250)
    commission(supply, "S1")
    _packed(supply, unit("S1"), _other(supply, "N1"))
    trace = _trace(supply)
    assert trace["storage"] is None
    assert trace["storage_note"] == (
        "The products it holds have no storage range in common (Influenza vaccine 0.5 ml:"
        " 2.0 °C to 8.0 °C; Insulin pen: 15.0 °C to 25.0 °C): no one temperature keeps"
        " them all."
    )
    assert _caption(trace) == trace["storage_note"]


def test_a_pack_keeps_its_own_products_range(supply: EmbeddedNode) -> None:
    commission(supply, "S1")
    found = unit_trace(PublicLedger(supply_seam(supply)), unit("S1"))
    assert found is not None
    assert found["storage"] == {"temp_min_dc": 20, "temp_max_dc": 80}
    assert found["storage_note"] is None


def test_the_history_api_answers_the_range_the_trace_shows(supply: EmbeddedNode) -> None:
    _register(supply, 0, 60)
    commission(supply, "S1")
    _packed(supply, unit("S1"), _other(supply, "N1"))
    trace = _trace(supply)
    with TestClient(create_api(supply, demo_custody=True)) as client:
        client.auth = member_reads(supply)
        case = client.get(f"/api/v1/supply/units/{CASE}/history").json()
        pack = client.get(f"/api/v1/supply/units/{unit('S1')}/history").json()
    assert case["storage"] == trace["storage"] == {"temp_min_dc": 20, "temp_max_dc": 60}
    assert case["storage_note"] == trace["storage_note"]
    assert pack["storage"] == {"temp_min_dc": 20, "temp_max_dc": 80}
    assert pack["storage_note"] is None
