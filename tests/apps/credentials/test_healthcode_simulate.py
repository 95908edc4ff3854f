"""The health code's simulator over recorded facts, and what it leaves for the public
page, the holder's page and the API: counts by clause, district and day, appeals and
their outcomes, a holder's reasons, a fresh QR that verifies with the published keys."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from healthledger.apps.credentials import healthcode_service as service
from healthledger.apps.credentials.healthcode_qr import LIFETIME_S, verify_code
from healthledger.apps.credentials.healthcode_routes import healthcode_router
from healthledger.apps.credentials.healthcode_simulate import live_step, simulate
from healthledger.apps.credentials.healthcode_snapshot import SNAPSHOT_FILE, digest_of
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.seam import AppNode
from tests.apps.credentials.healthcode_support import (
    confirmed_case,
    lab,
    pid_of,
    seam,
    start,
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    for made in start(tmp_path_factory.mktemp("simulated") / "data", rules=False):
        for serial in range(51, 63):
            pid_of(made, serial)
        for serial in (51, 52, 53):
            confirmed_case(made, serial, days_ago=serial - 50)
        lab(made, 54, "positive", days_ago=1)
        simulate(seam(made), random.Random(7))
        yield made


@pytest.fixture(scope="module")
def app(node: EmbeddedNode) -> AppNode:
    return seam(node)


def test_the_simulator_approves_rules_colours_people_and_decides_appeals(app: AppNode) -> None:
    rules = service.rules(app)
    assert rules["current"]["version"] == "2026.2"
    assert [v["status"] for v in rules["versions"]] == ["approved", "approved"]
    summary = service.board(app).summary()
    reds = sum(r["changes"] for r in summary["changes"] if r["clause"] == "confirmed-case")
    assert reds == 3
    assert {r["region_name"] for r in summary["changes"] if r["colour"] == "red"} == {"Yuexiu"}
    assert all(r["clause_title"] for r in summary["changes"])
    outcomes = sorted(a["status"] for a in summary["appeals"])
    assert outcomes == ["overturned", "upheld"]
    assert summary["totals"]["by_appeal"] == 1 and summary["totals"]["overturned"] == 1


def test_a_holder_sees_why_and_a_fresh_code_verifies_until_it_expires(app: AppNode) -> None:
    red = next(h for h in service.holders(app) if h["colour"] == "red")
    view = service.holder_view(app, red["pid"])
    assert view is not None
    assert view["clause_title"] == "A confirmed case diagnosed in the last 14 days"
    assert view["facts"][0]["kind"] == "case" and view["facts"][0]["date"][:2] == "20"
    code = service.fresh_qr(app, red["pid"])
    assert code is not None and code["svg"].startswith("<svg")
    keys = service.jwks(app)
    now = app.clock() // 1000
    assert verify_code(code["text"], keys, now_s=now).colour == "red"
    assert verify_code(code["text"], keys, now_s=now + LIFETIME_S + 30).verdict == "EXPIRED"


def test_the_api_serves_the_same_figures(app: AppNode) -> None:
    api = FastAPI()
    api.include_router(healthcode_router(app), prefix="/api/v1/credentials")
    client = TestClient(api)
    changes = client.get("/api/v1/credentials/healthcode/changes").json()
    assert changes == service.board(app).summary()
    holders = client.get("/api/v1/credentials/healthcode/holders").json()
    pid = holders[0]["pid"]
    assert client.get(f"/api/v1/credentials/healthcode/holders/{pid}").json()["pid"] == pid
    text = client.get(f"/api/v1/credentials/healthcode/holders/{pid}/qr").json()["text"]
    verdict = client.post("/api/v1/credentials/healthcode/verify", json={"text": text}).json()
    assert verdict["verdict"] == "VALID"
    assert (
        client.get("/api/v1/credentials/healthcode/holders/p1-00000000000000000000").status_code
        == 404
    )
    assert client.get("/api/v1/credentials/healthcode/holders/nobody/qr").status_code == 404
    assert (
        client.post("/api/v1/credentials/healthcode/verify", json={"text": "x"}).json()["verdict"]
        == "MALFORMED"
    )


def test_live_rounds_colour_newly_confirmed_cases(node: EmbeddedNode, app: AppNode) -> None:
    live_step(app, random.Random(1))  # starts following from the newest block
    newcomer = pid_of(node, 63)
    confirmed_case(node, 63, days_ago=0)
    counts = live_step(app, random.Random(1))
    assert counts["colour changes"] >= 1
    code = service.holder_view(app, newcomer)
    assert code is not None and code["colour"] == "red"


def test_a_new_board_starts_from_the_snapshot_and_equals_one_reading_the_chain(
    app: AppNode, node: EmbeddedNode
) -> None:
    """The board wrote its snapshot when it first followed the feed; a new board (as
    after a restart) starts from it, follows the blocks after it, and shows what a
    board reading the whole chain shows; a tampered or other-block one is refused."""
    service.board(app).summary()
    snapshot = app.folder / SNAPSHOT_FILE
    assert snapshot.exists()
    lab(node, 55, "negative", days_ago=0)
    live_step(app, random.Random(3))
    restarted = service.HealthCodeBoard(app)
    assert restarted.started_from is not None
    full = service.HealthCodeBoard(app, snapshots=False)
    assert restarted.summary() == full.summary()
    assert full.started_from is None

    record = json.loads(snapshot.read_text())
    tampered = {
        **record,
        "snapshot": {
            **record["snapshot"],
            "counts": {
                **record["snapshot"]["counts"],
                "recited": record["snapshot"]["counts"]["recited"] + 1,
            },
        },
    }
    snapshot.write_text(json.dumps(tampered))  # fmt: skip
    assert service.HealthCodeBoard(app).started_from is None
    other = {**record["snapshot"], "block_hash": "00" * 32}
    snapshot.write_text(json.dumps({"sha256": digest_of(other), "snapshot": other}))
    refused = service.HealthCodeBoard(app)
    assert refused.started_from is None
    assert refused.summary() == full.summary()
