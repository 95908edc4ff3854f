"""The read model's snapshot: a restarted node's dashboard starts from it and shows
exactly what a full replay of the chain shows; a snapshot that does not check out
(tampered, of another block or height, above the head) is refused with a log line
and the chain is replayed instead."""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from healthledger.apps.epidemic.dashboard import Dashboard, scope_of
from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.readmodel import CaseReadModel, snapshot_folder
from healthledger.apps.epidemic.regions import RegionTable
from healthledger.apps.epidemic.simulate import SeirParams, define_simulated_population, run
from healthledger.apps.epidemic.snapshot import RECORD_FILE, SNAPSHOT_FILE
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.conftest import CONTRACTS, TEST_REGIONS
from tests.apps.epidemic.support import person, report
from tests.support.founding import found
from tests.support.seam import epidemic_seam

OUTBREAK = SeirParams(population=200, days=15, reported_share=0.5, seeds=3)
EPI = "gd-cdc/epi-wang"
VIEWER = "gd-cdc/epi-wang"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped node's data folder after a small outbreak, its dashboard's snapshot
    written at the head, then a few more reports and a review after it (built once)."""
    folder = tmp_path_factory.mktemp("snapshot") / "data"
    node = found(folder, contracts=CONTRACTS, batch_timeout_s=0.005).start()
    try:
        seam = epidemic_seam(node)
        configure(seam, RegionTable.from_source(TEST_REGIONS))
        define_simulated_population(seam, OUTBREAK)
        run(seam, random.Random(5), OUTBREAK)
        dashboard = Dashboard(seam, snapshot_every=1)
        dashboard.figures(viewer_scope(node))
        dashboard.close()
        assert (snapshot_folder(seam) / RECORD_FILE).exists()
        tail = [report(node, patient=person(900 + n), disease="A90")["case_id"] for n in range(3)]
        node.invoke(EPI, "epidemic", "confirm", {"case_id": tail[0]})
    finally:
        node.stop()
    return folder


@pytest.fixture
def data(built: Path, tmp_path: Path) -> Path:
    """A copy of the built data folder, for one test to change."""
    return Path(shutil.copytree(built, tmp_path / "data"))


def viewer_scope(node: EmbeddedNode) -> Any:
    scope = scope_of(epidemic_seam(node), VIEWER)
    assert scope is not None
    return scope


def everything(model: CaseReadModel) -> dict[str, Any]:
    """Every table's content as the model's queries give it."""
    return {
        "line_list": model.line_list(),
        "alerts": model.alerts(),
        "positivity": model.positivity(),
        "first_doses": model.first_doses(),
        "supply_doses": model.linked_doses(),
        "last_event": model.last_event,
    }


def replayed(node: EmbeddedNode) -> dict[str, Any]:
    """What a model replaying the whole chain holds."""
    model = CaseReadModel(epidemic_seam(node))
    try:
        model.catch_up()
        return everything(model)
    finally:
        model.close()


def record_of(node: EmbeddedNode) -> dict[str, Any]:
    found_record: dict[str, Any] = json.loads(
        (snapshot_folder(epidemic_seam(node)) / RECORD_FILE).read_text()
    )
    return found_record


def test_a_restarted_dashboard_starts_from_its_snapshot_and_equals_a_full_replay(
    data: Path,
) -> None:
    with EmbeddedNode(data, contracts=CONTRACTS) as node:
        seam = epidemic_seam(node)
        saved = record_of(node)
        restarted = Dashboard(seam, snapshot_every=0)
        assert restarted.started_from == saved["height"]
        assert saved["height"] < node.peer.store.height() - 1, "no tail to replay"
        scope = viewer_scope(node)
        figures = restarted.figures(scope)
        from_snapshot = everything(restarted._model)
        restarted.close()
        assert from_snapshot == replayed(node)
        assert any(row["disease"] == "dengue" for row in from_snapshot["line_list"])
        shutil.rmtree(snapshot_folder(seam))
        full = Dashboard(seam, snapshot_every=0)
        assert full.started_from is None
        assert full.figures(scope) == figures
        full.close()


def test_a_tampered_snapshot_is_refused_and_the_chain_replayed(
    data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with EmbeddedNode(data, contracts=CONTRACTS) as node:
        seam = epidemic_seam(node)
        path = snapshot_folder(seam) / SNAPSHOT_FILE
        content = bytearray(path.read_bytes())
        content[len(content) // 2] ^= 0x01
        path.write_bytes(bytes(content))
        with caplog.at_level(logging.WARNING):
            model = CaseReadModel(seam, snapshots=snapshot_folder(seam), snapshot_every=1)
        assert model.started_from is None
        assert "not used" in caplog.text and "SHA-256" in caplog.text
        model.catch_up()
        assert everything(model) == replayed(node)
        # Caught up, it wrote a good snapshot in place of the tampered one.
        assert record_of(node)["height"] == node.peer.store.height() - 1
        model.close()
        again = CaseReadModel(seam, snapshots=snapshot_folder(seam))
        assert again.started_from == node.peer.store.height() - 1
        assert everything(again) == replayed(node)
        again.close()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda r, head: {**r, "height": r["height"] - 1}, "is not the one it saw"),
        (lambda r, head: {**r, "height": head + 5}, "above this chain's head"),
        (lambda r, head: {**r, "block_hash": "00" * 32}, "is not the one it saw"),
        (lambda r, head: {**r, "schema": "00" * 32}, "another schema"),
    ],
    ids=["another-height", "above-the-head", "another-block", "another-schema"],
)
def test_a_snapshot_of_another_height_or_chain_is_refused(
    data: Path, caplog: pytest.LogCaptureFixture, change: Any, why: str
) -> None:
    with EmbeddedNode(data, contracts=CONTRACTS) as node:
        seam = epidemic_seam(node)
        record = snapshot_folder(seam) / RECORD_FILE
        head = node.peer.store.height() - 1
        record.write_text(json.dumps(change(record_of(node), head)))
        with caplog.at_level(logging.WARNING):
            model = CaseReadModel(seam, snapshots=snapshot_folder(seam))
        assert model.started_from is None
        assert why in caplog.text
        model.catch_up()
        assert everything(model) == replayed(node)
        model.close()


def test_a_snapshot_file_from_another_height_is_refused(data: Path) -> None:
    """The file of an older snapshot beside the newer record: refused by its hash."""
    with EmbeddedNode(data, contracts=CONTRACTS) as node:
        seam = epidemic_seam(node)
        folder = snapshot_folder(seam)
        older = folder.parent / "older.duckdb"
        shutil.copy(folder / SNAPSHOT_FILE, older)
        model = CaseReadModel(seam, snapshots=folder, snapshot_every=1)
        model.catch_up()
        model.close()
        shutil.copy(older, folder / SNAPSHOT_FILE)
        stale = CaseReadModel(seam, snapshots=folder)
        assert stale.started_from is None
        stale.catch_up()
        assert everything(stale) == replayed(node)
        stale.close()
