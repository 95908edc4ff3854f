"""The dashboard's numbers equal those recomputed from the chain; alerts are
transactions; the pages serve the same figures to the viewer's scope."""

from __future__ import annotations

import io
import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from healthledger.apps.epidemic.dashboard import Dashboard, scope_of
from healthledger.apps.epidemic.dates import iso
from healthledger.apps.epidemic.disclosure import PublicStatistics
from healthledger.apps.epidemic.positivity import POSITIVITY_MIN_TESTS, POSITIVITY_WINDOW
from healthledger.apps.epidemic.readmodel import CaseReadModel
from healthledger.apps.epidemic.releases import ChainReleases
from healthledger.apps.epidemic.simulate import (
    POPULATION_SOURCE,
    SeirParams,
    define_simulated_population,
    run,
)
from healthledger.apps.epidemic.surveillance import (
    cori_rt,
    delay_distribution,
    nowcast,
    serial_interval,
)
from healthledger.apps.epidemic.warning import record_alerts
from healthledger.apps.epidemic.workers import publish_release
from healthledger.contracts.errors import AccessDenied, Rejected
from healthledger.node.embedded import EmbeddedNode
from healthledger.web.console import create_console
from tests.apps.epidemic.support import today
from tests.support.seam import epidemic_seam

OUTBREAK = SeirParams(population=600, days=30, reported_share=0.5, seeds=4)
EPI = "gd-cdc/epi-wang"


@pytest.fixture
def outbreak(node: EmbeddedNode) -> EmbeddedNode:
    """The configured test node after a small simulated outbreak and the alert scan."""
    define_simulated_population(epidemic_seam(node), OUTBREAK)
    run(epidemic_seam(node), random.Random(21), OUTBREAK)
    model = CaseReadModel(epidemic_seam(node))
    record_alerts(epidemic_seam(node), model, EPI, today=today(node))
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
    scope = scope_of(epidemic_seam(node), EPI)
    assert scope is not None and scope.region_prefix == "44"
    figures = Dashboard(epidemic_seam(node)).figures(scope, disease="influenza")
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


def chain_state(node: EmbeddedNode, prefix: str) -> list[dict[str, Any]]:
    """Committed epidemic records under ``prefix``, not via the read model."""
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return [item.value for _, item in node.peer.store.range_state("epidemic", prefix, end, 100_000)]


def test_positivity_and_coverage_equal_those_recomputed_from_the_chain(
    outbreak: EmbeddedNode,
) -> None:
    node = outbreak
    scope = scope_of(epidemic_seam(node), EPI)
    assert scope is not None
    figures = Dashboard(epidemic_seam(node)).figures(scope, disease="influenza")
    labs = [lab for lab in chain_state(node, "lab/") if lab["disease"] == "influenza"]
    assert len(labs) > 20 and {lab["result"] for lab in labs} == {"positive", "negative"}
    tests = Counter(lab["specimen_day"] for lab in labs)
    positives = Counter(lab["specimen_day"] for lab in labs if lab["result"] == "positive")
    shown = {p["day"]: p for p in figures["positivity"]}
    assert sum(p["tests"] for p in shown.values()) == len(labs)
    for day, n in tests.items():
        assert shown[day]["tests"] == n
        assert shown[day]["positive"] == positives.get(day, 0)
    for day, point in shown.items():  # the share over 7 days, where the rule allows one
        window = range(day - POSITIVITY_WINDOW + 1, day + 1)
        denominator = sum(tests.get(d, 0) for d in window)
        expected = None
        if tests.get(day, 0) and denominator >= POSITIVITY_MIN_TESTS:
            expected = round(100 * sum(positives.get(d, 0) for d in window) / denominator, 1)
        assert point["pct"] == expected
    assert any(p["pct"] is not None for p in shown.values())
    first_doses = Counter(
        v["region"][:4] + "00"
        for v in chain_state(node, "vaccination/")
        if v["disease"] == "influenza" and v["dose_number"] == 1
    )
    assert sum(first_doses.values()) > 10
    population: Counter[str] = Counter()
    for key, item in node.peer.store.range_state("epidemic", "population/", "population0", 1000):
        population[key.split("/")[1][:4] + "00"] += item.value["population"]
        assert item.value["source"] == POPULATION_SOURCE
    coverage = {row["code"]: row for row in figures["coverage"]}
    assert set(coverage) == set(population)
    for city, row in coverage.items():
        assert row["population"] == population[city]
        assert row["vaccinated"] == first_doses.get(city, 0)
        assert row["coverage_pct"] == round(100 * first_doses.get(city, 0) / population[city], 3)
        assert row["source"].startswith(POPULATION_SOURCE)


