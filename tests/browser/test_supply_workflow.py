"""The supply roles at work in headless Chromium, through the console's forms only.

A maker commissions a lot, packs it in a case and ships it; the pharmacy receives the
case and dispenses a pack by uploading a photo of its QR code (an image this test
draws); public verification then says "dispensed". A regulator recalls the lot; the
lot trace, the unit trace, public verification and the API all say "recalled" with
the same date and reason, and the pharmacy is refused, in words, when it tries to
dispense a recalled pack. Every page is photographed at 1280 and 390 px.
"""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import segno
from PIL import Image
from playwright.sync_api import Page, expect

from healthledger.appkit.readable import when
from healthledger.apps.registry import INSTALLED_APPS, installed_contracts
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.seam import attach
from tests.browser.conftest import log_in
from tests.support.screens import overflow, shoot

pytestmark = pytest.mark.browser

MAKER = "lingnan-bio/qa-liu"
PHARMACIST = "yuexiu-pharmacy/pharm-xu"
REGULATOR = "gd-mpa/inspector-feng"
GTIN = "06951234000011"
"""The demo's influenza vaccine (2.0 to 8.0 °C), made by Lingnan Biologics."""
LOT = "W7"
REASON = "stopper particles found in retained samples"
CASE = re.compile(r"SSCC 1 6951234 \d{9} \d")
"""A case of the maker's as people read it: its SSCC grouped at the company prefix."""
BARE_SSCC = re.compile(r"(?<!\d)\d{18}(?!\d)")
ORG_ID = re.compile(rf"\b(?:{'|'.join(re.escape(o.id) for o in DEMO_ORGS)})\b")
"""An organisation's id (``lingnan-bio``), which people should read as its name."""
CLINIC = "Guangzhou First People's Hospital vaccination clinic"
"""The hospital's place, whose name says the hospital's: it is named alone."""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node with the demo's supply history (its products, places and sample packs)."""
    started = EmbeddedNode.create(
        tmp_path_factory.mktemp("workflow") / "node",
        contracts=installed_contracts(),
        plans=DEMO_ORGS,
        batch_timeout_s=0.005,
    ).start()
    supply = next(app for app in INSTALLED_APPS if app.name == "supply")
    assert supply.simulate is not None
    supply.simulate(attach(started, supply), random.Random(5))
    yield started
    started.stop()


def uri(serial: str) -> str:
    return f"https://id.gs1.org/01/{GTIN}/10/{LOT}/21/{serial}?17=991231"


def qr_photo(serial: str, folder: Path) -> Path:
    """A photo of the pack's QR code, as a phone would take it: the code on a white
    label inside a larger grey picture, saved as JPEG."""
    code = io.BytesIO()
    segno.make_qr(uri(serial), error="m").save(code, kind="png", scale=8, border=4)
    label = Image.open(code).convert("RGB")
    photo = Image.new("RGB", (label.width + 400, label.height + 300), (128, 132, 136))
    photo.paste(label, (230, 110))
    path = folder / f"{serial}.jpg"
    photo.save(path, "JPEG", quality=85)
    return path


def receipt_of(page: Page) -> str:
    """The block height a receipt names (and the receipt is there)."""
    receipt = page.get_by_test_id("receipt")
    expect(receipt).to_be_visible()
    expect(receipt.locator("a[href^='/tx/']")).to_have_count(1)
    return receipt.get_by_test_id("receipt-height").inner_text()


def fits_a_phone(page: Page) -> None:
    """The page as it is now is no wider than a 390 px phone."""
    before = page.viewport_size
    page.set_viewport_size({"width": 390, "height": 844})
    assert overflow(page) == 0
    if before is not None:
        page.set_viewport_size(before)


def no_bare_sscc(page: Page) -> None:
    """No 18 digits of an SSCC run together anywhere people read the page."""
    found = BARE_SSCC.search(page.locator("body").inner_text())
    assert found is None, f"{page.url} shows {found[0]}"


