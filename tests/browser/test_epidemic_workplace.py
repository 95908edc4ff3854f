"""The epidemic roles at work in headless Chromium, each from their home: a doctor
reports a case (form and FHIR Bundle), the CDC confirms it, the dashboard and the
public statistics show it; a lab posts a result and a nurse records a dose; the CDC
asks for information, the doctor corrects the report, the CDC rejects another; the
CDC grants another region's detail and revokes it; the commission sees the province
at a glance. Every page is written as screenshots at 1280 and 390 px."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from healthledger.apps.epidemic.dates import iso
from healthledger.apps.epidemic.disclosure import PublicStatistics
from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.regions import GUANGDONG, province_table
from healthledger.apps.epidemic.releases import ChainReleases
from healthledger.apps.epidemic.review_pages import QUEUE_SHOWN
from healthledger.apps.epidemic.workers import publish_release
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.conftest import CONTRACTS
from tests.apps.epidemic.support import case_args, iso_today, person, report, today
from tests.browser.conftest import log_in
from tests.support.screens import phone_overflow, shoot, wide_elements
from tests.support.seam import epidemic_seam

pytestmark = pytest.mark.browser
DOCTOR = "gz-first-hospital/dr-li"
LAB = "gz-first-hospital/lab-huang"
NURSE = "gz-first-hospital/nurse-lin"
EPI = "gd-cdc/epi-wang"
OFFICER = "gd-commission/officer-chen"
PATIENT_URL = "urn:uuid:6f1c2a3e-0000-4000-8000-000000000011"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node with the demo organisations and Guangdong's real region table (Chinese
    names), no case reported yet."""
    path = tmp_path_factory.mktemp("epidemic-workplace") / "node"
    started = EmbeddedNode.create(
        path, contracts=CONTRACTS, batch_timeout_s=0.005, plans=DEMO_ORGS
    ).start()
    configure(epidemic_seam(started), province_table(GUANGDONG))
    yield started
    started.stop()


def looked_at(page: Page, name: str) -> None:
    """Screenshots of the page, which must fit a phone's width."""
    shoot(page, name)
    assert phone_overflow(page) == 0, f"{name} is wider than a phone: {wide_elements(page)}"


def days_ago(node: EmbeddedNode, days: int) -> str:
    return iso(today(node) - days)


def fill_patient(page: Page, serial: int) -> None:
    someone = person(serial)
    page.get_by_label("Name", exact=True).fill(someone["name"])
    page.get_by_label("Document number").fill(someone["id_number"])


def report_by_form(page: Page, node: EmbeddedNode, serial: int, region: str) -> str:
    """Report an influenza case through the form; the new case's id (from the chain)."""
    page.goto("/epidemic/report")
    page.get_by_label("Diagnosis (ICD-10)").select_option("J10.1")
    page.get_by_label("Classification").select_option("confirmed")
    page.get_by_label("Date of onset").fill(days_ago(node, 3))
    page.get_by_label("Date of diagnosis").fill(days_ago(node, 1))
    page.get_by_label("Region of residence").select_option(region)
    fill_patient(page, serial)
    page.get_by_role("button", name="Report the case").click()
    expect(page.get_by_test_id("receipt")).to_contain_text("Case reported")
    return page.get_by_test_id("case-id").inner_text()


