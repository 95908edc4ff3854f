"""The dashboard's figures as a service and as JSON under /api/v1/epidemic: test
positivity only over a stated minimum of tests, an unknown filter refused (never
replaced by influenza), a region filter said in the subtitle, the API answering with
exactly what the service computes, and the same charts exported as PNG."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.apps.epidemic import charts, geo
from healthledger.apps.epidemic.dashboard import Dashboard, Scope, scope_of
from healthledger.apps.epidemic.disclosure import PublicStatistics
from healthledger.apps.epidemic.filters import UnknownFilter
from healthledger.apps.epidemic.positivity import POSITIVITY_MIN_TESTS, positivity
from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.regions import RegionTable
from healthledger.apps.epidemic.releases import ChainReleases
from healthledger.apps.epidemic.simulate import SeirParams, define_simulated_population, run
from healthledger.apps.epidemic.workers import publish_release, shared_dashboard
from healthledger.apps.registry import INSTALLED_APPS
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.conftest import TEST_REGIONS
from tests.support.founding import found
from tests.support.members import member_reads
from tests.support.seam import epidemic_seam

EPI = "gd-cdc/epi-wang"
HOSPITAL = "sz-peoples-hospital/lab-wu"
OUTSIDER = "gd-insurance/admin"


def test_positivity_is_shown_only_over_enough_tests_on_days_with_tests() -> None:
    # Day 10: 2 tests, both positive; day 11: none; days 12-13: 15 tests each.
    rows = [
        ("influenza", "440104", 10, 2, 2),
        ("influenza", "440104", 12, 15, 3),
        ("influenza", "440104", 13, 15, 6),
    ]
    days = {d["day"]: d for d in positivity(rows, 10, 14)}
    assert days[10]["pct"] is None  # 2 tests: no 100 % from a handful
    assert days[11]["pct"] is None and days[11]["tests"] == 0  # no tests: no value
    assert days[12]["window_tests"] == 17 < POSITIVITY_MIN_TESTS and days[12]["pct"] is None
    assert days[13]["window_tests"] == 32 and days[13]["pct"] == round(100 * 11 / 32, 1)
    assert days[14]["pct"] is None  # today has no tests of its own yet
    assert [d["segment"] for d in days.values()] == [None, None, None, 1, None]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node after a small simulated outbreak over the test regions, with the day's
    public release recorded."""
    path = tmp_path_factory.mktemp("figures") / "node"
    contracts = [c for app in INSTALLED_APPS for c in app.contracts]
    started = found(path, contracts=(*SYSTEM_CONTRACTS, *contracts), batch_timeout_s=0.005).start()
    seam = epidemic_seam(started)
    configure(seam, RegionTable.from_source(TEST_REGIONS))
    params = SeirParams(population=600, days=30, reported_share=0.5, seeds=4)
    define_simulated_population(seam, params)
    run(seam, random.Random(5), params)
    publish_release(seam, EPI, PublicStatistics(ChainReleases(seam, EPI)))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def api(node: EmbeddedNode) -> Iterator[TestClient]:
    """The API over the node, demo custody."""
    with TestClient(create_api(node, demo_custody=True)) as client:
        client.auth = member_reads(node)
        yield client


def test_an_unknown_filter_is_refused_and_a_region_is_said(node: EmbeddedNode) -> None:
    seam = epidemic_seam(node)
    dashboard = Dashboard(seam)
    scope = scope_of(seam, EPI)
    assert scope is not None
    with pytest.raises(UnknownFilter) as refused:
        dashboard.figures(scope, disease="cholre")
    assert refused.value.field == "disease" and "cholre" in str(refused.value)
    with pytest.raises(UnknownFilter, match="unknown region"):
        dashboard.figures(scope, region="450100")
    whole = dashboard.figures(scope)
    assert whole["subtitle"] == "Influenza — region Guangdong (440000)"
    shenzhen = dashboard.figures(scope, region="440300")
    assert shenzhen["subtitle"] == "Influenza — Shenzhen (440300)"
    assert "Guangdong" not in shenzhen["subtitle"]
    assert {row["code"] for row in shenzhen["map"]} == {"440304"}
    cholera = dashboard.figures(scope, disease="cholera")  # notifiable, none reported
    assert cholera["disease"] == "cholera" and cholera["total"] == 0
    assert cholera["subtitle"].startswith("Cholera — ")
    city = Scope(label="region Guangzhou (440100)", region_prefix="4401")  # a city's CDC
    with pytest.raises(UnknownFilter, match="outside your scope"):
        dashboard.figures(city, region="440300")


