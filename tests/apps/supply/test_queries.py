"""The read model: stored events checked against their anchors, rebuilt from the chain,
queried by EPC, bizStep and time as an EPCIS 2.0 EPCISQueryDocument."""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.apps.supply.event_hash import event_hashes
from healthledger.apps.supply.event_store import EventQuery, EventStore
from healthledger.apps.supply.schema import EpcisSchema, default_schema_path
from healthledger.apps.supply.verification import PublicLedger
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import GTIN, MAKER_OPS, PHARMACY, PHARMACY_GLN, PLANT, SSCC
from tests.apps.supply.test_routes import (
    COMMISSION,
    SGTIN_PREFIX,
    SHIP,
    document,
    event,
    post,
    sgln,
)
from tests.support.members import member_reads
from tests.support.seam import supply_seam

SSCC_URN = f"urn:epc:id:sscc:{SSCC[1:8]}.{SSCC[0]}{SSCC[8:17]}"
PACK = {
    "type": "AggregationEvent",
    "eventTime": "2026-01-05T10:00:00.000+08:00",
    "eventTimeZoneOffset": "+08:00",
    "parentID": SSCC_URN,
    "childEPCs": [SGTIN_PREFIX + "S1", SGTIN_PREFIX + "S2"],
    "action": "ADD",
    "bizStep": "packing",
    "readPoint": {"id": sgln(PLANT)},
}
SHIP_CASE = event(
    "shipping",
    [],
    PLANT,
    epcList=[SSCC_URN],
    eventTime="2026-01-06T09:00:00.000+08:00",
    destinationList=[{"type": "location", "destination": sgln(PHARMACY_GLN)}],
)
RECEIVE_CASE = event(
    "receiving", [], PHARMACY_GLN, epcList=[SSCC_URN], eventTime="2026-01-07T09:00:00.000+08:00"
)


@pytest.fixture
def client(supply: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_api(supply, demo_custody=True)) as test_client:
        test_client.auth = member_reads(supply)
        yield test_client


def hash_of(event_: dict[str, Any]) -> str:
    return event_hashes(json.dumps(document(event_)))[0].hash


def captured(client: TestClient) -> None:
    for who, doc in (
        (MAKER_OPS, document(COMMISSION, PACK)),
        (MAKER_OPS, document(SHIP_CASE)),
        (PHARMACY, document(RECEIVE_CASE)),
    ):
        response = post(client, who, doc)
        assert response.status_code == 200, response.text


def check(client: TestClient, event_hash: str) -> Any:
    return client.get("/api/v1/supply/events/check", params={"event_hash": event_hash})


def test_a_stored_event_checks_against_its_anchor(client: TestClient) -> None:
    captured(client)
    answer = check(client, hash_of(PACK))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["verdict"] == "intact"
    assert body["recomputed_hash"] == body["anchor"]["event_hash"] == hash_of(PACK)
    assert body["proof"]["txId"] == body["anchor"]["tx_id"]
    unknown = check(client, hash_of(SHIP))
    assert unknown.status_code == 422
    assert unknown.headers["content-type"].startswith("application/problem+json")


def test_a_tampered_document_is_caught(client: TestClient, supply: EmbeddedNode) -> None:
    captured(client)
    forged = copy.deepcopy(PACK)
    forged["childEPCs"] = [SGTIN_PREFIX + "S1"]
    with sqlite3.connect(EventStore.of(supply_seam(supply)).path) as db:
        db.execute(
            "UPDATE events SET event = ? WHERE event_hash = ?",
            (json.dumps(forged), hash_of(PACK)),
        )
    body = check(client, hash_of(PACK)).json()
    assert body["verdict"] == "tampered"
    assert body["recomputed_hash"] != hash_of(PACK)


def test_rebuild_keeps_anchored_documents_only(client: TestClient, supply: EmbeddedNode) -> None:
    captured(client)
    store = EventStore.of(supply_seam(supply))
    try:
        stray = hash_of(SHIP)  # never captured: no anchor vouches for it
        store.add("not-a-tx", document()["@context"], [(stray, SHIP)])
        assert store.count() == 5
        counts = store.rebuild(PublicLedger(supply_seam(supply)))
        assert counts == {"kept": 4, "dropped": 1, "anchors_without_document": 0}
        assert store.get(stray) is None
        assert len(store.query(EventQuery(epc=SSCC_URN))) == 3
        assert check(client, hash_of(RECEIVE_CASE)).json()["verdict"] == "intact"
    finally:
        store.close()


