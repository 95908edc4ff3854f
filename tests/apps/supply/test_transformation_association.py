"""Transformation (inputs consumed, outputs commissioned by the transformer) and association
(sensors and assets linked to a parent) by contract, each illegal use refused with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.apps.supply.digital_link import parse_pack_link
from healthledger.apps.supply.verification import PublicLedger
from healthledger.contracts.errors import AccessDenied, Rejected
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import (
    DISTRIBUTOR,
    GTIN,
    MAKER,
    MAKER_OPS,
    OTHER_GTIN,
    PLANT,
    REGULATOR,
    SSCC,
    WAREHOUSE,
    capture,
    commission,
    step,
    unit,
)
from tests.apps.supply.test_routes import SGTIN_PREFIX, document, post, sgln
from tests.support.members import member_reads
from tests.support.seam import supply_seam

CASE = f"00/{SSCC}"
LOGGER = "8004/6951234LOGGER1"
LOGGER2 = "8004/6951234LOGGER2"
TRUCK = "8004/6951234TRUCK9"


@pytest.fixture
def doses(supply: EmbeddedNode) -> EmbeddedNode:
    """The maker's bulk packs A1..A3 and a unit-dose product (OTHER_GTIN) of its own."""
    supply.invoke(
        MAKER,
        "supply",
        "register_product",
        {
            "gtin": OTHER_GTIN,
            "name": "Influenza vaccine, single dose",
            "dosage_form": "injection",
            "temp_min_dc": 20,
            "temp_max_dc": 80,
            "shelf_life_days": 180,
        },
    )
    commission(supply, "A1", "A2", "A3")
    return supply


def transform(label: str, inputs: list[str], outputs: list[str], **extra: Any) -> dict[str, Any]:
    base = {"location": PLANT, "lot": "LD1", "outputs": [unit(s, OTHER_GTIN) for s in outputs]}
    return step(label, "transform", [unit(s) for s in inputs], **{**base, **extra})


def record(node: EmbeddedNode, key: str) -> Any:
    found = node.peer.store.get_state("supply", key)
    return None if found is None else found.value


def test_transformation_consumes_inputs_and_commissions_outputs(doses: EmbeddedNode) -> None:
    capture(doses, MAKER_OPS, transform("t1", ["A1", "A2"], ["D1", "D2", "D3"]))
    for serial in ("A1", "A2"):
        consumed = record(doses, f"unit/{unit(serial)}")
        assert consumed["status"] == "consumed"
        assert consumed["consumed_into"] == [unit(s, OTHER_GTIN) for s in ("D1", "D2", "D3")]
    dose = record(doses, f"unit/{unit('D2', OTHER_GTIN)}")
    assert (dose["status"], dose["custodian"], dose["lot"]) == ("active", "lingnan-bio", "LD1")
    assert dose["derived_from"] == [unit("A1"), unit("A2")]
    ledger = PublicLedger(supply_seam(doses))
    assert [t["op"] for t in ledger.trail(unit("D2", OTHER_GTIN))] == ["transform"]
    assert [t["op"] for t in ledger.trail(unit("A1"))] == ["commission", "transform"]
    assert record(doses, f"unit/{unit('A3')}")["status"] == "active"
    link = parse_pack_link(f"https://id.gs1.org/01/{GTIN}/10/L1/21/A1?17=991231")
    stands = ledger.standing(record(doses, f"unit/{unit('A1')}"), today="2026-01-01", link=link)
    assert (stands["status"], stands["state"]) == ("dispensed", "consumed into another product")
    # A consumed unit offered for sale is a counterfeit signal, not a sale.
    outcome = capture(doses, MAKER_OPS, step("sell-a1", "dispense", [unit("A1")]))
    assert outcome["refused"][0]["reason"] == f"{unit('A1')} was consumed"


