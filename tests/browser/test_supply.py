"""The public pack verification page in headless Chromium: a QR photo uploaded without login.

The QR PNG is the one the app itself serves (``/api/v1/supply/qr.png``); the
server decodes it with zxing-cpp and answers with the pack's status and trail.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect

from healthledger.appkit.readable import celsius
from healthledger.apps.registry import INSTALLED_APPS, installed_contracts
from healthledger.apps.supply.verification import PublicLedger
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from healthledger.web.console import create_console
from tests.apps.supply.conftest import (
    GTIN,
    MAKER,
    MAKER_OPS,
    PHARMACY,
    PHARMACY_GLN,
    PLANT,
    capture,
    register_master_data,
    step,
    unit,
    with_check,
)
from tests.browser.conftest import log_in
from tests.support.screens import shoot
from tests.support.seam import supply_seam

REGULATOR = "gd-mpa/inspector-feng"
RED = "#c0392b"
"""An excursion's colour on the temperature chart."""

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node where pack P1 is genuine and pack P2 is recalled."""
    started = EmbeddedNode.create(
        tmp_path_factory.mktemp("supply") / "node",
        contracts=installed_contracts(),
        batch_timeout_s=0.005,
        plans=DEMO_ORGS,
    ).start()
    register_master_data(started)
    capture(
        started,
        MAKER_OPS,
        step(
            "commission-browser",
            "commission",
            [unit("P1"), unit("P2"), unit("P3")],
            location=PLANT,
            lot="L1",
            expiry="2099-12-31",
        ),
    )
    capture(
        started,
        MAKER_OPS,
        step("ship-browser", "ship", [unit("P1")], location=PLANT, destination=PHARMACY_GLN),
    )
    capture(  # a warm storeroom: P3 is quarantined by contract
        started,
        MAKER_OPS,
        step("storeroom", "observe", [unit("P3")], location=PLANT, temperatures_dc=[45, 60, 95]),
    )
    capture(  # a counterfeit at the pharmacy
        started,
        PHARMACY,
        step("fake", "dispense", [unit("FAKE1")], location=PHARMACY_GLN),
    )
    started.invoke(
        MAKER,
        "supply",
        "recall",
        {"gtin": GTIN, "lot": "L1", "reason": "vial glass defect", "units": [unit("P2")]},
    )
    yield started
    started.stop()


def qr_png_of(page: Page, serial: str, tmp_path: Path) -> Path:
    """The pack's QR code as the app serves it, saved as a file to upload."""
    response = page.request.get(
        "/api/v1/supply/qr.png",
        params={"gtin": GTIN, "lot": "L1", "serial": serial, "expiry": "991231"},
    )
    assert response.ok and response.headers["content-type"] == "image/png"
    saved = tmp_path / f"{serial}.png"
    saved.write_bytes(response.body())
    return saved


def upload(page: Page, photo: Path) -> None:
    page.goto("/supply/verify")
    page.get_by_label("Or upload a photo of the QR code").set_input_files(photo)
    page.get_by_role("button", name="Verify photo").click()


def test_an_uploaded_qr_png_verifies_as_genuine(page: Page, tmp_path: Path) -> None:
    upload(page, qr_png_of(page, "P1", tmp_path))
    expect(page.locator("#pack-status")).to_have_text("genuine")
    expect(page.locator("#pack-uri")).to_contain_text(f"/01/{GTIN}/10/L1/21/P1")
    trail = page.locator("#trail tbody tr")
    expect(trail).to_have_count(2)
    expect(trail.nth(0)).to_contain_text("commission")
    expect(trail.nth(0)).to_contain_text("Lingnan Biologics")
    expect(trail.nth(1)).to_contain_text("ship")
    expect(page.locator("dl.fields")).to_contain_text("Latest event")
    expect(page.get_by_test_id("viewer")).to_have_count(0)


def test_a_recalled_pack_shows_recalled(page: Page, tmp_path: Path) -> None:
    upload(page, qr_png_of(page, "P2", tmp_path))
    expect(page.locator("#pack-status")).to_have_text("recalled")