def readable(case: str) -> str:
    """The case id ``00/<sscc>`` as the pages name it, grouped at the maker's prefix."""
    digits = case.removeprefix("00/")
    return f"SSCC {digits[0]} {digits[1:8]} {digits[8:17]} {digits[17]}"


def panel_total(page: Page, testid: str) -> int:
    """How many rows a home panel counts: those it lists and the "and N more"."""
    panel = page.locator("section.panel").filter(has=page.get_by_test_id(testid))
    if panel.count() == 0:
        return 0
    more = panel.get_by_text(re.compile(r"^and \d+ more$"))
    hidden = int(more.inner_text().split()[1]) if more.count() else 0
    return page.get_by_test_id(testid).locator("li").count() + hidden


def summary_of(page: Page, title: str) -> str:
    """The first line of the home panel headed ``title``."""
    panel = page.locator("section.panel").filter(
        has=page.get_by_role("heading", name=title, exact=True)
    )
    return panel.locator("p").first.inner_text()


def maker_home_counts_in_words(page: Page) -> int:
    """The maker's home counts its lots and held packs as words ("1 lot", "3 lots"),
    never "lot(s)"; returns the number of lots."""
    lots, held = panel_total(page, "maker-lots"), panel_total(page, "maker-holds")
    assert lots > 0
    said = "1 lot" if lots == 1 else f"{lots} lots"
    assert summary_of(page, "Lots") == f"{said} of your products on the ledger."
    said = "1 pack" if held == 1 else f"{held} packs"
    assert summary_of(page, "Quality holds").startswith(
        f"{said} quarantined after a temperature excursion"
    )
    expect(page.locator("main")).not_to_contain_text("(s)")
    return lots


def switch(page: Page, identity: str) -> None:
    page.context.clear_cookies()
    log_in(page, identity)


