"""The health-code board counts a change on the local day the public page shows: a change
recorded at 17:30 UTC is 01:30 China Standard Time the next day, and counts there (the
contract's own day number is still the UTC one). Its snapshot names its zone, so a board
counting in another zone reads the chain again instead of taking the other's days. The
holder's page shows when their colour changed in the same local time."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from healthledger.appkit.readable import local_day, when
from healthledger.apps.credentials import healthcode_service as service
from healthledger.apps.credentials.healthcode_rules import RULES_V1
from healthledger.apps.credentials.healthcode_snapshot import SNAPSHOT_FILE, digest_of
from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.regions import RegionTable
from healthledger.node.embedded import EmbeddedNode
from healthledger.web.console import create_console
from tests.apps.credentials.healthcode_support import (
    CONTRACTS,
    DOCTOR,
    confirmed_case,
    evaluate,
    pid_of,
    propose_and_approve,
    seam,
)
from tests.apps.epidemic.conftest import TEST_REGIONS
from tests.support.founding import found
from tests.support.seam import epidemic_seam


def _next_1730_utc() -> int:
    """The next 17:30 UTC from now, in Unix milliseconds."""
    now = dt.datetime.now(dt.UTC)
    at = now.replace(hour=17, minute=30, second=0, microsecond=0)
    if at <= now:
        at += dt.timedelta(days=1)
    return int(at.timestamp() * 1000)


START_MS = _next_1730_utc()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node whose clock starts at 17:30 UTC and moves on a millisecond a reading."""
    ticks = itertools.count(START_MS)
    folder: Path = tmp_path_factory.mktemp("board-days") / "data"
    made = found(folder, contracts=CONTRACTS, batch_timeout_s=0.005, clock=lambda: next(ticks))
    made.start()
    configure(epidemic_seam(made), RegionTable.from_source(TEST_REGIONS))
    propose_and_approve(made, "2026.1", RULES_V1)
    yield made
    made.stop()


def test_a_change_at_17_30_utc_counts_on_the_next_local_day(node: EmbeddedNode) -> None:
    case = pid_of(node, 41)
    confirmed_case(node, 41, days_ago=1)
    code = evaluate(node, case)
    _, appeal = node.invoke(DOCTOR, "healthcode", "file_appeal",
                            {"pid": case, "grounds": "recovered"})  # fmt: skip
    utc_day = dt.datetime.fromtimestamp(code["at"] / 1000, dt.UTC).date()
    local = utc_day + dt.timedelta(days=1)
    assert when(code["at"]).startswith(f"{local.isoformat()} 01:30 CST")
    assert code["day"] == (utc_day - dt.date(1970, 1, 1)).days  # the contract's UTC day

    summary = service.board(seam(node)).summary()
    red = [r for r in summary["changes"] if r["colour"] == "red"]
    assert [(r["day"], r["changes"]) for r in red] == [(local.isoformat(), 1)]
    assert [d["day"] for d in summary["days"]] == [local.isoformat()]
    filed = next(a for a in summary["appeals"] if a["appeal_id"] == appeal["appeal_id"])
    assert filed["filed"] == local.isoformat()
    assert summary["days_in"] == "CST (UTC+08:00)"


def test_a_board_counting_in_another_zone_does_not_take_the_snapshot(node: EmbeddedNode) -> None:
    app = seam(node)
    service.board(app).summary()  # writes the snapshot, its days in China Standard Time
    utc = service.HealthCodeBoard(app, zone=ZoneInfo("UTC"))
    assert utc.started_from is None
    utc_day = local_day(START_MS, ZoneInfo("UTC"))
    assert utc_day is not None
    assert {r["day"] for r in utc.summary()["changes"]} == {utc_day.isoformat()}
    assert utc.summary()["days_in"] == "UTC"
    again = service.HealthCodeBoard(app)  # the UTC board saved its own: refused in turn
    assert again.started_from is None
    assert again.summary()["changes"] == service.board(app).summary()["changes"]

    record = json.loads((app.folder / SNAPSHOT_FILE).read_text())
    older = {**record["snapshot"], "counts": dict(record["snapshot"]["counts"])}
    del older["counts"]["zone"]  # as a board counting UTC days wrote it
    (app.folder / SNAPSHOT_FILE).write_text(
        json.dumps({"sha256": digest_of(older), "snapshot": older})
    )
    assert service.HealthCodeBoard(app).started_from is None


def test_the_holder_sees_a_change_at_17_30_utc_on_the_next_local_day(node: EmbeddedNode) -> None:
    case = pid_of(node, 42)
    confirmed_case(node, 42, days_ago=1)
    code = evaluate(node, case)
    utc_day = dt.datetime.fromtimestamp(code["at"] / 1000, dt.UTC).date()
    local = utc_day + dt.timedelta(days=1)
    with TestClient(create_console(node)) as client:
        answer = client.get(f"/credentials/healthcode/holder/{case}")
        assert answer.status_code == 200, answer.text
    since = re.search(r'<p id="hc-since">since ([^<]+)</p>', answer.text)
    assert since is not None
    assert since.group(1).startswith(f"{local.isoformat()} 01:30 CST (UTC+08:00)")
    shown = service.holder_view(seam(node), case)  # what the API answers
    assert shown is not None
    assert since.group(1) == when(shown["at"]) == when(code["at"])
