"""The CDC's vaccination-coverage page in Chromium: from the epidemiologist's home panel
to the coverage of the demo's COVID-19 series by district, then filtered to an earlier
day; screenshots at desktop and phone widths, and the page fits a phone."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from healthledger.apps.epidemic.batch import commit_all
from healthledger.apps.epidemic.observations import VACCINATING_ROLES
from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.regions import RegionTable
from healthledger.apps.epidemic.simulate import SeirParams, covid_series_calls, staff_of
from healthledger.apps.registry import installed_contracts
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.conftest import TEST_REGIONS
from tests.apps.epidemic.support import today
from tests.browser.conftest import log_in
from tests.support.screens import phone_overflow, shoot, wide_elements
from tests.support.seam import epidemic_seam

EPI = "gd-cdc/epi-wang"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node with the demo's COVID-19 series given in Guangzhou's two test districts
    and their populations recorded."""
    path = tmp_path_factory.mktemp("coverage-console") / "node"
    started = EmbeddedNode.create(
        path, contracts=installed_contracts(), batch_timeout_s=0.005, plans=DEMO_ORGS
    ).start()
    epidemic = epidemic_seam(started)
    configure(epidemic, RegionTable.from_source(TEST_REGIONS))
    orgs = {"org/gz-first-hospital": {"region": "440100"}}
    staff = staff_of(epidemic, ["gz-first-hospital"], VACCINATING_ROLES)
    params = SeirParams(covid_first_doses=40)
    calls = covid_series_calls(["440104", "440106"], staff, orgs, random.Random(3), params, [],
                               today=today(started))  # fmt: skip
    assert all(commit_all(epidemic, calls))
    populations = [
        {"region": "440104", "population": 1200},
        {"region": "440106", "population": 900},
    ]
    args = {"populations": populations, "source": "test denominators", "year": 2026}
    started.invoke("gd-commission/admin", "epidemic", "define_population", args)
    yield started
    started.stop()


def test_the_cdc_finds_overdue_second_doses_by_district(page: Page) -> None:
    log_in(page, EPI)
    page.goto("/")
    page.get_by_role("link", name="Coverage gaps by region").click()
    table = page.locator("#coverage-table")
    expect(table).to_contain_text("Guangzhou (440100)")
    page.get_by_label("Region").select_option("440100")
    page.get_by_role("button", name="Show").click()
    yuexiu = page.locator("tr[data-region='440104']")
    expect(yuexiu).to_contain_text("Yuexiu (440104)")
    expect(yuexiu).to_contain_text("1,200")
    overdue = int(yuexiu.get_by_test_id("overdue").inner_text().split()[0])
    tianhe = int(page.locator("tr[data-region='440106']").get_by_test_id("overdue").inner_text()
                 .split()[0])  # fmt: skip
    assert overdue + tianhe > 0
    expect(page.locator("#coverage-summary")).to_contain_text("COVID-19")
    shoot(page, "coverage")
    assert phone_overflow(page) == 0, f"wider than a phone: {wide_elements(page)}"

    page.get_by_label("As of").fill("2000-01-01")  # before every dose: nobody counted
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#coverage-summary")).to_contain_text("0 people started")
    page.get_by_label("As of").fill("2999-01-01")
    page.get_by_label("As of").evaluate("e => e.removeAttribute('max')")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".field-error")).to_contain_text("from 2000-01-01 to")
    page.goto("/credentials/coverage?vaccine=polio&region=Tianhe")
    errors = page.locator(".field-error")
    expect(errors.first).to_contain_text("no vaccine “polio” has a schedule; one of COVID-19")
    expect(errors.nth(1)).to_contain_text("“Tianhe” is not a six-digit region code")