def test_doctor_reports_cdc_confirms_and_the_figures_show_it(
    page: Page, node: EmbeddedNode
) -> None:
    log_in(page, DOCTOR)
    expect(page.get_by_role("heading", name="Today", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Case reports")).to_be_visible()
    looked_at(page, "doctor-home")
    page.get_by_role("link", name="Report a case").click()
    expect(page.get_by_role("heading", name="Report a notifiable case")).to_be_visible()
    region = page.get_by_label("Region of residence")
    expect(region.locator('option[value="440104"]')).to_have_text("越秀区 Yuexiu District (440104)")
    looked_at(page, "report-form")
    case_id = report_by_form(page, node, 1, "440104")
    receipt = page.get_by_test_id("receipt")
    height = int(receipt.get_by_test_id("receipt-height").inner_text())
    assert node.peer.store.height() >= height
    expect(receipt).to_contain_text("CST (UTC+08:00)")
    looked_at(page, "report-receipt")
    page.get_by_role("link", name="Your hospital's reports and their review →").click()
    row = page.locator(f'#my-reports tr[data-case="{case_id}"]')
    expect(row.locator("[data-status]")).to_have_text("awaiting review")
    expect(row).to_contain_text("越秀区 Yuexiu District (440104)")
    expect(row).to_contain_text("Influenza with other respiratory manifestations")
    looked_at(page, "my-reports")

    page.context.clear_cookies()
    log_in(page, EPI)
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    looked_at(page, "cdc-home")
    page.get_by_role("link", name="Review reports").click()
    looked_at(page, "review-queue")
    page.get_by_role("button", name=f"Confirm case {case_id}").click()
    expect(page.get_by_test_id("receipt")).to_contain_text("Review recorded")
    expect(page.locator(f'#reviewed tr[data-case="{case_id}"]')).to_contain_text("confirmed")
    looked_at(page, "review-confirmed")
    assert node.query(EPI, "epidemic", "get_case", {"case_id": case_id})["status"] == "confirmed"

    # The dashboard counts it; the public statistics, once the day's release is recorded
    # (the epidemic.public-release worker's work, run here once), carry its cell.
    figures = page.request.get("/epidemic/figures.json?disease=influenza").json()
    assert figures["total"] == 1
    page.goto("/epidemic?disease=influenza", timeout=60_000)  # the first draw bundles its charts
    looked_at(page, "dashboard")
    seam = epidemic_seam(node)
    publish_release(seam, EPI, PublicStatistics(ChainReleases(seam, EPI)))
    page.context.clear_cookies()
    page.goto("/")
    page.get_by_test_id("public-entries").get_by_role(
        "link", name="Public epidemic statistics"
    ).click()
    cell = page.locator('#public-counts tr[data-region="440100"]')
    expect(cell).to_contain_text("Influenza")
    looked_at(page, "public-statistics")

    page.context.clear_cookies()
    log_in(page, DOCTOR)
    page.goto("/epidemic/my-reports")
    mine = page.locator(f'#my-reports tr[data-case="{case_id}"] [data-status]')
    expect(mine).to_have_text("confirmed")


def fhir_bundle(node: EmbeddedNode, serial: int) -> dict[str, Any]:
    someone = person(serial)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": PATIENT_URL,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [
                        {
                            "type": {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                        "code": "NI",
                                    }
                                ]
                            },
                            "value": someone["id_number"],
                        }
                    ],
                    "name": [{"family": "Chen", "given": [f"Fhirname{serial}"]}],
                    "address": [{"district": "440106"}],
                },
            },
            {
                "fullUrl": "urn:uuid:6f1c2a3e-0000-4000-8000-000000000012",
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": PATIENT_URL},
                    "code": {
                        "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "U07.1"}]
                    },
                    "verificationStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                "code": "confirmed",
                            }
                        ]
                    },
                    "onsetDateTime": days_ago(node, 4),
                    "recordedDate": days_ago(node, 2),
                },
            },
            {
                "fullUrl": "urn:uuid:6f1c2a3e-0000-4000-8000-000000000013",
                "resource": {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                    },
                    "subject": {"reference": PATIENT_URL},
                },
            },
        ],
    }


