"""The CBV 2.0 event hash against every public conformance example."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthledger.apps.supply.cbv_vocabulary import VOCABULARY_TERMS
from healthledger.apps.supply.cli import build_cli
from healthledger.apps.supply.event_hash import (
    EpcisDocumentError,
    event_hashes,
    expand_compact,
    hash_of_prehash,
)

CONFORMANCE = Path(__file__).resolve().parents[3].parent / "shared" / "conformance"
VECTORS = CONFORMANCE / "epcis-event-hash"

# Lines of .prehashes files that do not hash to the matching .hashes line: the
# vectors contradict themselves (a garbled line, a truncated line, a line from
# an older property order), so the .hashes line is the one reproduced.
# test_inconsistent_prehash_lines_are_exactly_these fails when they are fixed.
INCONSISTENT_PREHASHES = {
    ("epcisDocWithAllGS1Keys", 0),
    ("epcisDocWithCustomSchemaInContext", 1),
    ("epcisDocWithDefaultSchemaInContext", 1),
}


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _documents() -> list[Path]:
    if not VECTORS.is_dir():
        raise FileNotFoundError(f"conformance folder missing: {VECTORS}")
    return sorted([*VECTORS.glob("*.jsonld"), *VECTORS.glob("*.xml")])


DOCUMENTS = _documents()


def test_cases_collected() -> None:
    assert len(DOCUMENTS) > 20
    assert sum(1 for d in DOCUMENTS if d.suffix == ".xml") > 5


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_reproduces_prehashes_and_hashes(document: Path) -> None:
    fmt = "xml" if document.suffix == ".xml" else "json"
    got = event_hashes(document.read_bytes(), fmt=fmt)
    assert got, "every example has events"
    prehashes = VECTORS / f"{document.stem}.prehashes"
    hashes = VECTORS / f"{document.stem}.hashes"
    assert prehashes.exists() or hashes.exists()
    if hashes.exists():
        assert [g.hash for g in got] == _lines(hashes)
    if prehashes.exists():
        expected = _lines(prehashes)
        assert len(expected) == len(got)
        for index, (want, have) in enumerate(zip(expected, got, strict=True)):
            if (document.stem, index) in INCONSISTENT_PREHASHES:
                continue
            assert have.prehash == want, f"event {index}"
    for item in got:
        digest = hashlib.sha256(item.prehash.encode()).hexdigest()
        assert item.hash == f"ni:///sha-256;{digest}?ver=CBV2.0"


def test_inconsistent_prehash_lines_are_exactly_these() -> None:
    found = set()
    for prehashes in VECTORS.glob("*.prehashes"):
        hashes = VECTORS / f"{prehashes.stem}.hashes"
        if not hashes.exists():
            continue
        for index, (pre, want) in enumerate(zip(_lines(prehashes), _lines(hashes), strict=False)):
            if hash_of_prehash(pre) != want:
                found.add((prehashes.stem, index))
    assert found == INCONSISTENT_PREHASHES


def test_json_and_xml_forms_hash_alike() -> None:
    pairs = [d for d in DOCUMENTS if d.suffix == ".xml" and d.with_suffix(".jsonld").exists()]
    assert pairs
    for xml in pairs:
        from_xml = [e.hash for e in event_hashes(xml.read_text(), fmt="xml")]
        from_json = [e.hash for e in event_hashes(xml.with_suffix(".jsonld").read_text())]
        assert from_xml == from_json, xml.name


@pytest.mark.parametrize(
    "text",
    ["", "{", "[]", '{"epcisBody": 3}', '{"epcisBody": {"eventList": [1]}}', "<a>", "<a><b/></a>"],
)
def test_not_a_document_is_a_named_error(text: str) -> None:
    with pytest.raises(EpcisDocumentError):
        event_hashes(text)


def test_event_order_matters_not_but_content_does() -> None:
    doc = (VECTORS / "epcisDocWithSingleEvent.jsonld").read_text()
    base = event_hashes(doc)[0].hash
    changed = doc.replace("107346.2018", "107346.2019")
    assert changed != doc
    assert event_hashes(changed)[0].hash != base
    reordered = doc.replace(
        '"urn:epc:id:sgtin:0614141.107346.2017",\n          "urn:epc:id:sgtin:0614141.107346.2018"',
        '"urn:epc:id:sgtin:0614141.107346.2018",\n          "urn:epc:id:sgtin:0614141.107346.2017"',
    )
    assert reordered != doc
    assert event_hashes(reordered)[0].hash == base


def test_cli_prints_one_hash_per_event_in_order() -> None:
    document = VECTORS / "epcisDocWithVariousEventTypes.xml"
    result = CliRunner().invoke(build_cli(), ["event-hash", str(document)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == _lines(VECTORS / "epcisDocWithVariousEventTypes.hashes")


def test_cli_unreadable_file_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(build_cli(), ["event-hash", str(tmp_path / "missing.jsonld")])
    assert result.exit_code == 2
    assert "cannot read" in result.output
    assert "Traceback" not in result.output


def test_cli_invalid_document_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonld"
    bad.write_text('{"epcisBody": {}}')
    result = CliRunner().invoke(build_cli(), ["event-hash", str(bad)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "not a valid EPCIS 2.0 document" in result.output


def test_vocabulary_table_matches_the_epcis_context() -> None:
    context = json.loads((CONFORMANCE / "epcis2" / "epcis-context.jsonld").read_text())
    terms: dict[str, set[str]] = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                iri = value.get("@id") if isinstance(value, dict) else value
                if isinstance(iri, str) and not key.startswith("@"):
                    expanded = expand_compact(iri)
                    if expanded is not None:
                        terms.setdefault(key, set()).add(expanded)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(context)
    assert {k: tuple(sorted(v)) for k, v in terms.items()} == VOCABULARY_TERMS


@pytest.mark.parametrize("field", ["sourceList", "destinationList", "bizTransactionList"])
def test_json_key_order_inside_a_pair_does_not_change_the_hash(field: str) -> None:
    value = {"sourceList": "source", "destinationList": "destination"}.get(field, "bizTransaction")
    entry = {"type": "owning_party" if field != "bizTransactionList" else "po"}
    entry[value] = (
        "urn:epc:id:pgln:0614141.00000"
        if field != "bizTransactionList"
        else "urn:epcglobal:cbv:bt:0614141073467:PO123"
    )
    reversed_entry = dict(reversed(list(entry.items())))

    def doc(item: dict[str, str]) -> str:
        return json.dumps(
            {
                "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
                "type": "EPCISDocument",
                "schemaVersion": "2.0",
                "creationDate": "2026-01-05T10:00:00Z",
                "epcisBody": {
                    "eventList": [
                        {
                            "type": "ObjectEvent",
                            "eventTime": "2026-01-05T09:00:00.000+08:00",
                            "eventTimeZoneOffset": "+08:00",
                            "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"],
                            "action": "OBSERVE",
                            field: [item],
                        }
                    ]
                },
            }
        )

    normal, swapped = event_hashes(doc(entry))[0], event_hashes(doc(reversed_entry))[0]
    assert f"{field}type=" in normal.prehash
    assert swapped.prehash == normal.prehash and swapped.hash == normal.hash