def test_the_nowcast_equals_the_one_recomputed_from_the_chain(outbreak: EmbeddedNode) -> None:
    node = outbreak
    scope = scope_of(epidemic_seam(node), EPI)
    assert scope is not None
    figures = Dashboard(epidemic_seam(node)).figures(scope, disease="influenza")
    cases = [c for c in chain_cases(node) if c["disease"] == "influenza"]
    now = today(node)
    delays = Counter(
        (c["onset"], c["diagnosis"] - c["onset"]) for c in cases if c["onset"] >= now - 60
    )
    cdf = delay_distribution(delays, today=now)
    assert cdf is not None and figures["nowcast"] is not None
    assert figures["nowcast"]["delay_cdf"] == [round(f, 4) for f in cdf]
    by_day = Counter(c["onset"] for c in cases)
    first = min(by_day)
    counts = [by_day.get(d, 0) for d in range(first, now + 1)]
    expected = nowcast(counts, cdf, first_day=first, today=now)
    for point in figures["nowcast"]["days"]:
        i = point["day"] - first
        assert point["observed"] == counts[i] and point["expected"] == expected.counts[i]
        assert point["expected"] >= point["observed"]
    assert any(point["corrected"] for point in figures["nowcast"]["days"])
    rt = cori_rt(expected.counts, serial_interval(), first_day=first)
    shown = {e["day"]: e["mean"] for e in figures["nowcast"]["rt"]}
    assert shown == {e.day: round(e.mean, 3) for e in rt if expected.corrected[e.day - first]}
    assert shown  # the recent, corrected days have an estimate


def test_a_hospital_sees_its_own_reports_and_a_city_filter_narrows(
    outbreak: EmbeddedNode,
) -> None:
    node = outbreak
    own = scope_of(epidemic_seam(node), "sz-peoples-hospital/lab-wu")
    assert own is not None and own.org == "sz-peoples-hospital"
    dashboard = Dashboard(epidemic_seam(node))
    mine = dashboard.figures(own, disease="influenza")
    cases = chain_cases(node)
    assert mine["total"] == sum(1 for c in cases if c["reporter_org"] == "sz-peoples-hospital")
    assert mine["scope_kind"] == "organisation" and mine["coverage"] == []  # a region's figure
    own_labs = [
        lab
        for lab in chain_state(node, "lab/")
        if lab["reporter_org"] == "sz-peoples-hospital" and lab["disease"] == "influenza"
    ]
    assert sum(p["tests"] for p in mine["positivity"]) == len(own_labs)
    province = scope_of(epidemic_seam(node), EPI)
    assert province is not None
    shenzhen = dashboard.figures(province, disease="influenza", region="440300")
    assert shenzhen["total"] == sum(1 for c in cases if c["region"].startswith("4403"))
    assert scope_of(epidemic_seam(node), "gd-insurance/admin") is None


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
    model = CaseReadModel(epidemic_seam(node))
    assert record_alerts(epidemic_seam(node), model, EPI, today=today(node)) == []  # nothing new


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
    specs = {
        name: json.loads(spec)
        for name, spec in re.findall(
            r'<script type="application/json" id="spec-(\w+)">(.*?)</script>', page.text
        )
    }
    assert set(specs) == {"curve", "rt", "positivity", "map"}
    assert specs["curve"]["data"]["values"] == figures["curve"]  # the same numbers
    assert specs["curve"]["title"]["subtitle"] == figures["subtitle"]
    assert '<script src="/charts.js">' in page.text  # served by the console: no network
    script = console.get("/charts.js")
    assert script.status_code == 200 and "vegaEmbed" in script.text
    panel = console.get("/epidemic/panel?disease=influenza")
    assert panel.status_code == 200 and 'id="figures"' in panel.text
    assert "<html" not in panel.text
    assert specs["positivity"]["data"]["values"] == figures["positivity"]
    vaccinated = re.findall(r'<td class="vaccinated">(\d+)</td>', page.text)
    assert [int(n) for n in vaccinated] == [c["vaccinated"] for c in figures["coverage"]]
    assert POPULATION_SOURCE in page.text