def test_fhir_upload_review_requests_and_refusals(
    page: Page, node: EmbeddedNode, tmp_path: Path
) -> None:
    log_in(page, DOCTOR)
    page.goto("/epidemic/report")
    bundle = tmp_path / "report.json"
    bundle.write_text(json.dumps(fhir_bundle(node, 2)))
    page.get_by_label("FHIR Bundle (JSON file)").set_input_files(str(bundle))
    page.get_by_role("button", name="Upload and report").click()
    expect(page.get_by_test_id("receipt")).to_contain_text("Case reported")
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceType": "Bundle", "type": "collection", "entry": []}')
    page.get_by_label("FHIR Bundle (JSON file)").set_input_files(str(broken))
    page.get_by_role("button", name="Upload and report").click()
    expect(page.get_by_test_id("refusal")).to_contain_text("Not recorded")
    expect(page.get_by_test_id("refusal").locator("li").first).to_have_text(
        "Patient: needs exactly one Patient, found 0"
    )
    looked_at(page, "fhir-refused")
    # A refusal in the contract's words, beside the field it names.
    page.get_by_label("Date of onset").fill(days_ago(node, 1))
    page.get_by_label("Date of diagnosis").fill(days_ago(node, 3))
    page.get_by_label("Region of residence").select_option("440106")
    fill_patient(page, 3)
    page.get_by_role("button", name="Report the case").click()
    expect(page.get_by_test_id("refusal")).to_contain_text("is after the diagnosis date")
    expect(page.locator("#f-onset_date-error")).to_have_text("is after the diagnosis date")
    named = page.get_by_test_id("refusal").locator("li[data-field$='onset_date']")
    expect(named).to_have_text("Onset date: is after the diagnosis date")  # words, not a key
    expect(page.get_by_test_id("refusal")).not_to_contain_text("report_case")
    looked_at(page, "report-refused")
    second = report_by_form(page, node, 4, "440106")

    cases = node.query(DOCTOR, "epidemic", "list_cases", {"disease": "covid-19"})
    covid = cases[0]["case_id"]
    page.context.clear_cookies()
    log_in(page, EPI)
    page.goto("/epidemic/review")
    row = page.locator(f'#review-queue tr[data-case="{covid}"]')
    row.get_by_text("Ask the hospital").click()
    row.get_by_label("Date of onset").check()
    row.get_by_role("button", name=f"Ask about case {covid}").click()
    expect(page.get_by_test_id("receipt")).to_be_visible()
    asked = page.locator(f'#asked tr[data-case="{covid}"]')  # now waiting for the hospital
    expect(asked).to_contain_text("asked about: Date of onset")
    expect(page.locator(f'#review-queue tr[data-case="{covid}"]')).to_have_count(0)
    second_row = page.locator(f'#review-queue tr[data-case="{second}"]')
    second_row.get_by_text("Reject").first.click()
    second_row.get_by_label("Reason").select_option("duplicate")
    second_row.get_by_role("button", name=f"Reject case {second}").click()
    expect(page.locator(f'#reviewed tr[data-case="{second}"]')).to_contain_text("A duplicate")
    # Confirming a rejected case is refused by the contract, in its words.
    response = page.request.post(
        f"/epidemic/review/{second}",
        form={
            "csrf": page.locator('input[name="csrf"]').first.input_value(),
            "decision": "confirm",
        },
    )
    assert response.status == 409 and "cannot become confirmed" in response.text()

    page.context.clear_cookies()
    log_in(page, DOCTOR)
    page.goto("/epidemic/my-reports")
    asked = page.locator(f'#my-reports tr[data-case="{covid}"]')
    expect(page.locator("#my-reports-shown")).to_contain_text("The CDC asks about 1 report")
    expect(asked.locator("[data-status]").first).to_have_text("information requested")
    expect(asked).to_contain_text("asked about: Date of onset")
    asked.get_by_text("Correct and send back").click()
    asked.get_by_label("Date of onset").fill(days_ago(node, 5))
    looked_at(page, "amend")
    asked.get_by_role("button", name="Send back to review").click()
    expect(page.get_by_test_id("receipt")).to_contain_text("back in the CDC's review queue")
    after = node.query(DOCTOR, "epidemic", "get_case", {"case_id": covid})
    assert after["status"] == "reported" and after["onset"] == today(node) - 5


