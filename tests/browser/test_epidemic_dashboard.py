"""The epidemic dashboard in headless Chromium: figures drawn from the chain (curve,
Rt, map, test positivity, vaccination coverage), a new report and a new early-warning
alert shown live (server-sent events) without reloading the page, PNG export, and
the public statistics with the privacy budget spent."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from healthledger.appkit.charts import ChartScript
from healthledger.apps.epidemic.disclosure import PublicStatistics
from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.readmodel import CaseReadModel
from healthledger.apps.epidemic.regions import RegionTable
from healthledger.apps.epidemic.releases import ChainReleases
from healthledger.apps.epidemic.simulate import SeirParams, define_simulated_population, run
from healthledger.apps.epidemic.warning import LiveWarning, record_alerts
from healthledger.apps.epidemic.workers import publish_release
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.conftest import CONTRACTS, TEST_REGIONS
from tests.apps.epidemic.support import case_args, person, report, today
from tests.browser.conftest import log_in
from tests.support.screens import shoot
from tests.support.seam import epidemic_seam

pytestmark = pytest.mark.browser
EPI = "gd-cdc/epi-wang"
SCREENSHOT = Path("/tmp/healthledger-epidemic-dashboard.png")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node after a small simulated outbreak over the test regions, alerts and the
    day's public release recorded."""
    path = tmp_path_factory.mktemp("epidemic-console") / "node"
    started = EmbeddedNode.create(
        path, contracts=CONTRACTS, batch_timeout_s=0.005, plans=DEMO_ORGS
    ).start()
    configure(epidemic_seam(started), RegionTable.from_source(TEST_REGIONS))
    params = SeirParams(population=600, days=30, reported_share=0.5, seeds=4)
    define_simulated_population(epidemic_seam(started), params)
    run(epidemic_seam(started), random.Random(21), params)
    model = CaseReadModel(epidemic_seam(started))
    record_alerts(epidemic_seam(started), model, EPI, today=today(started))
    model.close()
    seam = epidemic_seam(started)  # the public-release worker's day's work
    publish_release(seam, EPI, PublicStatistics(ChainReleases(seam, EPI)))
    yield started
    started.stop()


def test_dashboard_draws_the_chain_and_updates_live(page: Page, node: EmbeddedNode) -> None:
    log_in(page, EPI)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Epidemic").click()
    expect(page.get_by_role("heading", name="Epidemic monitoring")).to_be_visible()
    figures = page.request.get("/epidemic/figures.json?disease=influenza").json()
    total = figures["total"]
    expect(page.locator("#total")).to_have_text(str(total))
    # Vega-Lite draws each chart as SVG, from the bundle this server serves.
    expect(page.locator("#curve svg g.mark-rect path")).to_have_count(len(figures["curve"]))
    assert set(axis_titles(page, "curve")) == {
        "Onset date",
        "Cases per day (bars)",
        "Cumulative cases (line)",
    }
    assert set(axis_titles(page, "positivity")) == {
        "Specimen date",
        "Lab tests per day (bars)",
        "Share positive, 7 days (%, line)",
    }
    assert "End of the 7-day window" in axis_titles(page, "rt")
    expect(page.locator("#map svg g.mark-shape path").first).to_be_visible()
    assert page.locator("#map svg g.mark-shape path").count() >= len(figures["map"])
    expect(page.locator("#map svg")).to_contain_text("Cases")  # the legend
    expect(page.locator("#rt-explained")).to_contain_text("nowcast-corrected")
    expect(page.locator("#alert-count")).to_have_text(str(len(figures["alerts"])))
    expect(page.locator("#coverage tbody tr")).to_have_count(len(figures["coverage"]))
    first = figures["coverage"][0]
    expect(page.locator(f'#coverage tr[data-region="{first["code"]}"] td.vaccinated')).to_have_text(
        str(first["vaccinated"])
    )
    expect(page.locator("#population-source")).to_contain_text("simulated SEIR population")
    with page.expect_download() as download:
        page.get_by_role("link", name="test positivity").click()
    assert download.value.suggested_filename.startswith("epidemic-positivity-influenza-")
    assert Path(download.value.path()).read_bytes().startswith(b"\x89PNG")
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    shoot(page, "dashboard")
    # A hospital reports a new case: the page shows it without a reload.
    page.evaluate("window.notReloaded = true")
    report(node, "gz-first-hospital/dr-li", person(777))
    expect(page.locator("#total")).to_have_text(str(total + 1))
    assert page.evaluate("window.notReloaded") is True