def test_from_maker_to_patient_then_recalled(page: Page, tmp_path: Path) -> None:
    log_in(page, MAKER)
    expect(page.get_by_test_id("maker-lots")).to_be_visible()
    no_bare_sscc(page)
    # the header names the person in words, the identity id is kept for a hover
    viewer = page.locator("header.site-header").get_by_test_id("viewer")
    expect(viewer).to_have_text("Lingnan Biologics (vaccine maker) · quality")
    expect(viewer).to_have_attribute("title", MAKER)
    expect(page.locator("header.site-header")).not_to_contain_text(MAKER)
    lots_before = maker_home_counts_in_words(page)
    shoot(page, "maker-home")
    page.get_by_role("link", name="Commission a lot").first.click()
    page.get_by_label("Product").select_option(GTIN)
    page.get_by_label("Lot number").fill(LOT)
    page.get_by_label("Expiry date").fill("2099-12-31")
    page.get_by_label("Number of packs").fill("3")
    page.get_by_role("button", name="Commission the lot").click()
    receipt_of(page)
    expect(page.get_by_test_id("receipt")).to_contain_text(f"Commissioned 3 packs of lot {LOT}")
    shoot(page, "commissioned")
    page.get_by_role("link", name="Pack them into a case").click()
    page.get_by_label("Lot", exact=True).select_option(f"{GTIN}/{LOT}")
    page.get_by_role("button", name="Pack the case").click()
    receipt_of(page)
    expect(page.get_by_test_id("receipt")).to_contain_text(
        re.compile(rf"Packed into case {CASE.pattern}")
    )
    no_bare_sscc(page)
    shoot(page, "packed")
    page.get_by_role("link", name="Ship this case").click()
    # The case by its SSCC as people read it (grouped at the maker's company prefix) and
    # what it holds, not 18 bare digits.
    chosen = page.get_by_label("What to ship").locator("option:checked")
    expect(chosen).to_have_text(
        re.compile(rf"^Case SSCC 1 6951234 \d{{9}} \d: 3 packs of [^,]+, lot {LOT}, at \S")
    )
    case = (chosen.get_attribute("value") or "").removeprefix("00/")
    assert f"SSCC {case[0]} {case[1:8]} {case[8:17]} {case[17]}" in chosen.inner_text()
    # the whole of it beside the select, which a long label overflows
    expect(page.locator("#f-unit-help")).to_have_text(chosen.inner_text())
    # a place named as its organisation is, is named once
    places = page.get_by_label("Ship to").locator("option").all_inner_texts()
    assert any(re.fullmatch(r"Yuexiu Community Pharmacy · GLN \d{13}", p) for p in places)
    assert any(re.fullmatch(rf"{CLINIC} · GLN \d{{13}}", p) for p in places), places
    assert not [p for p in places if re.match(r"^(.+) \((\1)\) · GLN", p)], places
    assert any(re.match(r"^.+ \(.+\) · GLN \d{13}$", p) for p in places), places
    no_bare_sscc(page)
    page.get_by_label("Ship to").select_option(label_containing(page, "Ship to", "Yuexiu"))
    shoot(page, "ship")
    page.get_by_role("button", name="Ship", exact=True).click()
    receipt_of(page)
    page.goto("/supply/holds")
    expect(page.locator("#holds button[value='release']").first).to_be_visible()
    no_bare_sscc(page)
    # held by a place whose name says its organisation's: the place, once
    held = page.locator("#holds td[data-label='Held by']").all_inner_texts()
    assert any(re.fullmatch(rf"{CLINIC}\s+GLN \d{{13}}", h) for h in held), held
    assert not [h for h in held if re.match(r"^(.+), \1", h) or ORG_ID.search(h)], held
    shoot(page, "holds")
    page.goto("/")
    assert maker_home_counts_in_words(page) == lots_before + 1  # lot W7 is counted

    switch(page, PHARMACIST)
    incoming = page.get_by_test_id("incoming")
    ours = f"Case {readable(case)}: 3 packs of Influenza vaccine"
    expect(incoming.get_by_role("link", name=ours)).to_have_text(
        re.compile(rf"^{ours}[^,]*, lot {LOT}$")
    )
    no_bare_sscc(page)
    shoot(page, "pharmacy-home")
    page.get_by_role("link", name="Receive a shipment").click()
    row = page.locator(f"#incoming tr[data-unit='00/{case}']")
    expect(row.locator("td").first).to_have_text(re.compile(rf"^{ours}[^,]*, lot {LOT}$"))
    expect(row.get_by_role("link", name=f"Case {readable(case)}")).to_have_attribute(
        "href", f"/supply/trace?unit=00/{case}"
    )
    no_bare_sscc(page)
    shoot(page, "receive")
    row.get_by_role("button", name="Receive").click()
    receipt_of(page)
    page.goto(f"/supply/trace?unit=00/{case}")
    expect(page.locator("#unit-trace h2")).to_have_text(f"Case {readable(case)}")
    # a case has no product: its range is that of the packs it held (unpacked on arrival)
    expect(page.locator("#unit-storage")).to_have_text(
        re.compile(
            r"^2\.0 °C to 8\.0 °C The storage range of the packs it held: Influenza vaccine .*\.$"
        )
    )
    no_bare_sscc(page)
    shoot(page, "case-trace")
    page.goto("/supply/dispense")
    page.get_by_label("Photo of the pack's QR code").set_input_files(
        qr_photo(f"{LOT}-001", tmp_path)
    )
    page.get_by_role("button", name="Dispense").click()
    receipt_of(page)
    shoot(page, "dispensed")

    page.context.clear_cookies()
    page.goto(f"/supply/verify?uri={uri(LOT + '-001')}")
    expect(page.locator("#pack-status")).to_have_text("dispensed")
    expect(page.locator("#pack-reason")).to_contain_text("Yuexiu Community Pharmacy")
    expect(page.locator("#pack-reason")).to_contain_text("Dispensed on 20")
    expect(page.locator("#trail tbody tr")).to_have_count(6)
    fits_a_phone(page)
    shoot(page, "verify-dispensed")
    recall_and_check(page, tmp_path)


