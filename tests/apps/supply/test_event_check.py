"""``healthledger supply check`` against a real data folder, and the rebuild route."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from healthledger.api.app import create_api
from healthledger.apps.supply.cli import build_cli
from healthledger.apps.supply.event_store import STORE_FILE, EventStore
from healthledger.apps.supply.service import CaptureService
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import (
    CONTRACTS,
    MAKER_OPS,
    PHARMACY,
    REGULATOR,
    register_master_data,
)
from tests.apps.supply.test_routes import COMMISSION, SHIP, document
from tests.support.founding import found
from tests.support.members import member_reads
from tests.support.seam import supply_seam

EVENT_ID = "urn:uuid:6b1c7e0a-5a3f-4c62-9d7e-0c1f2a3b4c5d"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """A stopped node's data folder holding two captured events (the first with an eventID)."""
    data = tmp_path_factory.mktemp("check") / "data"
    node = found(data, contracts=CONTRACTS, batch_timeout_s=0.005).start()
    try:
        register_master_data(node)
        store = EventStore.of(supply_seam(node))
        result = CaptureService(supply_seam(node), events=store).capture(
            MAKER_OPS, document({**COMMISSION, "eventID": EVENT_ID}, SHIP)
        )
        store.close()
    finally:
        node.stop()
    yield data, list(result["result"]["anchored"])


def run(*args: str) -> object:
    return CliRunner().invoke(build_cli(), ["check", *args])


def test_an_intact_event_by_hash_and_by_event_id(folder: tuple[Path, list[str]]) -> None:
    data, hashes = folder
    result = run("--data", str(data), hashes[1])
    assert result.exit_code == 0, result.output
    assert "verdict: intact" in result.output
    assert "inclusion proof: block" in result.output and "verified" in result.output
    as_json = run("--data", str(data), "--json", EVENT_ID)
    assert as_json.exit_code == 0
    report = json.loads(as_json.stdout)
    assert report["event_hash"] == hashes[0] == report["recomputed_hash"]
    assert report["anchor"]["op"] == "commission"
    assert report["proof"]["txId"] == report["anchor"]["tx_id"]


def test_a_tampered_event_fails(folder: tuple[Path, list[str]], tmp_path: Path) -> None:
    data, hashes = folder
    copy = tmp_path / "copy"
    _copy_tree(data, copy)
    with sqlite3.connect(copy / "apps" / "supply" / STORE_FILE) as db:
        (raw,) = db.execute(
            "SELECT event FROM events WHERE event_hash = ?", (hashes[1],)
        ).fetchone()
        forged = json.loads(raw) | {"eventTime": "2026-02-01T00:00:00.000+08:00"}
        db.execute(
            "UPDATE events SET event = ? WHERE event_hash = ?", (json.dumps(forged), hashes[1])
        )
    result = run("--data", str(copy), hashes[1])
    assert result.exit_code == 1
    assert "verdict: tampered" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0"], "no stored event"),
        (["urn:uuid:unknown"], "no stored event has the hash or eventID"),
    ],
)
def test_unknown_events_are_one_line(
    folder: tuple[Path, list[str]], args: list[str], message: str
) -> None:
    data, _ = folder
    result = run("--data", str(data), *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_not_a_data_folder_is_one_line(tmp_path: Path) -> None:
    result = run("--data", str(tmp_path), "x")
    assert result.exit_code == 2
    assert "is not a healthledger data folder" in result.stderr


def _copy_tree(source: Path, target: Path) -> None:
    for path in source.rglob("*"):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(path.read_bytes())


@pytest.fixture
def client(supply: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_api(supply, demo_custody=True)) as test_client:
        test_client.auth = member_reads(supply)
        yield test_client


def test_rebuild_route(client: TestClient, supply: EmbeddedNode) -> None:
    captured = client.post(
        "/api/v1/supply/capture", json={"identity": MAKER_OPS, "document": document(COMMISSION)}
    )
    assert captured.status_code == 200
    store = EventStore.of(supply_seam(supply))
    store.add(
        "not-a-tx", document()["@context"], [("ni:///sha-256;" + "1" * 64 + "?ver=CBV2.0", SHIP)]
    )
    assert store.count() == 2
    store.close()
    refused = client.post("/api/v1/supply/events/rebuild", json={"identity": PHARMACY})
    assert refused.status_code == 403
    assert "needs one of" in refused.json()["detail"]
    rebuilt = client.post("/api/v1/supply/events/rebuild", json={"identity": REGULATOR})
    assert rebuilt.status_code == 200
    assert rebuilt.json() == {"kept": 1, "dropped": 1, "anchors_without_document": 0}
    admin = client.post("/api/v1/supply/events/rebuild", json={"identity": "lingnan-bio/admin"})
    assert admin.json() == {"kept": 1, "dropped": 0, "anchors_without_document": 0}
    unknown = client.post("/api/v1/supply/events/rebuild", json={"identity": "nobody/x"})
    assert unknown.status_code == 403
