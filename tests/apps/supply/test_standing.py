"""One status vocabulary: the lot, the unit's history and public verification say the
same word for a unit, and a recalled one is "recalled" with the same recall (time and
reason) everywhere. The console's operations build documents the capture service takes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.apps.supply import operations
from healthledger.apps.supply.standing import STATUSES
from healthledger.contracts.errors import InvalidArguments
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import (
    GTIN,
    MAKER,
    MAKER_OPS,
    PHARMACY,
    PHARMACY_GLN,
    PLANT,
    capture,
    commission,
    step,
    unit,
)
from tests.support.members import member_reads


def recalled_ledger(node: EmbeddedNode) -> None:
    """L1: P1 dispensed, P2 held by the maker, P3 destroyed; the whole lot then recalled.
    Lot L2 (by serial): Q1 recalled, Q2 quarantined after a warm storeroom."""
    commission(node, "P1", "P2", "P3")
    capture(
        node,
        MAKER_OPS,
        step("q", "commission", [unit("Q1"), unit("Q2")], location=PLANT, lot="L2"),
        step("ship", "ship", [unit("P1")], location=PLANT, destination=PHARMACY_GLN),
        step("destroy", "destroy", [unit("P3")], location=PLANT),
        step("warm", "observe", [unit("Q2")], location=PLANT, temperatures_dc=[41, 118]),
    )
    capture(
        node,
        PHARMACY,
        step("receive", "receive", [unit("P1")], location=PHARMACY_GLN),
        step("sell", "dispense", [unit("P1")], location=PHARMACY_GLN),
    )
    args = {"gtin": GTIN, "lot": "L1", "reason": "vial glass defect"}
    node.invoke(MAKER, "supply", "recall", args)
    args = {"gtin": GTIN, "lot": "L2", "reason": "label misprint", "units": [unit("Q1")]}
    node.invoke(MAKER, "supply", "recall", args)


@pytest.fixture
def client(supply: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_api(supply, demo_custody=True)) as test_client:
        test_client.auth = member_reads(supply)
        yield test_client


def answers(client: TestClient, serial: str, lot: str) -> list[dict[str, Any]]:
    """What the lot, the unit's history and public verification say of one unit."""
    uri = f"https://id.gs1.org/01/{GTIN}/10/{lot}/21/{serial}?17=991231"
    lot_units = client.get(f"/api/v1/supply/lots/{GTIN}/{lot}").json()["units"]
    history = client.get(f"/api/v1/supply/units/{unit(serial)}/history").json()
    verified = client.get(f"/api/v1/supply/verify?uri={quote(uri, safe='')}").json()
    in_lot = next(u for u in lot_units if u["unit"] == unit(serial))
    return [in_lot, history, verified]


SAID = [
    ("P1", "L1", "recalled", "vial glass defect"),
    ("P2", "L1", "recalled", "vial glass defect"),
    ("P3", "L1", "recalled", "vial glass defect"),
    ("Q1", "L2", "recalled", "label misprint"),
    ("Q2", "L2", "quarantined", None),
]
"""What every surface must say of each unit of :func:`recalled_ledger`."""


def test_every_surface_says_the_same(supply: EmbeddedNode, client: TestClient) -> None:
    recalled_ledger(supply)
    for serial, lot, status, reason in SAID:
        said = answers(client, serial, lot)
        assert {a["status"] for a in said} == {status}, serial
        recalls = [a["recall"] for a in said]
        assert all(r == recalls[0] for r in recalls), serial
        if reason is None:
            assert recalls[0] is None
        else:
            assert recalls[0]["reason"] == reason
            assert recalls[0]["by"] == MAKER and recalls[0]["by_name"].startswith("Lingnan")
            assert isinstance(recalls[0]["at"], int) and len(recalls[0]["tx_id"]) == 64
    units = client.get(f"/api/v1/supply/lots/{GTIN}/L1").json()["units"]
    assert {u["unit"][-2:]: u["state"] for u in units} == {
        "P1": "dispensed",
        "P2": "in stock",
        "P3": "destroyed",
    }
    recalled = answers(client, "P1", "L1")[2]
    assert recalled["reason"] == "Recalled: vial glass defect."
    assert "Do not use it" in recalled["advice"]
    warm = answers(client, "Q2", "L2")[2]
    assert "4.1 °C to 11.8 °C" in warm["reason"] and "2.0 °C to 8.0 °C" in warm["reason"]
    assert [e["temperature_range_dc"] for e in warm["excursions"]] == [[41, 118]]
    assert set(STATUSES) >= {a["status"] for a in answers(client, "Q1", "L2")}


def test_the_console_documents_capture(supply: EmbeddedNode, client: TestClient) -> None:
    node = supply
    at = node.clock()
    made = operations.commissioning(
        gtin=GTIN, lot="C9", expiry="2099-12-31", count=2, gln=PLANT, at_ms=at
    )
    sent = client.post("/api/v1/supply/capture", json={"identity": MAKER_OPS, "document": made})
    assert sent.status_code == 200, sent.text
    sscc = operations.case_sscc(["6951234"], 0, at)
    packed = operations.packing(
        units=[unit("C9-001"), unit("C9-002")], sscc=sscc, gln=PLANT, at_ms=at + 1
    )
    shipped = operations.shipping(
        unit=f"00/{sscc}", gln=PLANT, destination=PHARMACY_GLN, at_ms=at + 2
    )
    for doc, who in ((packed, MAKER_OPS), (shipped, MAKER_OPS)):
        sent = client.post("/api/v1/supply/capture", json={"identity": who, "document": doc})
        assert sent.status_code == 200, sent.text
    received = operations.receiving(unit=f"00/{sscc}", gln=PHARMACY_GLN, at_ms=at + 3, unpack=True)
    sent = client.post("/api/v1/supply/capture", json={"identity": PHARMACY, "document": received})
    assert sent.status_code == 200, sent.text
    sold = operations.dispensing(unit=unit("C9-001"), gln=PHARMACY_GLN, at_ms=at + 4)
    sent = client.post("/api/v1/supply/capture", json={"identity": PHARMACY, "document": sold})
    assert sent.status_code == 200, sent.text
    said = answers(client, "C9-001", "C9")
    assert {a["status"] for a in said} == {"dispensed"}
    assert len(sscc) == 18 and sscc.startswith("16951234")


@pytest.mark.parametrize(
    ("lot", "count", "expiry", "field"),
    [
        ("a lot", 1, "2099-12-31", "lot"),
        ("L", 0, "2099-12-31", "count"),
        ("L", 1, "31/12", "expiry"),
    ],
)
def test_a_bad_commissioning_form_names_its_field(
    lot: str, count: int, expiry: str, field: str
) -> None:
    with pytest.raises(InvalidArguments) as refused:
        operations.commissioning(gtin=GTIN, lot=lot, expiry=expiry, count=count, gln=PLANT, at_ms=0)
    assert refused.value.errors[0]["field"] == field
