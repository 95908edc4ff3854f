"""The supply API end to end: EPCIS capture, history, public verification, QR codes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import segno
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.apps.supply.digital_link import parse_pack_link
from healthledger.apps.supply.event_hash import event_hashes
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import (
    DISTRIBUTOR,
    GTIN,
    MAKER_OPS,
    PHARMACY,
    PHARMACY_GLN,
    PLANT,
    REGULATOR,
    WAREHOUSE,
)
from tests.support.members import member_reads

CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]
SGTIN_PREFIX = "urn:epc:id:sgtin:6951234.000001."  # GTIN 0 6951234 00001 + check digit


def sgln(gln: str) -> str:
    return f"urn:epc:id:sgln:{gln[:7]}.{gln[7:12]}.0"


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-01-05T10:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def event(biz_step: str, serials: list[str], where: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2026-01-05T09:00:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": [SGTIN_PREFIX + s for s in serials],
        "action": "ADD" if biz_step == "commissioning" else "OBSERVE",
        "bizStep": biz_step,
        "readPoint": {"id": sgln(where)},
        **extra,
    }


COMMISSION = event(
    "commissioning",
    ["S1", "S2"],
    PLANT,
    ilmd={"cbvmda:lotNumber": "LOT7", "cbvmda:itemExpirationDate": "2099-06-30"},
)
SHIP = event(
    "shipping",
    ["S1"],
    PLANT,
    destinationList=[{"type": "location", "destination": sgln(PHARMACY_GLN)}],
)
RECEIVE = event("receiving", ["S1"], PHARMACY_GLN)
DISPENSE = event("dispensing", ["S1"], PHARMACY_GLN)
URI = f"https://id.gs1.org/01/{GTIN}/10/LOT7/21/S1?17=990630"


@pytest.fixture
def client(supply: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_api(supply, demo_custody=True)) as test_client:
        test_client.auth = member_reads(supply)
        yield test_client


def post(client: TestClient, identity: str, doc: dict[str, Any]) -> Any:
    return client.post("/api/v1/supply/capture", json={"identity": identity, "document": doc})


def verify(client: TestClient, uri: str) -> Any:
    return client.get(f"/api/v1/supply/verify?uri={quote(uri, safe='')}")


def test_capture_anchor_and_verify(client: TestClient, supply: EmbeddedNode) -> None:
    response = post(client, MAKER_OPS, document(COMMISSION))
    assert response.status_code == 200, response.text
    assert response.json()["receipt"]["valid"]
    assert verify(client, URI).json()["status"] == "genuine"
    for who, step in ((MAKER_OPS, SHIP), (PHARMACY, RECEIVE), (PHARMACY, DISPENSE)):
        response = post(client, who, document(step))
        assert response.status_code == 200, response.text
    answer = verify(client, URI).json()
    assert answer["status"] == "dispensed"
    assert [t["op"] for t in answer["trail"]] == ["commission", "ship", "receive", "dispense"]
    assert answer["product"]["maker"] == "lingnan-bio"
    proof = answer["proof"]
    assert (
        proof["txId"]
        == supply.query(REGULATOR, "supply", "unit", {"unit": f"01/{GTIN}/21/S1"})["last_tx"]
    )
    # A stored event checks against its on-chain anchor.
    anchored = event_hashes(json.dumps(document(DISPENSE)))[0].hash
    assert supply.query(REGULATOR, "supply", "anchor", {"event_hash": anchored})["op"] == "dispense"
    history = client.get(f"/api/v1/supply/units/01/{GTIN}/21/S1/history").json()
    assert len(history["trail"]) == 4


def test_invalid_document_lists_violations_and_stores_nothing(
    client: TestClient, supply: EmbeddedNode
) -> None:
    broken = copy.deepcopy(document(COMMISSION))
    broken["epcisBody"]["eventList"][0]["action"] = "JUMP"
    del broken["epcisBody"]["eventList"][0]["eventTime"]
    response = post(client, MAKER_OPS, broken)
    assert response.status_code == 422
    body = response.json()
    fields = {e["field"].removeprefix("args.") for e in body["errors"]}
    assert "/epcisBody/eventList/0/action" in fields
    assert "/epcisBody/eventList/0" in fields
    assert verify(client, URI).json()["status"] == "unknown"


def test_refused_custody_is_problem_details(client: TestClient) -> None:
    assert post(client, MAKER_OPS, document(COMMISSION)).status_code == 200
    response = post(client, DISTRIBUTOR, document(SHIP))
    assert response.status_code == 403
    assert "custodian is lingnan-bio" in response.json()["detail"]
    foreign = post(client, "nobody/none", document(SHIP))
    assert foreign.status_code == 403


def test_verify_answers_clearly(client: TestClient) -> None:
    assert verify(client, URI).json()["status"] == "unknown"
    for bad in (
        "hello",
        "https://id.gs1.org/01/123/10/A/21/B?17=990630",
        URI.replace("990630", "991331"),
    ):
        response = verify(client, bad)
        assert response.status_code == 422
        assert response.json()["detail"]
    post(client, MAKER_OPS, document(COMMISSION))
    wrong_lot = URI.replace("LOT7", "LOT8")
    assert verify(client, wrong_lot).json()["status"] == "unknown"
    response = client.post(
        "/api/v1/demo/invoke",
        json={
            "identity": REGULATOR,
            "contract": "supply",
            "function": "recall",
            "args": {"gtin": GTIN, "lot": "LOT7", "reason": "potency"},
        },
    )
    assert response.status_code == 200, response.text
    assert verify(client, URI).json()["status"] == "recalled"


def test_expired_pack(client: TestClient) -> None:
    expired = copy.deepcopy(COMMISSION)
    expired["ilmd"]["cbvmda:itemExpirationDate"] = "2020-01-31"
    assert post(client, MAKER_OPS, document(expired)).status_code == 200
    assert verify(client, URI.replace("990630", "200131")).json()["status"] == "expired"


def test_qr_png_decodes_to_the_uri(client: TestClient) -> None:
    query = f"gtin={GTIN}&lot=LOT7&serial=S1&expiry=990630"
    png = client.get(f"/api/v1/supply/qr.png?{query}")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    svg = client.get(f"/api/v1/supply/qr.svg?{query}")
    assert svg.headers["content-type"].startswith("image/svg+xml") and "<svg" in svg.text
    assert parse_pack_link(URI).uri() == URI
    assert segno.make_qr(URI, error="m").designator
    assert (
        client.get("/api/v1/supply/qr.png?gtin=1&lot=A&serial=B&expiry=990630").status_code == 422
    )


def test_warehouse_is_registered(supply: EmbeddedNode) -> None:
    assert supply.peer.store.get_state("supply", f"location/{WAREHOUSE}") is not None


def test_sensor_excursion_quarantines_through_the_api(client: TestClient) -> None:
    assert post(client, MAKER_OPS, document(COMMISSION)).status_code == 200
    assert post(client, MAKER_OPS, document(SHIP)).status_code == 200
    reading = event(
        "transporting",
        ["S1"],
        WAREHOUSE,
        sensorElementList=[
            {
                "sensorMetadata": {"time": "2026-01-05T08:30:00.000+08:00"},
                "sensorReport": [
                    {"type": "Temperature", "value": 5.5, "uom": "CEL"},
                    {"type": "Temperature", "value": 12.25, "uom": "CEL"},
                ],
            }
        ],
    )
    response = post(client, DISTRIBUTOR, document(reading))
    assert response.status_code == 200, response.text
    assert response.json()["result"]["alerts"] == 1
    answer = verify(client, URI).json()
    assert answer["status"] == "quarantined"
    assert answer["trail"][-1]["temperature_range_dc"] == [55, 122]


def test_a_pack_dispensed_twice_is_a_refusal_on_the_ledger_never_a_200(
    client: TestClient, supply: EmbeddedNode
) -> None:
    for who, step in ((MAKER_OPS, COMMISSION), (MAKER_OPS, SHIP), (PHARMACY, RECEIVE)):
        assert post(client, who, document(step)).status_code == 200
    assert post(client, PHARMACY, document(DISPENSE)).status_code == 200
    again = dict(DISPENSE, eventTime="2026-01-05T11:00:00.000+08:00")
    response = post(client, PHARMACY, document(again))
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/api/v1/problems/refused-recorded"
    assert problem["instance"] == "/api/v1/supply/capture"
    [refused] = problem["refused"]
    assert refused["accepted"] is False and "already dispensed" in refused["reason"]
    assert "already dispensed" in problem["detail"]
    # The refusal is evidence on the ledger: committed, anchored as refused, alerted.
    receipt = problem["receipt"]
    assert receipt["valid"] and receipt["tx_id"] == problem["tx_id"]
    assert response.headers["location"] == f"/api/v1/transactions/{problem['tx_id']}/receipt"
    assert client.get(response.headers["location"]).json()["height"] == receipt["height"]
    anchor = supply.query(REGULATOR, "supply", "anchor", {"event_hash": refused["event_hash"]})
    assert anchor["accepted"] is False and anchor["tx_id"] == problem["tx_id"]
    alerts = supply.query(REGULATOR, "supply", "alerts", {})
    assert [a["kind"] for a in alerts if a["event_hash"] == refused["event_hash"]] == [
        "dispensed_twice"
    ]
    assert problem["result"]["anchored"] == [refused["event_hash"]]


def test_a_refused_part_through_the_generic_invoke_is_a_409_too(
    client: TestClient, supply: EmbeddedNode
) -> None:
    never_made = f"01/{GTIN}/21/NEVER-MADE"
    response = client.post(
        "/api/v1/demo/invoke",
        json={
            "identity": PHARMACY,
            "contract": "supply",
            "function": "administer",
            "args": {
                "event_hash": "ni:///sha-256;" + "ab" * 32 + "?ver=CBV2.0",
                "unit": never_made,
                "person": "P0123456789abcdef",
                "site": PHARMACY_GLN,
            },
        },
    )
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"] == "/api/v1/problems/refused-recorded"
    assert "never commissioned" in problem["refused"][0]["reason"]
    assert supply.peer.store.tx_location(problem["tx_id"]) is not None