def test_history_through_aggregation_lot_and_contents(client: TestClient) -> None:
    captured(client)
    history = client.get(f"/api/v1/supply/units/01/{GTIN}/21/S1/history").json()
    assert [t["op"] for t in history["trail"]] == ["commission", "pack", "ship", "receive"]
    assert [t["via"] for t in history["trail"]] == [None, None, f"00/{SSCC}", f"00/{SSCC}"]
    contents = client.get(f"/api/v1/supply/units/00/{SSCC}/contents").json()
    assert contents["units"] == 2
    assert {c["unit"] for c in contents["container"]["children"]} == {
        f"01/{GTIN}/21/S1",
        f"01/{GTIN}/21/S2",
    }
    lot = client.get(f"/api/v1/supply/lots/{GTIN}/LOT7").json()
    assert len(lot["units"]) == 2
    assert lot["places"] == [
        {
            "custodian": "yuexiu-pharmacy",
            "location": PHARMACY_GLN,
            "state": "in stock",
            "status": "genuine",
            "units": 2,
        }
    ]
    missing = client.get(f"/api/v1/supply/units/00/{SSCC[:-1]}9/contents")
    assert missing.status_code == 422


def epcis_query(client: TestClient, **params: str) -> dict[str, Any]:
    response = client.get("/api/v1/supply/events", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/ld+json")
    found: dict[str, Any] = response.json()
    return found


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"MATCH_epc": SGTIN_PREFIX + "S1"}, [COMMISSION, PACK]),
        ({"MATCH_epc": f"https://id.gs1.org/01/{GTIN}/21/S2"}, [COMMISSION, PACK]),
        ({"MATCH_epc": SSCC_URN}, [PACK, SHIP_CASE, RECEIVE_CASE]),
        ({"EQ_bizStep": "shipping"}, [SHIP_CASE]),
        ({"EQ_bizStep": "https://ref.gs1.org/cbv/BizStep-receiving"}, [RECEIVE_CASE]),
        ({"GE_eventTime": "2026-01-06T00:00:00Z"}, [SHIP_CASE, RECEIVE_CASE]),
        (
            {"GE_eventTime": "2026-01-05T01:30:00Z", "LT_eventTime": "2026-01-06T01:00:00Z"},
            [PACK],
        ),
        ({"MATCH_epc": SSCC_URN, "EQ_bizStep": "receiving"}, [RECEIVE_CASE]),
        ({"MATCH_epc": SGTIN_PREFIX + "S9"}, []),
        ({"perPage": "1"}, [COMMISSION]),
    ],
    ids=[
        "sgtin-urn",
        "digital-link",
        "sscc",
        "bizstep",
        "bizstep-uri",
        "since",
        "window",
        "epc-and-step",
        "none",
        "per-page",
    ],
)
def test_epcis_query_returns_a_valid_query_document(
    client: TestClient, params: dict[str, str], expected: list[dict[str, Any]]
) -> None:
    captured(client)
    answer = epcis_query(client, **params)
    schema_path = default_schema_path()
    assert schema_path is not None
    assert EpcisSchema(path=schema_path).violations(answer) == []
    assert answer["type"] == "EPCISQueryDocument"
    results = answer["epcisBody"]["queryResults"]
    assert results["queryName"] == "SimpleEventQuery"
    events = results["resultsBody"]["eventList"]
    assert [e["eventID"] for e in events] == [hash_of(e) for e in expected]
    # A client recomputes each event's hash from the document it received.
    assert [h.hash for h in event_hashes(json.dumps(answer))] == [hash_of(e) for e in expected]


def test_a_bad_time_is_problem_details(client: TestClient) -> None:
    response = client.get("/api/v1/supply/events", params={"GE_eventTime": "yesterday"})
    assert response.status_code == 422
    assert "GE_eventTime" in response.text
