"""EPCIS 2.0 XML documents: mapped to JSON-LD with their event hashes kept, captured through
the API all or nothing, every violation listed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.apps.supply.epcis_xml import xml_document
from healthledger.apps.supply.event_hash import event_hashes, json_document_hashes
from healthledger.apps.supply.schema import EpcisSchema
from healthledger.contracts.errors import InvalidArguments
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import GTIN, MAKER_OPS, OTHER_GTIN, PHARMACY, PLANT, unit
from tests.apps.supply.test_routes import SGTIN_PREFIX, sgln
from tests.support.members import member_reads

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "conformance" / "epcis-event-hash"
XML_DOCUMENTS = sorted(
    p for p in VECTORS.glob("*.xml") if "EPCISQueryDocument" not in p.read_text()[:2000]
)
HASHED_DIFFERENTLY = {
    # The reference hashes these differently in XML and JSON-LD, so no JSON-LD form
    # keeps their XML hash: a custom-prefixed vocabulary value (kept literal in XML,
    # expanded in JSON-LD), a boolean ("true" / "True"), a document-level ignoreFields.
    ("SensorDataExamples.xml", 5),
    ("SensorDataExamples.xml", 6),
    ("SensorDataExamples.xml", 7),
    ("SensorDataExamples.xml", 8),
    ("SensorDataExamples.xml", 9),
    ("SensorDataExamples.xml", 11),
    ("epcisXmlDocHavingEventWithIgnoreFields.xml", 0),
    ("epcisXmlDocHavingEventWithIgnoreFields.xml", 1),
}
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a0 "xxxxxxxxxx">'
    + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    + "]><r>&a9;</r>"
)
NS = 'xmlns:epcis="urn:epcglobal:epcis:xsd:2" xmlns:cbvmda="urn:epcglobal:cbv:mda"'


def xml(*events: str, root: str = "epcis:EPCISDocument") -> str:
    return (
        f'<?xml version="1.0"?><{root} {NS} schemaVersion="2.0" '
        f'creationDate="2026-01-05T10:00:00Z"><EPCISBody><EventList>{"".join(events)}'
        f"</EventList></EPCISBody></{root}>"
    )


def commission(*serials: str, prefix: str = SGTIN_PREFIX, extra: str = "") -> str:
    epcs = "".join(f"<epc>{prefix}{s}</epc>" for s in serials)
    return (
        "<ObjectEvent><eventTime>2026-01-05T09:00:00.000+08:00</eventTime>"
        f"<eventTimeZoneOffset>+08:00</eventTimeZoneOffset><epcList>{epcs}</epcList>"
        "<action>ADD</action><bizStep>urn:epcglobal:cbv:bizstep:commissioning</bizStep>"
        f"<readPoint><id>{sgln(PLANT)}</id></readPoint>{extra}"
        "<ilmd><cbvmda:lotNumber>LX1</cbvmda:lotNumber>"
        "<cbvmda:itemExpirationDate>2099-06-30</cbvmda:itemExpirationDate></ilmd>"
        "</ObjectEvent>"
    )


@pytest.fixture
def client(supply: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_api(supply, demo_custody=True)) as test_client:
        test_client.auth = member_reads(supply)
        yield test_client


def post_xml(client: TestClient, body: str, identity: str = MAKER_OPS, **headers: str) -> object:
    return client.post(
        "/api/v1/supply/capture/xml",
        params={"identity": identity},
        content=body.encode(),
        headers={"content-type": "application/xml", **headers},
    )


def test_conformance_documents_collected() -> None:
    assert len(XML_DOCUMENTS) >= 10


@pytest.mark.parametrize("path", XML_DOCUMENTS, ids=lambda p: p.name)
def test_conformance_xml_maps_to_valid_json_ld_with_the_same_hashes(path: Path) -> None:
    data = path.read_bytes()
    document = xml_document(data)
    assert (
        EpcisSchema(path=VECTORS.parent / "epcis2" / "EPCIS-JSON-Schema.json").violations(document)
        == []
    )
    published = (path.with_suffix(".hashes")).read_text().split()
    sent = [h.hash for h in event_hashes(data, fmt="xml")]
    mapped = [h.hash for h in json_document_hashes(document)]
    assert sent == published
    for index, (xml_hash, json_hash) in enumerate(zip(sent, mapped, strict=True)):
        assert (xml_hash == json_hash) == ((path.name, index) not in HASHED_DIFFERENTLY)


def test_xml_capture_anchors_and_stores_json_ld(client: TestClient, supply: EmbeddedNode) -> None:
    response = post_xml(client, xml(commission("X1", "X2")))
    assert response.status_code == 200, response.text
    anchored = response.json()["result"]["anchored"]
    assert anchored == [h.hash for h in event_hashes(xml(commission("X1", "X2")), fmt="xml")]
    record = supply.peer.store.get_state("supply", f"unit/{unit('X1')}")
    assert record is not None and record.value["lot"] == "LX1"
    assert record.value["expiry"] == "2099-06-30"
    check = client.get("/api/v1/supply/events/check", params={"event_hash": anchored[0]}).json()
    assert check["verdict"] == "intact"
    found = client.get("/api/v1/supply/events", params={"MATCH_epc": SGTIN_PREFIX + "X2"}).json()
    (stored,) = found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert stored["bizStep"] == "commissioning" and stored["ilmd"]["cbvmda:lotNumber"] == "LX1"


def test_each_structural_violation_is_listed(client: TestClient, supply: EmbeddedNode) -> None:
    broken = commission("Y1", extra="<colour>blue</colour>").replace(
        "<epcList>", "<epcList><item>z</item>"
    )
    response = post_xml(client, xml(broken, "<JumpEvent/>"))
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = {(e["field"].removeprefix("args."), e["message"]) for e in problem["errors"]}
    assert (
        "/EPCISBody/EventList/0/colour",
        "'colour' is not a field of an EPCIS 2.0 ObjectEvent",
    ) in fields
    assert ("/EPCISBody/EventList/0/epcList/0", "expected <epc>, found <item>") in fields
    assert ("/EPCISBody/EventList/1", "<JumpEvent> is not an EPCIS 2.0 event type") in fields
    assert supply.peer.store.get_state("supply", f"unit/{unit('Y1')}") is None


def test_schema_violations_after_mapping_are_listed(client: TestClient) -> None:
    bad = commission("Y2").replace("<action>ADD</action>", "<action>JUMP</action>")
    response = post_xml(client, xml(bad))
    assert response.status_code == 422
    fields = {e["field"].removeprefix("args.") for e in response.json()["errors"]}
    assert "/epcisBody/eventList/0/action" in fields


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<epcis:EPCISDocument", "not well-formed XML"),
        ("<EPCISDocument/>", "the root must be {urn:epcglobal:epcis:xsd:2}EPCISDocument"),
        (BILLION_LAUGHS, "amplification"),
        ('<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>', "undefined entity"),
        (xml(root="epcis:EPCISQueryDocument"), "the root must be"),
    ],
)
def test_unreadable_documents_are_clear_answers(
    client: TestClient, body: str, message: str
) -> None:
    response = post_xml(client, body)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_xml_must_be_sent_as_xml(client: TestClient) -> None:
    response = client.post(
        "/api/v1/supply/capture/xml",
        params={"identity": MAKER_OPS},
        content=xml(commission("Y3")).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].endswith("content-type")


def test_all_or_nothing(client: TestClient, supply: EmbeddedNode) -> None:
    other = "urn:epc:id:sgtin:6951234.000002."  # OTHER_GTIN: never registered
    assert OTHER_GTIN.startswith("0695123400002")
    response = post_xml(client, xml(commission("Z1"), commission("Z2", prefix=other)))
    assert response.status_code == 409
    assert "not registered" in response.json()["detail"]
    assert supply.peer.store.get_state("supply", f"unit/{unit('Z1')}") is None


def test_an_event_whose_hash_would_change_is_refused(client: TestClient) -> None:
    alarm = (
        "<sensorElementList><sensorElement>"
        '<sensorReport type="gs1:AT-Alarm_condition" booleanValue="true"/>'
        "</sensorElement></sensorElementList>"
    )
    response = post_xml(client, xml(commission("Z3"), commission("Z4", extra=alarm)))
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"].removeprefix("args.") == "/EPCISBody/EventList/1"
    assert "send it as JSON-LD" in error["message"]


def test_only_a_held_identity_captures(client: TestClient) -> None:
    assert post_xml(client, xml(commission("Z5")), identity="nobody/x").status_code == 403
    other_org = post_xml(client, xml(commission("Z6")), identity=PHARMACY)
    assert other_org.status_code == 403
    assert GTIN in other_org.json()["detail"] or "not a location" in other_org.json()["detail"]


def test_mapping_errors_name_the_document() -> None:
    with pytest.raises(InvalidArguments, match=r"not an EPCIS 2\.0 XML document"):
        xml_document(b"<a/>")
