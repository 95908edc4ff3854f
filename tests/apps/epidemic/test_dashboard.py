"""The dashboard's numbers equal those recomputed from the chain; alerts are
transactions; the pages serve the same figures to the viewer's scope."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from healthledger.apps.epidemic.dashboard import Dashboard, scope_of
from healthledger.apps.epidemic.dates import iso
from healthledger.apps.epidemic.readmodel import CaseReadModel
from healthledger.apps.epidemic.simulate import SeirParams, run
from healthledger.apps.epidemic.surveillance import cori_rt, serial_interval
from healthledger.apps.epidemic.warning import record_alerts
from healthledger.contracts.errors import AccessDenied, Rejected
from healthledger.node.embedded import EmbeddedNode
from healthledger.web.console import create_console
from tests.apps.epidemic.support import today

OUTBREAK = SeirParams(population=600, days=30, reported_share=0.5, seeds=4)
EPI = "gd-cdc/epi-wang"


@pytest.fixture
def outbreak(node: EmbeddedNode) -> EmbeddedNode:
    """The configured test node after a small simulated outbreak and the alert scan."""
    run(node, random.Random(21), OUTBREAK)
    model = CaseReadModel(node.peer.events)
    record_alerts(node, model, EPI, today=today(node))
    model.close()
    return node


def chain_cases(node: EmbeddedNode) -> list[dict[str, Any]]:
    """Every case record in committed state, not via the read model."""
    return [
        item.value
        for _, item in node.peer.store.range_state("epidemic", "case/", "case0", 100_000)
        if item.value["status"] != "rejected"
    ]


def test_dashboard_numbers_equal_those_recomputed_from_the_chain(outbreak: EmbeddedNode) -> None:
    node = outbreak
    scope = scope_of(node, EPI)
    assert scope is not None and scope.region_prefix == "44"
    figures = Dashboard(node).figures(scope, disease="influenza")
    cases = [c for c in chain_cases(node) if c["disease"] == "influenza"]
    assert len(cases) > 30
    by_day = Counter(c["onset"] for c in cases)
    assert figures["total"] == len(cases)
    first = min(by_day)
    assert figures["curve"][0]["day"] == first
    assert figures["curve"][-1]["day"] == today(node)
    running = 0
    for point in figures["curve"]:
        running += by_day.get(point["day"], 0)
        assert point["count"] == by_day.get(point["day"], 0)
        assert point["cumulative"] == running
        assert point["date"] == iso(point["day"])
    assert {p["code"]: p["count"] for p in figures["places"]} == Counter(c["region"] for c in cases)
    cities = Counter(c["region"][:4] + "00" for c in cases)
    assert {p["code"]: p["count"] for p in figures["cities"]} == cities
    counts = [by_day.get(d, 0) for d in range(first, today(node) + 1)]
    expected_rt = cori_rt(counts, serial_interval(), first_day=first)
    assert [(e["day"], e["mean"]) for e in figures["rt"]] == [
        (e.day, round(e.mean, 3)) for e in expected_rt
    ]
    alerts = [
        item.value for _, item in node.peer.store.range_state("epidemic", "alert/", "alert0", 1000)
    ]
    assert len(figures["alerts"]) == len(alerts)
    assert {(a["region"], a["day"]) for a in figures["alerts"]} == {
        (a["region"], a["day"]) for a in alerts
    }


def test_a_hospital_sees_its_own_reports_and_a_city_filter_narrows(
    outbreak: EmbeddedNode,
) -> None:
    node = outbreak
    own = scope_of(node, "sz-peoples-hospital/lab-wu")
    assert own is not None and own.org == "sz-peoples-hospital"
    dashboard = Dashboard(node)
    mine = dashboard.figures(own, disease="influenza")
    cases = chain_cases(node)
    assert mine["total"] == sum(1 for c in cases if c["reporter_org"] == "sz-peoples-hospital")
    province = scope_of(node, EPI)
    assert province is not None
    shenzhen = dashboard.figures(province, disease="influenza", region="440300")
    assert shenzhen["total"] == sum(1 for c in cases if c["region"].startswith("4403"))
    assert scope_of(node, "gd-insurance/admin") is None


def test_alerts_are_transactions_recorded_once(outbreak: EmbeddedNode) -> None:
    node = outbreak
    alerts = list(node.peer.store.range_state("epidemic", "alert/", "alert0", 1000))
    assert alerts, "the outbreak raises at least one alert"
    first = alerts[0][1].value
    assert first["by"] == EPI and set(first["methods"]) <= {"C1", "C2", "C3"}
    args = {k: first[k] for k in ("disease", "region", "day", "methods", "count", "baseline_milli")}
    with pytest.raises(Rejected):
        node.invoke(EPI, "epidemic", "raise_alert", args)
    with pytest.raises(AccessDenied):
        node.invoke("gz-first-hospital/dr-li", "epidemic", "raise_alert", args)
    model = CaseReadModel(node.peer.events)
    assert record_alerts(node, model, EPI, today=today(node)) == []  # nothing new


@pytest.fixture
def console(outbreak: EmbeddedNode) -> Iterator[TestClient]:
    """The console over the outbreak's node."""
    with TestClient(create_console(outbreak), follow_redirects=False) as client:
        yield client