def test_an_early_warning_alert_appears_live_as_reports_commit(
    page: Page, node: EmbeddedNode
) -> None:
    now = today(node)
    old = case_args(node, disease="B05", region="440304", onset_date=now - 12)
    node.invoke(
        "sz-peoples-hospital/dr-zhang",
        "epidemic",
        "report_case",
        {**old, "diagnosis_date": now - 11},
        transient={"patient": person(880)},
    )
    log_in(page, EPI)
    page.goto("/epidemic?disease=measles")
    expect(page.locator("#shown-disease")).to_have_text("measles")
    expect(page.locator("#alert-count")).to_have_text("0")
    page.evaluate("window.notReloaded = true")
    warning = LiveWarning(epidemic_seam(node), EPI)
    warning.start()
    try:
        reports = [
            case_args(node, disease="B05", region="440304", onset_date=now, diagnosis_date=now)
            for _ in range(8)
        ]
        node.invoke(
            "sz-peoples-hospital/dr-zhang",
            "epidemic",
            "report_cases",
            {"reports": reports},
            transient={"patients": [person(881 + i) for i in range(8)]},
        )
        expect(page.locator("#alert-count")).to_have_text("1", timeout=20_000)
        expect(page.locator("#alerts")).to_contain_text("440300")
    finally:
        warning.stop()
    assert page.evaluate("window.notReloaded") is True


@pytest.fixture(scope="module", autouse=True)
def chart_script(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The charting JavaScript bundled before the first page asks for it (bundling
    takes seconds on a busy machine; the server then reads it from the cache)."""
    assert "vegaEmbed" in ChartScript(tmp_path_factory.mktemp("bundle")).text()


def axis_titles(page: Page, figure: str) -> list[str]:
    """The axis titles of a drawn chart, once it is drawn."""
    titles = page.locator(f"#{figure} svg g.role-axis-title text")
    expect(titles.first).to_be_visible(timeout=30_000)
    return titles.all_text_contents()


def test_filters_say_what_they_show_and_an_unknown_one_is_refused(page: Page) -> None:
    log_in(page, EPI)
    page.goto("/epidemic?disease=influenza&region=440100")
    expect(page.locator("#subtitle")).to_contain_text("Influenza — Guangzhou (440100)")
    expect(page.locator("#subtitle")).not_to_contain_text("Guangdong")
    assert "Onset date" in axis_titles(page, "curve")
    expect(page.locator("#curve svg")).to_contain_text("Guangzhou (440100)")  # its subtitle
    expect(page.locator("#map svg g.mark-shape path").first).to_be_visible()
    shoot(page, "dashboard-guangzhou")
    response = page.goto("/epidemic?disease=cholre")
    assert response is not None and response.status == 422
    expect(page.locator("#filter-refused")).to_contain_text("unknown disease 'cholre'")
    expect(page.locator("#figures")).to_have_count(0)  # nothing shown in its place
    shoot(page, "dashboard-refused")


def test_an_organisation_outside_reporting_sees_no_figures(page: Page) -> None:
    log_in(page, "gd-insurance/admin")
    page.goto("/epidemic")
    expect(page.locator("#refused")).to_be_visible()
    expect(page.locator("#figures")).to_have_count(0)


def test_public_statistics_page_needs_no_login(page: Page) -> None:
    page.goto("/epidemic/public")
    assert page.url.endswith("/epidemic/public")
    expect(page.get_by_role("heading", name="Public epidemic statistics")).to_be_visible()
    expect(page.locator("#epsilon")).to_have_text("ε = 0.5")
    expect(page.locator("#epsilon-spent")).to_contain_text("ε = 0.5 in total over 1 release")
    expect(page.locator("#public-counts")).to_be_visible()
    assert "Cases (with noise)" in axis_titles(page, "release-chart")
    shoot(page, "public-statistics")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename.startswith("epidemic-public-")