@pytest.mark.parametrize("name", ["curve", "rt", "positivity", "map"])
def test_figures_export_as_png_in_the_viewer_scope(console: TestClient, name: str) -> None:
    assert console.get(f"/epidemic/figures/{name}.png").status_code == 303  # login first
    log_in(console, EPI)
    response = console.get(f"/epidemic/figures/{name}.png?disease=influenza")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(response.content))
    image.load()
    assert "Influenza" in image.info["Title"] and "(440000)" in image.info["Description"]
    colours = {colour for _, colour in image.convert("RGB").getcolors(1_000_000) or []}
    assert colours - {(255, 255, 255), (0, 0, 0)}, "something is drawn besides text"
    missing = console.get("/epidemic/figures/nothing.png")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"] == "/api/v1/problems/not-found"
    assert missing.json()["instance"] == "/epidemic/figures/nothing.png"
    log_in(console, "gd-insurance/admin")
    refused = console.get(f"/epidemic/figures/{name}.png")
    assert refused.status_code == 403
    assert refused.json()["type"] == "/api/v1/problems/access-denied"


def test_coverage_exports_as_csv(console: TestClient) -> None:
    log_in(console, EPI)
    figures = console.get("/epidemic/figures.json?disease=influenza").json()
    lines = console.get("/epidemic/coverage.csv?disease=influenza").text.splitlines()
    assert lines[0] == "code,name,population,source,vaccinated,coverage_pct,linked_supply_doses"
    assert len(lines) == len(figures["coverage"]) + 1


def test_an_organisation_outside_reporting_is_refused(console: TestClient) -> None:
    log_in(console, "gd-insurance/admin")
    assert console.get("/epidemic").status_code == 403
    assert console.get("/epidemic/figures.json").status_code == 403


def publish(node: EmbeddedNode) -> None:
    """What the epidemic.public-release worker does once a day on a CDC's node."""
    seam = epidemic_seam(node)
    publish_release(seam, EPI, PublicStatistics(ChainReleases(seam, EPI)))


def test_public_statistics_need_no_login_state_epsilon_and_stay_fixed(
    console: TestClient, outbreak: EmbeddedNode
) -> None:
    height = outbreak.peer.store.height()
    assert console.get("/epidemic/public.json").status_code == 404  # nothing recorded yet
    assert outbreak.peer.store.height() == height  # and the GET wrote nothing
    publish(outbreak)
    page = console.get("/epidemic/public")
    assert page.status_code == 200
    assert "ε = 0.5" in page.text and "below 10" in page.text
    first = console.get("/epidemic/public.json").json()
    assert console.get("/epidemic/public.json").json() == first  # one release a day
    assert first["epsilon"] == 0.5
    assert first["releases_on_chain"] == 1 and first["epsilon_spent"] == 0.5
    assert "ε = 0.5 in total over 1 release on chain" in page.text
    cases = chain_cases(outbreak)
    diseases = {c["disease"] for c in cases}
    # Every city crossed with every disease reported anywhere, zero counts included.
    cells = {(city, d) for city in ("440100", "440300") for d in diseases}
    assert {(r["region"], r["disease"]) for r in first["rows"]} == cells
    recorded = outbreak.peer.store.get_state("epidemic", f"release/{first['day']}")
    assert recorded is not None
    assert recorded.value["epsilon_milli"] == 500
    assert [r["count"] for r in recorded.value["rows"]] == [r["count"] for r in first["rows"]]
    for row in first["rows"]:
        assert row["count"] is None or row["count"] >= 10
    csv_text = console.get("/epidemic/public.csv").text
    assert csv_text.splitlines()[0] == "date,region,name,disease,count,epsilon"
    assert len(csv_text.splitlines()) == len(first["rows"]) + 1
    for case in cases:
        assert case["case_id"] not in page.text + csv_text


def test_the_console_shows_no_release_until_one_is_on_chain_and_never_records_one(
    outbreak: EmbeddedNode,
) -> None:
    # Even the console of a node holding a CDC's key only reads: the worker records.
    with TestClient(create_console(outbreak), follow_redirects=False) as reader:
        page = reader.get("/epidemic/public")
        assert page.status_code == 200 and 'id="no-release"' in page.text
        for path in ("/epidemic/public.json", "/epidemic/public.csv"):
            answer = reader.get(path)
            assert answer.status_code == 404
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["type"] == "/api/v1/problems/no-release"
        assert outbreak.peer.store.get_state("epidemic", f"release/{today(outbreak)}") is None
        # A CDC's worker records the day's release: the console serves exactly that one.
        publish(outbreak)
        recorded = outbreak.peer.store.get_state("epidemic", f"release/{today(outbreak)}")
        assert recorded is not None
        served = reader.get("/epidemic/public.json").json()
        assert [r["count"] for r in served["rows"]] == [r["count"] for r in recorded.value["rows"]]
        assert served["day"] == today(outbreak)
        assert 'id="no-release"' not in reader.get("/epidemic/public").text


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
