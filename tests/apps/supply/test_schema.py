"""EPCIS 2.0 documents against the standard's JSON Schema, offline."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from healthledger.apps.supply.event_hash import event_hashes
from healthledger.apps.supply.schema import EpcisSchema, default_schema_path
from healthledger.contracts.errors import InvalidArguments

EPCIS2 = Path(__file__).resolve().parents[3].parent / "shared" / "conformance" / "epcis2"


def _examples() -> list[Path]:
    if not (EPCIS2 / "JSON").is_dir():
        raise FileNotFoundError(f"conformance folder missing: {EPCIS2}")
    return sorted((EPCIS2 / "JSON").rglob("*.jsonld"))


EXAMPLES = _examples()


@pytest.fixture(scope="module")
def schema() -> EpcisSchema:
    return EpcisSchema(path=EPCIS2 / "EPCIS-JSON-Schema.json")


def _events(document: dict[str, Any]) -> list[Any]:
    body = document["epcisBody"]
    if "eventList" in body:
        return list(body["eventList"])
    return list(body["queryResults"]["resultsBody"]["eventList"])


def test_cases_collected() -> None:
    assert len(EXAMPLES) > 40


def test_the_packaged_schema_is_the_conformance_copy() -> None:
    """The schema shipped inside the package is the standard's file, byte for byte."""
    packaged = default_schema_path().read_bytes()
    assert packaged == (EPCIS2 / "EPCIS-JSON-Schema.json").read_bytes()


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: str(p.relative_to(EPCIS2 / "JSON")))
def test_every_standard_example_is_valid_and_hashes(schema: EpcisSchema, example: Path) -> None:
    document = json.loads(example.read_text())
    assert schema.violations(document) == []
    schema.check(document)
    assert len(event_hashes(example.read_text())) == len(_events(document))


def test_each_violation_is_listed_with_its_path(schema: EpcisSchema) -> None:
    document = json.loads((EPCIS2 / "JSON" / "Example_9.6.1-ObjectEvent.jsonld").read_text())
    broken = copy.deepcopy(document)
    event = broken["epcisBody"]["eventList"][0]
    event["action"] = "JUMP"
    del event["eventTime"]
    found = {(v.path, v.message) for v in schema.violations(broken)}
    assert (
        "/epcisBody/eventList/0/action",
        '"JUMP" is not one of "OBSERVE", "ADD" or "DELETE"',
    ) in found
    assert ("/epcisBody/eventList/0", '"eventTime" is a required property') in found
    with pytest.raises(InvalidArguments) as raised:
        schema.check(broken)
    fields = {e["field"] for e in raised.value.errors}
    assert {"/epcisBody/eventList/0/action", "/epcisBody/eventList/0"} <= fields
    assert all(len(e["message"]) <= 300 for e in raised.value.errors)


def test_empty_document_lists_each_missing_property(schema: EpcisSchema) -> None:
    messages = {v.message for v in schema.violations({"type": "EPCISDocument"})}
    assert '"epcisBody" is a required property' in messages
    assert '"@context" is a required property' in messages


def test_unloadable_schema_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot load"):
        EpcisSchema(path=tmp_path / "missing.json")