@pytest.mark.parametrize(
    ("label", "who", "change", "error", "reason"),
    [
        ("not-held", DISTRIBUTOR, {"location": WAREHOUSE}, AccessDenied, "its custodian is"),
        ("foreign-site", MAKER_OPS, {"location": WAREHOUSE}, AccessDenied, "not a location of"),
        ("no-lot", MAKER_OPS, {"lot": None}, Rejected, "need a lot"),
        ("no-outputs", MAKER_OPS, {"outputs": []}, Rejected, "input and output units"),
        (
            "not-my-gtin",
            MAKER_OPS,
            {"outputs": [unit("D9", "06951234000099")]},
            Rejected,
            "not registered",
        ),
        ("again", MAKER_OPS, {"outputs": [unit("A3")]}, Rejected, "already commissioned"),
        ("circular", MAKER_OPS, {"outputs": [unit("A1")]}, Rejected, "both an input and an output"),
    ],
)
def test_illegal_transformations_are_refused(
    doses: EmbeddedNode,
    label: str,
    who: str,
    change: dict[str, Any],
    error: type[Exception],
    reason: str,
) -> None:
    bad = {k: v for k, v in {**transform(label, ["A1"], ["D1"]), **change}.items() if v is not None}
    with pytest.raises(error, match=reason):
        capture(doses, who, bad)
    assert record(doses, f"unit/{unit('A1')}")["status"] == "active"
    assert record(doses, f"unit/{unit('D1', OTHER_GTIN)}") is None


def test_only_the_output_maker_transforms_into_its_gtin(doses: EmbeddedNode) -> None:
    capture(doses, MAKER_OPS, step("ship", "ship", [unit("A1")], destination=WAREHOUSE))
    capture(doses, DISTRIBUTOR, step("recv", "receive", [unit("A1")]))
    with pytest.raises(AccessDenied, match="the maker of GTIN"):
        capture(doses, DISTRIBUTOR, transform("repack", ["A1"], ["D1"], location=WAREHOUSE))


def test_recalled_quarantined_or_packed_inputs_are_refused(doses: EmbeddedNode) -> None:
    capture(doses, MAKER_OPS, step("pack", "pack", [unit("A2")], parent=CASE))
    with pytest.raises(Rejected, match="unpack it first"):
        capture(doses, MAKER_OPS, transform("t-packed", ["A2"], ["D1"]))
    with pytest.raises(Rejected, match="contains other units"):
        capture(doses, MAKER_OPS, step("t-case", "transform", [CASE], **_outputs("D1")))
    doses.invoke(
        REGULATOR,
        "supply",
        "recall",
        {"gtin": GTIN, "lot": "L1", "reason": "sterility", "units": [unit("A1")]},
    )
    with pytest.raises(Rejected, match="is recalled"):
        capture(doses, MAKER_OPS, transform("t-recalled", ["A1"], ["D1"]))
    capture(doses, MAKER_OPS, step("hot", "observe", [unit("A3")], temperatures_dc=[300]))
    with pytest.raises(Rejected, match="is quarantined"):
        capture(doses, MAKER_OPS, transform("t-hot", ["A3"], ["D1"]))


def _outputs(*serials: str) -> dict[str, Any]:
    return {"location": PLANT, "lot": "LD1", "outputs": [unit(s, OTHER_GTIN) for s in serials]}


def test_association_links_sensors_to_a_held_unit(doses: EmbeddedNode) -> None:
    capture(doses, MAKER_OPS, step("pack", "pack", [unit("A1")], parent=CASE))
    capture(doses, MAKER_OPS, step("tag", "associate", [LOGGER, LOGGER2], parent=CASE))
    assert record(doses, f"association/{CASE}")["children"] == [LOGGER, LOGGER2]
    assert record(doses, f"associated/{LOGGER}")["parent"] == CASE
    trail = PublicLedger(supply_seam(doses)).trail(CASE)
    assert [t["op"] for t in trail] == ["pack", "associate"]
    with pytest.raises(Rejected, match="dissociate it first"):
        capture(doses, MAKER_OPS, step("retag", "associate", [LOGGER], parent=unit("A2")))
    capture(doses, MAKER_OPS, step("untag", "dissociate", [LOGGER], parent=CASE))
    assert record(doses, f"associated/{LOGGER}") is None
    assert record(doses, f"association/{CASE}")["children"] == [LOGGER2]
    capture(doses, MAKER_OPS, step("retag2", "associate", [LOGGER], parent=unit("A2")))
    capture(doses, MAKER_OPS, step("untag-all", "dissociate", [], parent=CASE))
    assert record(doses, f"association/{CASE}")["children"] == []
    assert record(doses, f"associated/{LOGGER2}") is None


