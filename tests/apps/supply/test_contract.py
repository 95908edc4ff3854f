"""The supply contract on a real embedded node: master data, custody, signals."""

from __future__ import annotations

from typing import Any

import pytest

from healthledger.contracts.errors import AccessDenied, InvalidArguments, Rejected
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import (
    DISTRIBUTOR,
    GTIN,
    HOSPITAL,
    HOSPITAL_GLN,
    MAKER,
    MAKER_OPS,
    OTHER_GTIN,
    PHARMACY,
    PHARMACY_GLN,
    PLANT,
    REGULATOR,
    SSCC,
    WAREHOUSE,
    capture,
    commission,
    event_hash,
    step,
    unit,
    with_check,
)

PERSON = "p-4f9c2a7d1e8b3c6a"


def get_unit(node: EmbeddedNode, serial: str) -> Any:
    return node.query(REGULATOR, "supply", "unit", {"unit": unit(serial)})


def ship_to(node: EmbeddedNode, who: str, units: list[str], gln: str, label: str) -> Any:
    return capture(node, who, step(label, "ship", units, destination=gln))


def test_product_registration_rules(node: EmbeddedNode) -> None:
    args = {
        "gtin": GTIN,
        "name": "Vaccine",
        "dosage_form": "injection",
        "temp_min_dc": 20,
        "temp_max_dc": 80,
        "shelf_life_days": 365,
    }
    with pytest.raises(Rejected, match="check digit"):
        node.invoke(MAKER, "supply", "register_product", {**args, "gtin": GTIN[:-1] + "0"})
    with pytest.raises(Rejected, match="range is empty"):
        node.invoke(MAKER, "supply", "register_product", {**args, "temp_min_dc": 90})
    with pytest.raises(AccessDenied):
        node.invoke(PHARMACY, "supply", "register_product", args)
    with pytest.raises(InvalidArguments):
        node.invoke(MAKER, "supply", "register_product", {**args, "temp_min_dc": "25"})
    _, product = node.invoke(MAKER, "supply", "register_product", args)
    assert product["maker"] == "lingnan-bio"
    with pytest.raises(Rejected, match="already registered"):
        node.invoke(MAKER, "supply", "register_product", args)


def test_location_is_bound_to_the_callers_org(node: EmbeddedNode) -> None:
    _, location = node.invoke(
        PHARMACY, "supply", "register_location", {"gln": PHARMACY_GLN, "name": "x"}
    )
    assert location["org"] == "yuexiu-pharmacy"
    with pytest.raises(Rejected, match="already bound to yuexiu-pharmacy"):
        node.invoke(PHARMACY, "supply", "register_location", {"gln": PHARMACY_GLN, "name": "y"})
    with pytest.raises(AccessDenied, match="outside the GS1 company prefixes of pearl-logistics"):
        node.invoke(DISTRIBUTOR, "supply", "register_location", {"gln": PHARMACY_GLN, "name": "x"})
    with pytest.raises(Rejected, match="check digit"):
        node.invoke(
            DISTRIBUTOR, "supply", "register_location", {"gln": "1234567890123", "name": "x"}
        )


def test_full_lifecycle_through_aggregation(supply: EmbeddedNode) -> None:
    commission(supply, "A1", "A2")
    assert get_unit(supply, "A1")["custodian"] == "lingnan-bio"
    capture(supply, MAKER_OPS, step("pack", "pack", [unit("A1"), unit("A2")], parent=f"00/{SSCC}"))
    with pytest.raises(Rejected, match="ship the parent"):
        ship_to(supply, MAKER_OPS, [unit("A1")], WAREHOUSE, "ship-child")
    ship_to(supply, MAKER_OPS, [f"00/{SSCC}"], WAREHOUSE, "ship-case")
    assert get_unit(supply, "A1")["status"] == "in_transit"
    with pytest.raises(AccessDenied, match="bound for GLN"):
        capture(supply, PHARMACY, step("steal", "receive", [f"00/{SSCC}"]))
    capture(supply, DISTRIBUTOR, step("recv", "receive", [f"00/{SSCC}"]))
    a1 = get_unit(supply, "A1")
    assert (a1["custodian"], a1["location"], a1["status"]) == (
        "pearl-logistics",
        WAREHOUSE,
        "active",
    )
    capture(supply, DISTRIBUTOR, step("unpack", "unpack", [], parent=f"00/{SSCC}"))
    ship_to(supply, DISTRIBUTOR, [unit("A1")], PHARMACY_GLN, "ship-a1")
    capture(supply, PHARMACY, step("recv-a1", "receive", [unit("A1")]))
    result = capture(
        supply, PHARMACY, step("sell", "dispense", [unit("A1")], location=PHARMACY_GLN)
    )
    assert result["refused"] == []
    assert get_unit(supply, "A1")["status"] == "dispensed"
    trail = supply.query(REGULATOR, "supply", "trail", {"unit": unit("A1")})
    assert [t["op"] for t in trail] == [
        "commission", "pack", "ship", "receive", "unpack", "ship", "receive", "dispense",
    ]  # fmt: skip
    assert [t["via"] for t in trail[:5]] == [None, None, f"00/{SSCC}", f"00/{SSCC}", f"00/{SSCC}"]
    assert trail[5]["via"] is None
    anchor = supply.query(REGULATOR, "supply", "anchor", {"event_hash": event_hash("sell")})
    assert anchor["accepted"] and anchor["org"] == "yuexiu-pharmacy"
    capture(supply, DISTRIBUTOR, step("destroy-a2", "destroy", [unit("A2")]))
    assert get_unit(supply, "A2")["status"] == "destroyed"