def test_an_unreadable_image_is_a_clear_message(page: Page, tmp_path: Path) -> None:
    junk = tmp_path / "blurred.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n this is not really an image")
    upload(page, junk)
    expect(page.locator("#verdict h2")).to_have_text("Cannot verify")
    expect(page.locator("#verdict-reason")).to_contain_text("not a readable image")
    expect(page.locator("#photo-form")).to_be_visible()


def test_a_unit_trace_shows_its_timeline_and_temperature_chart(page: Page) -> None:
    log_in(page, REGULATOR)
    page.goto("/supply")
    page.get_by_role("link", name="Trace a unit or a lot").click()
    page.get_by_label("Unit (").fill(unit("P3"))
    page.get_by_role("button", name="Trace unit").click()
    expect(page.locator("#unit-status")).to_contain_text("quarantined")
    timeline = page.locator("#timeline li")
    expect(timeline).to_have_count(2)
    expect(timeline.nth(0)).to_contain_text("commission")
    expect(timeline.nth(1)).to_contain_text("4.5 to 9.5 °C")
    chart = page.get_by_test_id("temperature-chart")
    expect(chart).to_be_visible()
    # Drawn by Vega-Embed from the page's Vega-Lite specification: the storage band and
    # the one reading (4.5 to 9.5 °C against 2.0 to 8.0 °C) as a red min-max bar.
    expect(chart.locator("svg g.mark-rect.role-mark path")).to_have_count(1)
    expect(chart.locator(f"svg g.mark-rule.role-mark line[stroke='{RED}']")).to_have_count(1)
    expect(chart.locator("svg g.role-axis-title text").first).to_be_visible()
    titles = chart.locator("svg g.role-axis-title text").all_text_contents()
    assert "Temperature (°C)" in titles
    assert any(t.startswith("Time of the reading, CST (UTC+08:00)") for t in titles), titles
    assert all(p.exists() for p in shoot(page, "unit-trace-excursion"))


def test_a_lot_trace_shows_where_the_lot_is(page: Page) -> None:
    log_in(page, REGULATOR)
    page.goto("/supply/trace")
    page.get_by_label("GTIN", exact=True).fill(GTIN)
    page.get_by_label("Lot", exact=True).fill("L1")
    page.get_by_role("button", name="Trace lot").click()
    expect(page.locator("#lot-units li")).to_have_count(3)
    expect(page.locator("#lot-places")).to_contain_text("in transit")
    assert all(p.exists() for p in shoot(page, "lot-trace"))
    page.locator("#lot-units a", has_text=unit("P1")).click()
    expect(page.locator("#timeline li")).to_have_count(2)
    expect(page.locator("#no-readings")).to_be_visible()
    shoot(page, "unit-trace-no-readings")


def test_an_unknown_unit_is_a_clear_message(page: Page) -> None:
    log_in(page, REGULATOR)
    page.goto("/supply/trace?unit=01/00000000000000/21/NOPE")
    expect(page.locator("#trace-problem")).to_contain_text("No unit")
    page.goto("/supply/trace?unit=garbage")
    expect(page.locator("#trace-problem")).to_contain_text(
        "No unit “garbage” is known to this ledger. A pack is written 01/<GTIN>/21/<serial>"
    )
    page.goto("/supply/trace?gtin=06951234000011")
    expect(page.locator("#trace-problem")).to_have_text(
        "To trace a lot, give both its GTIN and its lot number."
    )
    # an unknown case is named as the pages name a case, not by 18 bare digits
    case = with_check("16951234000000077")
    page.goto(f"/supply/trace?unit=00/{case}")
    expect(page.locator("#trace-problem")).to_have_text(
        f"No case SSCC 1 6951234 000000077 {case[-1]} is known to this ledger."
    )
    assert not re.search(r"(?<!\d)\d{18}(?!\d)", page.locator("body").inner_text())
    shoot(page, "unknown-case")