def log_in(client: TestClient, identity: str) -> None:
    """Log in through the form, as a new session."""
    client.cookies.clear()
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/login", data={"identity": identity, "csrf": token.group(1), "next": "/epidemic"}
    )
    assert response.status_code == 303


def test_pages_show_the_figures_to_the_viewer_scope(console: TestClient) -> None:
    assert console.get("/epidemic").status_code == 303  # login first
    log_in(console, EPI)
    figures = console.get("/epidemic/figures.json?disease=influenza").json()
    page = console.get("/epidemic?disease=influenza")
    assert page.status_code == 200
    assert f'<dd id="total">{figures["total"]}</dd>' in page.text
    bars = re.findall(r'class="bar"[^>]*data-count="(\d+)"', page.text)
    assert [int(n) for n in bars] == [p["count"] for p in figures["curve"]]
    assert page.text.count('class="bubble"') == len(figures["places"])
    assert "<script src" not in page.text.split("</header>", 1)[1]  # no external scripts
    panel = console.get("/epidemic/panel?disease=influenza")
    assert panel.status_code == 200 and 'id="figures"' in panel.text
    assert "<html" not in panel.text


def test_an_organisation_outside_reporting_is_refused(console: TestClient) -> None:
    log_in(console, "gd-insurance/admin")
    assert console.get("/epidemic").status_code == 403
    assert console.get("/epidemic/figures.json").status_code == 403


def test_public_statistics_need_no_login_state_epsilon_and_stay_fixed(
    console: TestClient, outbreak: EmbeddedNode
) -> None:
    page = console.get("/epidemic/public")
    assert page.status_code == 200
    assert "ε = 0.5" in page.text and "below 10" in page.text
    first = console.get("/epidemic/public.json").json()
    assert console.get("/epidemic/public.json").json() == first  # one release a day
    assert first["epsilon"] == 0.5
    cases = chain_cases(outbreak)
    true = Counter((c["region"][:4] + "00", c["disease"]) for c in cases)
    assert {(r["region"], r["disease"]) for r in first["rows"]} == set(true)
    for row in first["rows"]:
        assert row["count"] is None or row["count"] >= 10
    csv_text = console.get("/epidemic/public.csv").text
    assert csv_text.splitlines()[0] == "date,region,name,disease,count,epsilon"
    assert len(csv_text.splitlines()) == len(first["rows"]) + 1
    for case in cases:
        assert case["case_id"] not in page.text + csv_text


def test_line_list_and_exact_aggregates_for_authorised_roles_only(
    console: TestClient, outbreak: EmbeddedNode
) -> None:
    assert console.get("/epidemic/linelist.csv").status_code == 303
    cases = chain_cases(outbreak)
    log_in(console, "sz-peoples-hospital/lab-wu")
    own = console.get("/epidemic/linelist.csv").text.splitlines()
    assert own[0].startswith("case_id,disease,classification,onset")
    mine = [c for c in cases if c["reporter_org"] == "sz-peoples-hospital"]
    assert len(own) - 1 >= len(mine) and all(c["case_id"] in "\n".join(own) for c in mine)
    assert all(",sz-peoples-hospital," in row for row in own[1:])
    log_in(console, EPI)
    everything = console.get("/epidemic/linelist.csv").text
    for case in cases:
        assert case["case_id"] in everything
        assert case["pid"] not in everything  # pseudonymous ids stay off exports
    rows = console.get("/epidemic/aggregates.json").json()["rows"]
    assert sum(r["count"] for r in rows) == len(cases)
    assert console.get("/epidemic/aggregates.csv").text.startswith("disease,region,onset,count")
    log_in(console, "gd-insurance/admin")
    assert console.get("/epidemic/linelist.csv").status_code == 403
    assert console.get("/epidemic/aggregates.json").status_code == 403
