"""The health code in headless Chromium, logged out: the public count of colour changes
by rule clause, district and day with the appeals, and a holder's phone page showing the
colour, why, and a signed QR that is renewed before it expires and verifies offline."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from healthledger.appkit.readable import day, local_day, when
from healthledger.apps.credentials import healthcode_service as service
from healthledger.apps.credentials.healthcode_qr import verify_code
from healthledger.apps.credentials.healthcode_simulate import simulate
from healthledger.apps.registry import installed_contracts
from healthledger.node.embedded import EmbeddedNode
from tests.apps.credentials.healthcode_support import confirmed_case, lab, pid_of, seam, start
from tests.browser.conftest import log_in
from tests.support.screens import phone_overflow, shoot

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    folder = tmp_path_factory.mktemp("healthcode-console") / "data"
    for made in start(folder, rules=False, contracts=installed_contracts()):
        for serial in range(71, 81):
            pid_of(made, serial)
        for serial in (71, 72):
            confirmed_case(made, serial, days_ago=serial - 69)
        lab(made, 73, "positive", days_ago=1)
        simulate(seam(made), random.Random(3))
        yield made


def test_the_public_page_counts_changes_by_clause_district_and_day(
    page: Page, node: EmbeddedNode
) -> None:
    page.goto("/credentials/healthcode")
    expect(page.get_by_role("heading", name="Health-code colour changes")).to_be_visible()
    expect(page.locator("#hc-guarantee")).to_contain_text(
        "A colour change without a rule clause cannot be recorded"
    )
    red = page.locator("#hc-changes tr[data-clause='confirmed-case']")
    expect(red.first).to_contain_text("Yuexiu (440104)")
    expect(red.first).to_contain_text("A confirmed case diagnosed in the last 14 days")
    expect(page.locator("#hc-appeals tr[data-status='overturned']")).to_have_count(1)
    expect(page.locator("#hc-appeals tr[data-status='upheld']")).to_contain_text(
        "The rules were applied correctly"
    )
    expect(page.locator("#hc-current")).to_contain_text("version 2026.2")
    expect(page.locator("#hc-chart .track span").first).to_be_visible()
    totals = page.request.get("/api/v1/credentials/healthcode/changes").json()["totals"]
    expect(page.locator("#hc-total")).to_contain_text(f"{totals['changes']} (1 by appeal)")
    # Days are the local days the page shows times in: each change counts on the China
    # Standard Time day of the block that recorded it, not on its UTC day.
    expect(page.locator("#hc-shown")).to_contain_text("days are calendar days in CST (UTC+08:00)")
    blocks = [
        e.data["timestamp"]
        for e in seam(node).events(limit=100_000)
        if e.kind == "contract" and e.data["name"] == "colour_changed"
        and (e.data["payload"]["colour"] != e.data["payload"]["previous"]
             or e.data["payload"]["appeal"])
    ]  # fmt: skip
    local_days = sorted({day(str(local_day(at))) for at in blocks})
    labels = page.locator("#hc-chart .hc-bar > span:first-child").all_inner_texts()
    assert sorted(set(labels)) == local_days
    shoot(page, "healthcode-public")


def test_the_public_page_summarises_first_and_filters_by_day_district_and_clause(
    page: Page,
) -> None:
    page.goto("/credentials/healthcode")
    expect(page.locator("#hc-clauses tr[data-clause='confirmed-case']")).to_contain_text(
        "A confirmed case diagnosed in the last 14 days"
    )
    expect(page.locator("#hc-districts tr[data-region='440104']")).to_contain_text("Yuexiu")
    overturned = page.locator("#hc-standouts li[data-kind='overturned']")
    expect(overturned).to_have_count(1)
    expect(overturned).to_contain_text("Appeal overturned")
    expect(page.locator("#hc-appeals tr.hc-flagged")).to_have_count(1)
    assert phone_overflow(page) == 0

    page.get_by_label("Rule clause").select_option("confirmed-case")
    page.get_by_label("District").select_option("440104")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"region=440104.*clause=confirmed-case"))
    expect(page.locator("#hc-shown")).to_contain_text("in Yuexiu")
    expect(page.locator("#hc-changes tbody tr").first).to_be_visible()
    others = "#hc-changes tbody tr:not([data-clause='confirmed-case']), "
    others += "#hc-changes tbody tr:not([data-region='440104'])"
    expect(page.locator(others)).to_have_count(0)
    shown = sum(int(n) for n in page.locator("#hc-changes td.num").all_inner_texts())
    expect(page.locator("#hc-shown")).to_contain_text(f"Shown: {shown} change")
    csv_link = page.get_by_role("link", name="CSV of the changes shown")
    lines = page.request.get(csv_link.get_attribute("href") or "").text().splitlines()
    assert lines[0].startswith("day,region,")
    assert all(",440104," in line and ",confirmed-case," in line for line in lines[1:])
    assert sum(int(line.rsplit(",", 1)[1]) for line in lines[1:]) == shown
    shoot(page, "healthcode-filtered")

    answer = page.goto("/credentials/healthcode?from=yesterday&to=2026-01-01&region=999999")
    assert answer is not None and answer.status == 400
    errors = page.locator("#hc-filter-errors")
    expect(errors).to_contain_text("“From” must be a date such as 2026-12-07, not “yesterday”")
    expect(errors).to_contain_text("No colour change is recorded in a district with code")
    expect(page.get_by_label("District")).to_have_value("")
    expect(page.get_by_label("To", exact=True)).to_have_value("2026-01-01")
    expect(page.locator("#hc-changes")).to_have_count(0)
    expect(page.get_by_text("No colour change matches this filter.").first).to_be_visible()
    shoot(page, "healthcode-bad-filter")


def test_a_holder_sees_why_and_a_qr_renewed_before_it_expires(
    page: Page, node: EmbeddedNode
) -> None:
    page.clock.install()
    page.set_viewport_size({"width": 390, "height": 844})
    answer = page.goto("/credentials/healthcode/holder/Zhang%20San")
    assert answer is not None and answer.status == 404
    expect(page.locator("#hc-missing")).to_contain_text(
        "No health code is recorded for the person id “Zhang San”"
    )
    page.goto("/credentials/healthcode/holder")
    expect(page.locator("#hc-missing")).to_have_count(0)
    page.locator("#hc-people li.hc-red a").first.click()
    expect(page.locator("#hc-colour")).to_have_text("RED")
    expect(page.locator("#hc-why")).to_contain_text(
        "A confirmed case diagnosed in the last 14 days"
    )
    expect(page.locator("#hc-why")).to_contain_text("rules version 2026.2")
    expect(page.locator("#hc-facts")).to_contain_text("Confirmed case, diagnosed")
    expect(page.locator("#hc-qr svg")).to_be_visible()
    pid = page.locator("#hc-holder").get_attribute("data-pid")
    # Since when: the local date and time of the change (its transaction's timestamp),
    # not the contract's UTC day number, here and for each earlier colour.
    shown = service.holder_view(seam(node), pid or "")
    assert shown is not None
    expect(page.locator("#hc-since")).to_have_text(f"since {when(shown['at'])}")
    expect(page.locator("#hc-since")).to_contain_text("CST (UTC+08:00)")
    earlier = page.locator("#hc-history li")
    expect(earlier).to_have_count(len(shown["history"]))
    for item, colour in zip(earlier.all(), shown["history"], strict=True):
        expect(item).to_contain_text(f"{colour['colour']} from {when(colour['at'])}:")
    first = page.locator("#hc-qr").inner_html()
    shoot(page, "healthcode-holder")
    page.clock.run_for(52_000)  # ten seconds before expiry the page fetches a new code
    expect(page.locator("#hc-qr")).not_to_have_class("hc-qr expired")
    page.wait_for_function(
        "first => document.getElementById('hc-qr').innerHTML !== first", arg=first
    )
    keys = page.request.get("/api/v1/credentials/healthcode/jwks.json").json()
    code = page.request.get(f"/api/v1/credentials/healthcode/holders/{pid}/qr").json()
    verdict = verify_code(code["text"], keys, now_s=code["issued_at"] // 1000 + 5)
    assert (verdict.verdict, verdict.colour) == ("VALID", "red")
    stale = verify_code(code["text"], keys, now_s=code["issued_at"] // 1000 + 600)
    assert stale.verdict == "EXPIRED"


def test_a_hospital_files_an_appeal_and_the_cdc_overturns_it(
    page: Page, node: EmbeddedNode
) -> None:
    yellow = next(h for h in service.holders(seam(node)) if h["colour"] == "yellow")
    log_in(page, "gz-first-hospital/dr-li")
    page.goto("/credentials/healthcode/appeals")
    page.get_by_label("Patient's pseudonymous id").fill(yellow["pid"])
    page.get_by_label("Grounds").select_option("no-exposure")
    page.get_by_role("button", name="File the appeal").click()
    expect(page.get_by_test_id("receipt")).to_contain_text("Appeal filed")
    # Who filed it: their organisation's name and their role (the contract records the
    # filer's identity), not gz-first-hospital/dr-li.
    filed_by = page.locator("#hc-waiting tr", has_text=yellow["pid"][:11]).locator(
        "td[data-label='By']"
    )
    expect(filed_by).to_have_text("Guangzhou First People's Hospital · doctor")
    expect(filed_by).to_have_attribute("data-by", "gz-first-hospital/dr-li")
    shoot(page, "healthcode-appeal-filed")
    page.get_by_label("Patient's pseudonymous id").fill("Zhang San")  # a name: refused
    page.get_by_role("button", name="File the appeal").click()
    expect(page.locator(".field-error")).to_contain_text("pseudonymous person id")
    page.get_by_role("button", name="Log out").click()
    log_in(page, "gd-cdc/epi-wang")
    page.goto("/credentials/healthcode/appeals")
    row = page.locator("#hc-waiting tr", has_text=yellow["pid"][:11])
    row.get_by_label("Reason").select_option("fact-wrong-person")
    row.get_by_role("button", name="Overturn").click()
    expect(page.get_by_test_id("receipt")).to_contain_text("Appeal overturned")
    expect(page.locator("#hc-decided tbody tr").first).to_contain_text("now green")
    decided = page.locator("#hc-decided tbody tr").first
    # The rule clause by its title (which clause made this holder yellow depends on the
    # simulated days: a close-contact notice or an unconfirmed positive test).
    expect(decided).to_contain_text(re.compile(r"yellow: A [a-z -]+ in the last \d+ days"))
    expect(decided).to_contain_text(re.compile(r"\(\w+ \(\d{6}\)\)"))  # a name, not a code alone
    expect(decided).not_to_contain_text("(close-contact)")
    # Who decided it: their organisation's name and their role, not gd-cdc/epi-wang.
    expect(decided.locator("td[data-label='By']")).to_have_text(
        "Guangdong Provincial CDC · epidemiologist"
    )
    expect(decided).not_to_contain_text("gd-cdc")
    assert phone_overflow(page) == 0
    shoot(page, "healthcode-appeals")
    page.goto(f"/credentials/healthcode/holder/{yellow['pid']}")
    expect(page.locator("#hc-colour")).to_have_text("GREEN")
    expect(page.locator("#hc-why")).to_contain_text("after your appeal was decided")
    shown = service.holder_view(seam(node), yellow["pid"])
    assert shown is not None and shown["history"][0]["colour"] == "yellow"
    expect(page.locator("#hc-since")).to_have_text(f"since {when(shown['at'])}")
    expect(page.locator("#hc-history li").first).to_contain_text(
        f"yellow from {when(shown['history'][0]['at'])}:"
    )
    shoot(page, "healthcode-holder-after-appeal")