def test_the_recall_dashboard_counts_units(page: Page) -> None:
    log_in(page, REGULATOR)
    expect(page.get_by_text("1 recall.", exact=True)).to_be_visible()  # home: words, not "(s)"
    expect(page.get_by_text("(s)")).to_have_count(0)
    page.goto("/supply/recalls")
    recall = page.get_by_test_id("recall")
    expect(recall).to_have_count(1)
    expect(recall).not_to_contain_text("(s)")
    expect(recall).to_contain_text("vial glass defect")
    expect(recall.locator('[data-bucket="returned"]')).to_have_text("1")
    expect(recall.locator('[data-bucket="missing"]')).to_have_text("0")
    # who recalled and who holds each unit, by name: no organisation or identity ids
    expect(recall.locator(".recalled-by")).to_have_text(
        "Lingnan Biologics (vaccine maker) · quality"
    )
    recall.locator("summary").click()
    expect(recall.locator(".recall-units li")).to_have_text(
        [
            re.compile(
                r"^pack P2 \S+: returned \(in stock, Lingnan Biologics \(vaccine maker\), "
                r"Plant\s+GLN \d{13}\)$"
            )
        ]
    )
    assert not re.search(r"\blingnan-bio\b|\bin_transit\b", recall.inner_text())
    shoot(page, "recalls")


def test_the_alerts_list_shows_counterfeit_and_excursion(page: Page) -> None:
    log_in(page, REGULATOR)
    page.goto("/supply/alerts")
    expect(page.locator('#alerts tr[data-kind="unknown_serial"]')).to_have_count(1)
    expect(page.locator('#alerts tr[data-kind="temperature_excursion"]')).to_have_count(1)
    # the contract's "1 unit(s) quarantined: readings 45..95 (0.1 C)", as people read it
    excursion = page.locator('#alerts tr[data-kind="temperature_excursion"] [data-label="Detail"]')
    expect(excursion).to_have_text(
        "1 unit quarantined: readings 4.5 °C to 9.5 °C outside the storage range"
    )
    expect(page.locator("#alerts")).not_to_contain_text("(s)")


def test_the_console_pages_need_a_login(page: Page) -> None:
    page.goto("/supply/alerts")
    expect(page).to_have_url(re.compile(r"/login\?next=/supply/alerts$"))


# --- the demo, end to end ------------------------------------------------------------

SUPPLY = next(app for app in INSTALLED_APPS if app.name == "supply")