def label_containing(page: Page, field: str, text: str) -> str:
    """The value of the option of ``field`` whose label contains ``text``."""
    options = page.get_by_label(field).locator("option", has_text=text)
    value = options.first.get_attribute("value")
    assert value
    return value


def api(page: Page, path: str) -> Any:
    response = page.request.get(path)
    assert response.ok, response.text()
    return response.json()


def recall_and_check(page: Page, tmp_path: Path) -> None:
    """A regulator recalls the lot: every surface says so, and dispensing is refused."""
    switch(page, REGULATOR)
    expect(page.get_by_test_id("alerts")).to_be_visible()
    no_bare_sscc(page)
    shoot(page, "regulator-home")
    page.goto("/supply/alerts")
    expect(page.locator("#alerts tr[data-kind='temperature_excursion']").first).to_contain_text(
        "°C"
    )
    no_bare_sscc(page)
    shoot(page, "alerts")
    page.goto("/supply/recalls")
    page.get_by_label("Product").select_option(GTIN)
    page.get_by_label("Lot", exact=True).fill(LOT)
    page.get_by_label("Reason").fill(REASON)
    page.get_by_role("button", name="Recall this lot").click()
    receipt_of(page)
    # who recalled by organisation and role, each unit's holder and place by name
    recalled = page.get_by_test_id("recall").filter(has_text=f"lot {LOT}")
    expect(recalled.locator(".recalled-by")).to_have_text(
        "Guangdong Medical Products Administration · inspector"
    )
    recalled.locator("summary").click()
    units = recalled.locator(".recall-units li")
    expect(units).to_have_count(3)
    expect(units.filter(has_text=f"{LOT}-001")).to_contain_text(
        re.compile(r": missing \(dispensed, Yuexiu Community Pharmacy\s+GLN \d{13}\)$")
    )
    listed = recalled.inner_text()
    assert not ORG_ID.search(listed) and "/" not in recalled.locator("p").first.inner_text()
    assert "in_transit" not in listed and "active" not in listed, listed
    shoot(page, "recalled")

    history = api(page, f"/api/v1/supply/units/01/{GTIN}/21/{LOT}-002/history")
    lot = api(page, f"/api/v1/supply/lots/{GTIN}/{LOT}")
    verified = api(page, f"/api/v1/supply/verify?uri={uri(LOT + '-002')}")
    recall = history["recall"]
    assert recall["reason"] == REASON
    assert [u["status"] for u in lot["units"]] == ["recalled"] * 3
    assert {history["status"], verified["status"]} == {"recalled"}
    assert all(u["recall"] == recall for u in lot["units"]) and verified["recall"] == recall
    date = when(recall["at"])

    page.goto(f"/supply/trace?gtin={GTIN}&lot={LOT}")
    expect(page.locator("#lot-units li[data-status='recalled']")).to_have_count(3)
    expect(page.locator("#lot-recall")).to_contain_text(date)
    expect(page.locator("#lot-recall")).to_contain_text(REASON)
    shoot(page, "lot-trace")
    page.locator("#lot-units a", has_text=f"{LOT}-002").click()
    expect(page.locator("#unit-status")).to_contain_text("recalled")
    expect(page.locator("#unit-recall")).to_contain_text(date)
    expect(page.locator("#unit-recall")).to_contain_text(REASON)
    # shipped in the case: the timeline names it as the pages name a case
    expect(page.locator("#timeline .via").first).to_have_text(
        re.compile(rf"^via case {CASE.pattern}$")
    )
    no_bare_sscc(page)
    shoot(page, "unit-trace")

    page.context.clear_cookies()
    page.goto(f"/supply/verify?uri={uri(LOT + '-002')}")
    expect(page.locator("#pack-status")).to_have_text("recalled")
    expect(page.locator("#pack-recall")).to_contain_text(date)
    expect(page.locator("#pack-recall")).to_contain_text(REASON)
    # by the regulator's name, not its inspector's identity id
    expect(page.locator("#pack-recall")).to_contain_text(
        "Recall of the whole lot by Guangdong Medical Products Administration · its transaction"
    )
    expect(page.locator("#pack-recall")).not_to_contain_text(REGULATOR)
    expect(page.locator("#pack-advice")).to_contain_text("Do not use it")
    fits_a_phone(page)
    shoot(page, "verify-recalled")

    switch(page, PHARMACIST)
    expect(page.get_by_test_id("recalled-stock")).to_contain_text(REASON)
    page.goto("/supply/dispense")
    page.get_by_label("Photo of the pack's QR code").set_input_files(
        qr_photo(f"{LOT}-002", tmp_path)
    )
    page.get_by_role("button", name="Dispense").click()
    refusal = page.get_by_test_id("refusal-reason")
    expect(refusal).to_contain_text(f"pack {LOT}-002 of Influenza vaccine")
    expect(refusal).to_contain_text("is recalled")
    fits_a_phone(page)
    shoot(page, "dispense-refused")
    page.get_by_label("Or the link printed under the QR code").fill("hello world")
    page.get_by_label("Or the link printed under the QR code").evaluate(
        "e => e.form.noValidate = true"
    )
    page.get_by_role("button", name="Dispense").click()
    expect(page.get_by_test_id("refusal").locator("li").first).to_have_text(
        "Link: not an http(s) GS1 Digital Link URI"
    )