def test_illegal_associations_are_refused(doses: EmbeddedNode) -> None:
    with pytest.raises(Rejected, match="pack units instead"):
        capture(doses, MAKER_OPS, step("unit-child", "associate", [unit("A2")], parent=unit("A1")))
    with pytest.raises(AccessDenied, match="its custodian is"):
        capture(doses, DISTRIBUTOR, step("not-held", "associate", [LOGGER], parent=unit("A1")))
    with pytest.raises(Rejected, match="not a commissioned unit"):
        capture(doses, MAKER_OPS, step("unknown", "associate", [LOGGER], parent=unit("NOPE")))
    with pytest.raises(Rejected, match="is not associated with"):
        capture(doses, MAKER_OPS, step("untag", "dissociate", [LOGGER], parent=unit("A1")))
    with pytest.raises(Rejected, match="needs a parent"):
        capture(doses, MAKER_OPS, step("orphan", "associate", [LOGGER]))
    capture(doses, DISTRIBUTOR, step("truck", "associate", [LOGGER2], parent=TRUCK))
    with pytest.raises(AccessDenied, match="an asset of pearl-logistics"):
        capture(doses, MAKER_OPS, step("steal-truck", "associate", [LOGGER], parent=TRUCK))
    assert record(doses, f"associated/{LOGGER}") is None


@pytest.fixture
def client(doses: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_api(doses, demo_custody=True)) as test_client:
        test_client.auth = member_reads(doses)
        yield test_client


DOSE_PREFIX = "urn:epc:id:sgtin:6951234.000002."


def test_epcis_transformation_and_association_documents(
    client: TestClient, doses: EmbeddedNode
) -> None:
    transformation = {
        "type": "TransformationEvent",
        "eventTime": "2026-01-05T11:00:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "inputEPCList": [SGTIN_PREFIX + "A3"],
        "outputEPCList": [DOSE_PREFIX + "E1", DOSE_PREFIX + "E2"],
        "bizStep": "repackaging",
        "readPoint": {"id": sgln(PLANT)},
        "ilmd": {"cbvmda:lotNumber": "LD7", "cbvmda:itemExpirationDate": "2098-01-31"},
    }
    association = {
        "type": "AssociationEvent",
        "eventTime": "2026-01-05T11:05:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "parentID": DOSE_PREFIX + "E1",
        "childEPCs": ["urn:epc:id:giai:6951234.LOGGER1"],
        "action": "ADD",
        "bizStep": "assembling",
        "readPoint": {"id": sgln(PLANT)},
    }
    response = post(client, MAKER_OPS, document(transformation, association))
    assert response.status_code == 200, response.text
    assert response.json()["result"]["refused"] == []
    assert record(doses, f"unit/{unit('A3')}")["status"] == "consumed"
    made = record(doses, f"unit/{unit('E2', OTHER_GTIN)}")
    assert (made["lot"], made["expiry"]) == ("LD7", "2098-01-31")
    assert record(doses, f"associated/{LOGGER}")["parent"] == unit("E1", OTHER_GTIN)
    bad_parent = {**association, "parentID": "urn:epc:id:sgln:6951234.00001.0"}
    refused = post(client, MAKER_OPS, document(bad_parent))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"].endswith("/epcisBody/eventList/0/parentID")