class DemoClock:
    """Wall time at the start, moved on a few seconds for each round of live traffic."""

    def __init__(self) -> None:
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, EmbeddedNode]]:
    """The demo's supply history and a minute of its live traffic, served by the console."""
    clock = DemoClock()
    node = EmbeddedNode.create(
        tmp_path_factory.mktemp("demo") / "node",
        contracts=installed_contracts(),
        batch_timeout_s=0.005,
        clock=clock,
        plans=DEMO_ORGS,
    ).start()
    assert SUPPLY.simulate is not None and SUPPLY.live_step is not None
    rng = random.Random(21)
    SUPPLY.simulate(supply_seam(node), rng)
    for _ in range(20):
        clock.now += 3_000
        SUPPLY.live_step(supply_seam(node), rng)
    server = uvicorn.Server(
        uvicorn.Config(
            create_console(node), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, name="demo-console", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}", node
    server.should_exit = True
    thread.join(10)
    node.stop()


def _packs(node: EmbeddedNode) -> list[dict[str, Any]]:
    return [record for _, record in PublicLedger(supply_seam(node)).range("unit/01/")]


def _recalled_lots(node: EmbeddedNode) -> set[tuple[str, str]]:
    return {(r["gtin"], r["lot"]) for _, r in PublicLedger(supply_seam(node)).range("recall/")}


def _qr(page: Page, pack: dict[str, Any], tmp_path: Path) -> Path:
    expiry = pack["expiry"].replace("-", "")[2:]
    response = page.request.get(
        "/api/v1/supply/qr.png",
        params={
            "gtin": pack["gtin"],
            "lot": pack["lot"],
            "serial": pack["serial"],
            "expiry": expiry,
        },
    )
    assert response.ok
    saved = tmp_path / f"{pack['serial']}.png"
    saved.write_bytes(response.body())
    return saved


def test_the_demo_end_to_end(
    browser: Browser, demo: tuple[str, EmbeddedNode], tmp_path: Path
) -> None:
    url, node = demo
    recalled_lots = _recalled_lots(node)
    sold = next(
        p
        for p in _packs(node)
        if p["lot"].startswith("LV")
        and p["status"] == "dispensed"
        and (p["gtin"], p["lot"]) not in recalled_lots
    )
    recalled = next(p for p in _packs(node) if (p["gtin"], p["lot"]) in recalled_lots)
    context = browser.new_context(base_url=url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        log_in(page, REGULATOR)
        # Trace a pack the live traffic sold: its case's journey reached it through the case.
        page.goto("/supply")
        page.get_by_role("link", name="Trace a unit or a lot").click()
        page.get_by_label("Unit (").fill(sold["unit"])
        page.get_by_role("button", name="Trace unit").click()
        expect(page.locator("#unit-status")).to_contain_text("dispensed")
        timeline = page.locator("#timeline li")
        expect(timeline.first).to_contain_text("commission")
        expect(timeline.last).to_contain_text("dispense")
        shipped = timeline.filter(has_text="ship")
        expect(shipped).to_have_count(1)
        # the case named as the pages name one: its SSCC grouped at the maker's prefix
        expect(shipped.locator(".via")).to_have_text(
            re.compile(r"^via case SSCC \d 6951234 \d{9} \d$")
        )
        assert not re.search(r"(?<!\d)\d{18}(?!\d)", page.locator("body").inner_text())
        chart = page.get_by_test_id("temperature-chart")
        expect(chart.locator("svg g.mark-rule.role-mark line")).not_to_have_count(0)
        shoot(page, "unit-trace-demo")
        # The case it came in, one click away.
        shipped.locator(".via a").click()
        expect(page.locator("#timeline li").first).to_contain_text("pack")
        expect(page.locator("#unit-trace h2")).to_have_text(
            re.compile(r"^Case SSCC \d 6951234 \d{9} \d$")
        )
        assert not re.search(r"(?<!\d)\d{18}(?!\d)", page.locator("body").inner_text())
        # A case has no product of its own: it takes the range of the packs it held,
        # shaded on its chart as on a pack's.
        product = PublicLedger(supply_seam(node)).get(f"product/{sold['gtin']}")
        shown = f"{celsius(product['temp_min_dc'])} to {celsius(product['temp_max_dc'])}"
        expect(page.locator("#unit-storage")).to_have_text(
            re.compile(rf"^{shown} The storage range of the packs it (holds|held): .+\.$")
        )
        spec = json.loads(page.locator("#spec-temperature").text_content() or "{}")
        assert spec["title"]["subtitle"].startswith(f"Shaded: the storage range, {shown}. The")
        case_chart = page.get_by_test_id("temperature-chart")
        expect(case_chart.locator("svg g.mark-rect.role-mark path")).to_have_count(1)
        shoot(page, "case-trace-demo")
        # The recall view counts the recalled lot's units.
        page.goto("/supply/recalls")
        recall = page.get_by_test_id("recall").filter(has_text=f"lot {recalled['lot']}")
        expect(recall).to_have_count(1)
        lot = [
            p for p in _packs(node) if (p["gtin"], p["lot"]) == (recalled["gtin"], recalled["lot"])
        ]
        missing = sum(p["status"] in ("dispensed", "administered") for p in lot)
        expect(recall).to_contain_text(f"{len(lot)} unit{'s' if len(lot) != 1 else ''}.")
        expect(recall.locator('[data-bucket="missing"]')).to_have_text(str(missing))
        # The alerts: counterfeit attempts and cold-chain excursions.
        page.goto("/supply/alerts")
        expect(page.locator('#alerts tr[data-kind="unknown_serial"]').first).to_be_visible()
        expect(page.locator('#alerts tr[data-kind="temperature_excursion"]').first).to_be_visible()
        # A patient checks the sold pack and a recalled one with the app's own QR codes.
        for pack, status in ((sold, "dispensed"), (recalled, "recalled")):
            upload(page, _qr(page, pack, tmp_path))
            expect(page.locator("#pack-status")).to_have_text(status)
            expect(page.locator("#pack-uri")).to_contain_text(f"/21/{pack['serial']}")
            expect(page.locator("dl.fields")).to_contain_text("Latest event")
    finally:
        context.close()