def test_only_the_maker_commissions(supply: EmbeddedNode) -> None:
    with pytest.raises(AccessDenied, match="maker of GTIN"):
        capture(
            supply,
            DISTRIBUTOR,
            step("fake", "commission", [unit("X")], location=WAREHOUSE, lot="L"),
        )
    with pytest.raises(AccessDenied, match="not a location of lingnan-bio"):
        capture(
            supply, MAKER_OPS, step("c", "commission", [unit("X")], location=WAREHOUSE, lot="L")
        )
    with pytest.raises(Rejected, match="not registered"):
        capture(
            supply,
            MAKER_OPS,
            step("c", "commission", [unit("X", OTHER_GTIN)], location=PLANT, lot="L"),
        )
    commission(supply, "X")
    with pytest.raises(Rejected, match="already commissioned"):
        capture(
            supply, MAKER_OPS, step("again", "commission", [unit("X")], location=PLANT, lot="L")
        )


def test_custody_refusals(supply: EmbeddedNode) -> None:
    commission(supply, "B1")
    with pytest.raises(AccessDenied, match="custodian is lingnan-bio"):
        ship_to(supply, DISTRIBUTOR, [unit("B1")], PHARMACY_GLN, "not-mine")
    with pytest.raises(Rejected, match="not registered"):
        ship_to(supply, MAKER_OPS, [unit("B1")], "6951234000999", "nowhere")
    with pytest.raises(Rejected, match="not in transit"):
        capture(supply, DISTRIBUTOR, step("r", "receive", [unit("B1")]))
    ship_to(supply, MAKER_OPS, [unit("B1")], WAREHOUSE, "ship")
    with pytest.raises(Rejected, match="in_transit: cannot ship"):
        ship_to(supply, MAKER_OPS, [unit("B1")], WAREHOUSE, "ship-again")
    with pytest.raises(AccessDenied, match="custodian"):
        capture(supply, DISTRIBUTOR, step("d", "destroy", [unit("B1")]))
    with pytest.raises(Rejected, match="already anchored"):
        ship_to(supply, MAKER_OPS, [unit("B1")], WAREHOUSE, "ship")


def test_capture_is_all_or_nothing(supply: EmbeddedNode) -> None:
    commission(supply, "C1")
    with pytest.raises(AccessDenied):
        capture(
            supply,
            MAKER_OPS,
            step("ok", "ship", [unit("C1")], destination=WAREHOUSE),
            step("bad", "commission", [unit("C2")], location=WAREHOUSE, lot="L"),
        )
    assert get_unit(supply, "C1")["status"] == "active"
    assert supply.query(REGULATOR, "supply", "anchor", {"event_hash": event_hash("ok")}) is None


def _alerts(node: EmbeddedNode, who: str = REGULATOR) -> list[str]:
    return [a["kind"] for a in node.query(who, "supply", "alerts", {})]


def _sold(node: EmbeddedNode, serial: str, label: str) -> dict[str, Any]:
    return capture(node, PHARMACY, step(label, "dispense", [unit(serial)], location=PHARMACY_GLN))


def _deliver(node: EmbeddedNode, serial: str) -> None:
    ship_to(node, MAKER_OPS, [unit(serial)], PHARMACY_GLN, f"ship-{serial}")
    capture(node, PHARMACY, step(f"recv-{serial}", "receive", [unit(serial)]))


def test_dispensed_twice_unknown_and_two_places_raise_alerts(supply: EmbeddedNode) -> None:
    commission(supply, "D1", "D2")
    _deliver(supply, "D1")
    assert _sold(supply, "D1", "sell-1")["refused"] == []
    twice = _sold(supply, "D1", "sell-2")
    assert twice["refused"][0]["reason"].endswith("already dispensed")
    unknown = _sold(supply, "NOPE", "sell-3")
    assert "never commissioned" in unknown["refused"][0]["reason"]
    elsewhere = _sold(supply, "D2", "sell-4")
    assert "held by lingnan-bio" in elsewhere["refused"][0]["reason"]
    assert get_unit(supply, "D2")["status"] == "active"
    seen = capture(supply, HOSPITAL, step("seen", "observe", [unit("D2")], location=HOSPITAL_GLN))
    assert seen["alerts"] == 1
    kinds = _alerts(supply)
    assert sorted(kinds) == sorted(
        ["dispensed_twice", "unknown_serial", "unit_in_two_places", "unit_in_two_places"]
    )
    assert "dispensed_twice" in _alerts(supply, MAKER)
    assert _alerts(supply, DISTRIBUTOR) == []
    anchor = supply.query(REGULATOR, "supply", "anchor", {"event_hash": event_hash("sell-2")})
    assert anchor["accepted"] is False