def test_public_verification_on_a_phone(page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    page.get_by_role("link", name="Verify a medicine pack").first.click()
    samples = page.get_by_test_id("samples").get_by_role("link")
    expect(samples.first).to_be_visible()
    # Chromium for Linux has no BarcodeDetector: the camera button stays hidden, the
    # photo upload is the way in.
    if not page.evaluate("'BarcodeDetector' in window"):
        expect(page.locator("#camera-scan")).to_be_hidden()
    shoot(page, "verify-empty")
    page.get_by_test_id("samples").get_by_role("link", name="A quarantined pack").click()
    expect(page.locator("#pack-status")).to_have_text("quarantined")
    excursions = page.locator("#pack-excursions")
    expect(excursions).to_contain_text("2.0 °C and 8.0 °C")
    expect(excursions.locator(".temp-out").first).to_contain_text("11.8 °C")
    expect(page.locator("#trail tr.excursion")).to_have_count(1)
    assert overflow(page) == 0
    shoot(page, "verify-quarantined")


SCANNER = """
(() => {
  // A stand-in for the phone's camera and QR detector, which headless Chromium for Linux
  // lacks: the camera streams a blank canvas and the detector reads SCANNED from it.
  class StandInDetector {
    static getSupportedFormats() { return Promise.resolve(["qr_code"]); }
    detect() { return Promise.resolve([{ rawValue: SCANNED }]); }
  }
  window.BarcodeDetector = StandInDetector;
  navigator.mediaDevices.getUserMedia = async () => {
    const canvas = document.createElement("canvas");
    canvas.getContext("2d").fillRect(0, 0, 10, 10);
    return canvas.captureStream();
  };
})();
"""


def test_the_camera_scan_fills_in_the_pack(page: Page) -> None:
    """The page's own script: a detected code is verified (and dispensed) as typed."""
    sample = page.request.get("/supply/verify").text()
    found = re.search(r'href="/supply/verify\?uri=([^"]+)"', sample)
    assert found is not None
    scanned = unquote(found[1].replace("&amp;", "&"))
    page.add_init_script(SCANNER.replace("SCANNED", json.dumps(scanned)))
    page.goto("/supply/verify")
    page.get_by_role("button", name="Scan the QR code with the camera").click()
    expect(page.locator("#pack-uri")).to_have_text(scanned)
    switch(page, PHARMACIST)
    page.goto("/supply/dispense")
    page.get_by_role("button", name="Scan with the camera").click()
    serial = scanned.split("/21/")[1].split("?")[0]
    outcome = page.get_by_test_id("refusal").or_(page.get_by_test_id("receipt"))
    expect(outcome).to_contain_text(f"pack {serial}")