def test_lab_result_and_vaccination(page: Page, node: EmbeddedNode) -> None:
    log_in(page, LAB)
    expect(page.get_by_role("heading", name="Lab results")).to_be_visible()
    page.get_by_role("link", name="Post a lab result").click()
    page.get_by_label("Test (LOINC)").select_option("92142-9")
    page.get_by_label("Result", exact=True).select_option("positive")
    page.get_by_label("Date the specimen was taken").fill(days_ago(node, 2))
    page.get_by_label("Date of the result").fill(days_ago(node, 1))
    page.get_by_label("Patient's region of residence").select_option("440104")
    fill_patient(page, 1)
    page.get_by_role("button", name="Post the result").click()
    expect(page.get_by_test_id("receipt")).to_contain_text("Lab result recorded")
    looked_at(page, "lab-result")
    labs = node.query(LAB, "epidemic", "list_observations", {"kind": "lab"})
    assert [lab["test"] for lab in labs["observations"]] == ["92142-9"]
    expect(page.locator("#recent-results tbody tr")).to_have_count(1)
    expect(page.locator("#recent-results")).to_contain_text(
        "Influenza A RNA, respiratory specimen, NAA (LOINC 92142-9)"
    )

    page.context.clear_cookies()
    log_in(page, NURSE)
    page.get_by_role("link", name="Record a vaccination").click()
    page.get_by_label("Vaccine (CVX)").select_option("141")
    page.get_by_label("Dose number").fill("1")
    page.get_by_label("Date given").fill(iso_today(node))
    page.get_by_label("Lot number").fill("FLU-2026-11")
    page.get_by_label("Patient's region of residence").select_option("440104")
    fill_patient(page, 5)
    page.get_by_role("button", name="Record the dose").click()
    expect(page.get_by_test_id("receipt")).to_contain_text("Vaccination recorded")
    expect(page.locator("#recent-doses")).to_contain_text(
        "Influenza, seasonal, injectable (CVX 141)"
    )
    expect(page.locator("#recent-doses")).to_contain_text("FLU-2026-11")
    looked_at(page, "vaccination")
    # A nurse does not report cases: the page says so and where to go instead.
    response = page.goto("/epidemic/report")
    assert response is not None and response.status == 403
    expect(page.get_by_test_id("places").get_by_role("link", name="Your home")).to_be_visible()
    expect(page.get_by_test_id("places")).to_contain_text("Record a vaccination")
    looked_at(page, "nurse-403")


def test_grants_alerts_and_the_province_at_a_glance(page: Page, node: EmbeddedNode) -> None:
    report(node, DOCTOR, person(9), region="440104")  # a case of its own, for the glance
    log_in(page, EPI)
    page.goto("/epidemic/grants")
    page.get_by_label("Grant to").select_option("gd-commission")
    page.get_by_label("Regions of your area").select_option(["440100"])
    page.get_by_label("Until (inclusive)").fill(days_ago(node, -30))
    page.get_by_label("Purpose").select_option("outbreak-investigation")
    page.get_by_label("File number").fill("GD-2026-17")
    page.get_by_role("button", name="Grant access").click()
    expect(page.get_by_test_id("receipt")).to_be_visible()
    row = page.locator("#grants tbody tr").first
    expect(row).to_contain_text("广州市 Guangzhou")
    expect(row).to_contain_text("in force")
    looked_at(page, "grants")
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#grants tbody tr").first).to_contain_text("revoked")
    day = today(node) - 1  # what the epidemic.early-warning worker records
    node.invoke(
        EPI,
        "epidemic",
        "raise_alert",
        {
            "disease": "influenza",
            "region": "440104",
            "day": day,
            "methods": ["C1", "C2"],
            "count": 7,
            "baseline_milli": 1500,
        },
    )
    page.goto("/")
    expect(page.get_by_test_id("recent-alerts")).to_contain_text("越秀区 Yuexiu District")
    page.get_by_role("link", name="Alerts to act on").click()
    expect(page.get_by_role("heading", name="Early-warning alerts")).to_be_visible()
    row = page.locator(f'#alerts tr[data-alert="influenza/440104/{day}"]')
    expect(row).to_contain_text("Influenza")
    expect(row).to_contain_text("1.5")
    looked_at(page, "alerts")
    row.get_by_label("What you do").select_option("investigating")
    row.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_test_id("receipt")).to_contain_text("Alert acknowledged")
    expect(row).to_contain_text("Investigating")
    looked_at(page, "alert-acknowledged")
    page.goto("/")
    expect(page.get_by_test_id("recent-alerts")).to_have_count(0)

    page.context.clear_cookies()
    log_in(page, OFFICER)
    glance = page.get_by_test_id("glance")
    expect(page.get_by_role("heading", name="The province at a glance")).to_be_visible()
    expect(glance).to_contain_text("Influenza")
    expect(glance).to_contain_text("广州市 Guangzhou")
    looked_at(page, "commission-home")