def test_expired_and_recalled_units_are_not_dispensed(supply: EmbeddedNode) -> None:
    commission(supply, "E1", expiry="2020-01-01")
    _deliver(supply, "E1")
    assert "expired" in _sold(supply, "E1", "sell-e1")["refused"][0]["reason"]
    assert "expired_sold" in _alerts(supply)
    commission(supply, "R1", "R2")
    _deliver(supply, "R1")
    with pytest.raises(AccessDenied, match="maker's admin/quality or a regulator"):
        supply.invoke(PHARMACY, "supply", "recall", {"gtin": GTIN, "lot": "L1", "reason": "x"})
    with pytest.raises(Rejected, match="needs a reason"):
        supply.invoke(REGULATOR, "supply", "recall", {"gtin": GTIN, "lot": "L1", "reason": " "})
    supply.invoke(REGULATOR, "supply", "recall", {"gtin": GTIN, "lot": "L1", "reason": "potency"})
    assert "recalled" in _sold(supply, "R1", "sell-r1")["refused"][0]["reason"]
    assert get_unit(supply, "R1")["status"] == "active"


def test_administration_emits_a_pseudonymous_event(supply: EmbeddedNode) -> None:
    commission(supply, "V1")
    ship_to(supply, MAKER_OPS, [unit("V1")], HOSPITAL_GLN, "ship-v1")
    capture(supply, HOSPITAL, step("recv-v1", "receive", [unit("V1")]))
    args = {"event_hash": event_hash("jab"), "unit": unit("V1"), "site": HOSPITAL_GLN}
    with pytest.raises(Rejected, match="no PHI"):
        supply.invoke(HOSPITAL, "supply", "administer", {**args, "person": "Zhang San 440101"})
    receipt, outcome = supply.invoke(HOSPITAL, "supply", "administer", {**args, "person": PERSON})
    assert outcome["accepted"]
    assert get_unit(supply, "V1")["status"] == "administered"
    tx, _ = supply.peer.transaction(receipt.tx_id)
    names = [e.name for e in tx.response.events]
    assert "vaccine_administered" in names
    payload = next(e.payload for e in tx.response.events if e.name == "vaccine_administered")
    assert payload["person"] == PERSON and payload["lot"] == "L1"
    again = {**args, "event_hash": event_hash("jab2"), "person": PERSON}
    _, twice = supply.invoke(HOSPITAL, "supply", "administer", again)
    assert not twice["accepted"] and "administered" in twice["reason"]


def test_bad_steps_are_refused(supply: EmbeddedNode) -> None:
    with pytest.raises(Rejected, match=r"not a CBV 2\.0 event hash"):
        capture(supply, MAKER_OPS, {"event_hash": "sha:1", "op": "observe", "units": []})
    with pytest.raises(Rejected, match="not a GTIN\\+serial, SSCC or asset id"):
        capture(supply, MAKER_OPS, step("x", "observe", ["01/123/21/x"]))
    with pytest.raises(InvalidArguments):
        capture(supply, MAKER_OPS, step("y", "teleport", []))
    with pytest.raises(Rejected, match="1 to 1000"):
        capture(supply, MAKER_OPS)


def test_the_trail_names_the_container_an_event_came_through(supply: EmbeddedNode) -> None:
    commission(supply, "N1")
    pallet = f"00/{with_check('00695123400000009')}"
    case = f"00/{SSCC}"
    capture(supply, MAKER_OPS, step("pack-n1", "pack", [unit("N1")], parent=case))
    capture(supply, MAKER_OPS, step("palletise", "pack", [case], parent=pallet))
    ship_to(supply, MAKER_OPS, [pallet], WAREHOUSE, "ship-pallet")
    trail = supply.query(REGULATOR, "supply", "trail", {"unit": unit("N1")})
    assert [(t["op"], t["via"]) for t in trail] == [
        ("commission", None),
        ("pack", None),
        ("pack", case),
        ("ship", pallet),
    ]
    case_trail = supply.query(REGULATOR, "supply", "trail", {"unit": case})
    assert [(t["op"], t["via"]) for t in case_trail] == [
        ("pack", None),
        ("pack", None),
        ("ship", pallet),
    ]
    assert trail[-1]["destination"] == WAREHOUSE and trail[-1]["org"] == "lingnan-bio"