def test_each_figure_route_answers_what_the_page_service_computes(
    node: EmbeddedNode, api: TestClient
) -> None:
    scope = scope_of(epidemic_seam(node), EPI)
    assert scope is not None
    service = shared_dashboard(epidemic_seam(node))  # the one object the pages call
    expected = service.figures(scope, disease="influenza", region="440100")
    query = {"identity": EPI, "disease": "influenza", "region": "440100"}
    whole = api.get("/api/v1/epidemic/figures", params=query)
    assert whole.status_code == 200, whole.text
    assert whole.json() == expected
    parts = {
        "curve": ("curve", "total"),
        "rt": ("rt", "nowcast", "rt_method", "rt_explained"),
        "positivity": ("positivity", "positivity_rule"),
        "map": ("map", "places"),
        "alerts": ("alerts",),
    }
    for name, fields in parts.items():
        answer = api.get(f"/api/v1/epidemic/figures/{name}", params=query)
        assert answer.status_code == 200, (name, answer.text)
        body = answer.json()
        assert body["subtitle"] == expected["subtitle"]
        for field in fields:
            assert body[field] == expected[field], (name, field)


def test_the_api_refuses_unknown_filters_and_viewers_with_problems(api: TestClient) -> None:
    cholre = api.get("/api/v1/epidemic/figures/curve", params={"identity": EPI, "disease": "x"})
    assert cholre.status_code == 422
    assert cholre.headers["content-type"] == "application/problem+json"
    assert cholre.json()["errors"][0]["field"] == "query.disease"
    outside = api.get("/api/v1/epidemic/figures", params={"identity": EPI, "region": "450100"})
    assert outside.status_code == 422 and "unknown region" in outside.json()["detail"]
    assert api.get("/api/v1/epidemic/figures", params={"identity": OUTSIDER}).status_code == 403
    stranger = api.get("/api/v1/epidemic/figures/rt", params={"identity": "nobody/here"})
    assert stranger.status_code == 403
    hospital = api.get("/api/v1/epidemic/figures/curve", params={"identity": HOSPITAL})
    assert hospital.status_code == 200 and "sz-peoples-hospital" in hospital.json()["scope"]


def test_the_public_release_route_serves_the_public_page_figures(api: TestClient) -> None:
    answer = api.get("/api/v1/epidemic/public/release")
    assert answer.status_code == 200
    body = answer.json()
    assert body["rows"] and body["epsilon_spent"] >= body["epsilon"] > 0
    assert {"region", "name", "disease", "count"} == set(body["rows"][0])


def test_the_choropleth_has_real_boundaries_for_every_district_in_view(
    node: EmbeddedNode,
) -> None:
    scope = scope_of(epidemic_seam(node), EPI)
    assert scope is not None
    figures = shared_dashboard(epidemic_seam(node)).figures(scope)
    cities = geo.cities_of(row["code"] for row in figures["map"])
    drawn = {f["properties"]["code"] for f in geo.districts(cities)}
    assert {row["code"] for row in figures["map"]} <= drawn
    assert len(geo.outlines(cities)) == 2 and geo.outlines(("4401",)) == []
    spec = charts.choropleth(figures, {"values": geo.districts(cities)}, width=600)
    assert spec["layer"][0]["encoding"]["color"]["title"] == "Cases"
    source = Path(geo.__file__).parent / "data" / "SOURCE.md"
    assert "MIT" in source.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("top", "steps"),
    [
        (0, [0, 1]),
        (1, [0, 1]),
        (5, [0, 1, 2, 3, 4, 5]),
        (7, [0, 2, 4, 6]),
        (1003, [0, 200, 400, 600, 800, 1000]),
    ],
)
def test_the_map_legend_steps_are_distinct_whole_numbers(top: int, steps: list[int]) -> None:
    figures = {"subtitle": "", "map": [{"code": "440104", "name": "A", "count": top}]}
    spec = charts.choropleth(figures, {"values": []})
    assert spec["layer"][0]["encoding"]["color"]["legend"]["values"] == steps