TO = "\u2013"
"""The en dash of a range of places ('Showing 1-50', typeset)."""


def shown_cases(page: Page, table_id: str) -> list[str]:
    """The case ids of a queue table's rows, top to bottom."""
    rows = page.locator(f"#{table_id} tbody tr")
    return [str(case) for case in rows.evaluate_all("rows => rows.map(r => r.dataset.case)")]


def test_the_review_queue_pages_past_the_first_reports(page: Page, node: EmbeddedNode) -> None:
    """More reports wait than the queue shows at once: it says which of how many it
    shows, oldest first, and a plain link reaches the reports past the first page."""
    serials = range(700, 700 + QUEUE_SHOWN + 5)
    node.invoke(
        DOCTOR,
        "epidemic",
        "report_cases",
        {"reports": [case_args(node) for _ in serials]},
        transient={"patients": [person(serial) for serial in serials]},
    )
    waiting = sorted(
        (c["reported_at"], c["case_id"])
        for _, item in node.peer.store.range_state("epidemic", "case/", "case0", 10_000)
        if (c := item.value)["status"] == "reported"
    )
    expected = [case_id for _, case_id in waiting]
    total = len(expected)
    assert total > QUEUE_SHOWN
    log_in(page, EPI)
    page.goto("/epidemic/review")
    expect(page.get_by_role("heading", name=f"Waiting for you ({total})")).to_be_visible()
    shown = page.locator("#waiting-shown")
    expect(shown).to_contain_text(f"Showing 1{TO}{QUEUE_SHOWN} of {total}, oldest first.")
    assert shown_cases(page, "review-queue") == expected[:QUEUE_SHOWN]
    looked_at(page, "review-queue-paged")

    shown.get_by_role("link", name=f"Next {total - QUEUE_SHOWN} →").click()
    assert "waiting=" in page.url  # a plain GET: works without scripts
    expect(shown).to_contain_text(f"Showing {QUEUE_SHOWN + 1}{TO}{total} of {total}, oldest first.")
    assert shown_cases(page, "review-queue") == expected[QUEUE_SHOWN:]
    beyond = expected[-1]
    page.get_by_role("button", name=f"Confirm case {beyond}").click()
    expect(page.get_by_test_id("receipt")).to_contain_text("Review recorded")
    # The decision keeps the page's place in the queue; the case is among the reviewed.
    expect(shown).to_contain_text(
        f"Showing {QUEUE_SHOWN + 1}{TO}{total - 1} of {total - 1}, oldest first."
    )
    expect(page.locator(f'#reviewed tr[data-case="{beyond}"]')).to_contain_text("confirmed")
    shown.get_by_role("link", name="Back to the first").click()
    expect(shown).to_contain_text(f"Showing 1{TO}{QUEUE_SHOWN} of {total - 1}, oldest first.")
    assert shown_cases(page, "review-queue") == expected[:QUEUE_SHOWN]
    # A place in the queue typed by hand that is none is refused in words, not a traceback.
    refused = page.goto("/epidemic/review?waiting=yesterday")
    assert refused is not None and refused.status == 422
    expect(page.locator("main")).to_contain_text("is not a position in the queue")
