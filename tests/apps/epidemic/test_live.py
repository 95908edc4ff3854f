"""Live demo traffic (``App.live_step``) and the early-warning scan on a live server."""

from __future__ import annotations

import random
import threading

from healthledger.apps.epidemic.app import APP
from healthledger.apps.epidemic.live import live_step, pressure
from healthledger.apps.epidemic.simulate import SeirParams, run
from healthledger.apps.epidemic.warning import LiveWarning
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.support import case_args, person, today
from tests.support.seam import epidemic_seam

EPI = "gd-cdc/epi-wang"


def _count(node: EmbeddedNode, prefix: str) -> int:
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return len(list(node.peer.store.range_state("epidemic", prefix, end, 100_000)))


def test_the_app_declares_its_live_step() -> None:
    assert APP.live_step is live_step


def test_live_rounds_continue_the_outbreak_on_chain(node: EmbeddedNode) -> None:
    run(
        epidemic_seam(node),
        random.Random(4),
        SeirParams(population=300, days=20, reported_share=0.5),
    )
    before = {p: _count(node, f"{p}/") for p in ("case", "lab", "vaccination")}
    known = {key for key, _ in node.peer.store.range_state("epidemic", "case/", "case0", 100_000)}
    rng = random.Random(9)
    totals: dict[str, int] = {}
    for _ in range(6):
        waiting = sum(
            1
            for _, item in node.peer.store.range_state("epidemic", "case/", "case0", 100_000)
            if item.value["status"] == "reported"
        )
        counts = live_step(epidemic_seam(node), rng)
        assert counts["reviewed"] == min(3, waiting)  # the oldest waiting reports
        for what, n in counts.items():
            totals[what] = totals.get(what, 0) + n
    plans = epidemic_seam(node).shared("live-day-plans", dict)
    story = plans[today(node)][0]
    assert 1 <= story.expected <= 6, "so that six rounds of one to four cases reach it"
    assert totals["cases"] == story.expected, "the day's reports stop at the day's story"
    assert totals["reviewed"] > 0
    assert _count(node, "case/") == before["case"] + totals["cases"]
    assert _count(node, "lab/") == before["lab"] + totals["lab results"]
    assert _count(node, "vaccination/") == before["vaccination"] + totals["vaccinations"]
    new = [
        item.value
        for key, item in node.peer.store.range_state("epidemic", "case/", "case0", 100_000)
        if key not in known
    ]
    assert len(new) == totals["cases"]
    assert all(today(node) - 3 <= case["onset"] <= today(node) for case in new)
    assert live_step(epidemic_seam(node), rng)["cases"] == 0, "nothing more today"


def test_new_cases_follow_the_infection_pressure() -> None:
    day = 20_000
    cases = {
        f"case/{i}": {"status": "confirmed", "onset": day - 2, "region": "440104"}
        for i in range(30)
    }
    cases["case/x"] = {"status": "rejected", "onset": day - 2, "region": "440304"}
    weights = pressure(cases, ["440104", "440304"], day)
    assert weights["440104"] > 10 * weights["440304"]
    assert weights["440304"] > 0  # a quiet district can still see a case


def test_an_unconfigured_chain_gets_no_live_traffic(bare_node: EmbeddedNode) -> None:
    assert live_step(epidemic_seam(bare_node), random.Random(1)) == {}


def test_the_live_scan_records_an_alert_as_reports_commit(node: EmbeddedNode) -> None:
    node.invoke(
        "gz-first-hospital/dr-li",
        "epidemic",
        "report_case",
        case_args(node, onset_date=today(node) - 12, diagnosis_date=today(node) - 11),
        transient={"patient": person(500)},
    )
    warning = LiveWarning(epidemic_seam(node), EPI)
    warning.start()
    warning.start()  # idempotent: one follower
    try:
        assert [t.name for t in threading.enumerate()].count("epidemic-live-warning") == 1
        reports = [
            case_args(node, onset_date=today(node), diagnosis_date=today(node)) for _ in range(8)
        ]
        node.invoke(
            "gz-first-hospital/dr-li",
            "epidemic",
            "report_cases",
            {"reports": reports},
            transient={"patients": [person(501 + i) for i in range(8)]},
        )
        key = f"alert/influenza/440100/{today(node)}"
        height = node.peer.store.height()
        while node.peer.store.get_state("epidemic", key) is None:
            assert node.peer.events.wait_for_height(height, 30.0), "no alert was recorded"
            height = node.peer.store.height()
        alert = node.peer.store.get_state("epidemic", key)
        assert alert is not None and alert.value["by"] == EPI and alert.value["count"] == 8
    finally:
        warning.stop()
    assert warning.recorded == 1
    assert _count(node, "alert/") == 1  # once per region, disease and day
