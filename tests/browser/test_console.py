"""The web console in headless Chromium, served by uvicorn over a real embedded node.

One node, one server and one browser per module; each test gets a fresh browser
context (no cookies), so logins do not leak between tests.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from tests.browser.conftest import log_in
from tests.support.screens import phone_overflow, shoot

pytestmark = pytest.mark.browser

BANNER = (
    "Demo custody mode: the server holds every demo identity's private key and signs for "
    "the identity you log in as. Never use this mode in production."
)
SCREENSHOT = Path("/tmp/healthledger-explorer.png")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node with a few blocks beyond genesis."""
    started = EmbeddedNode.create(
        tmp_path_factory.mktemp("console") / "node", contracts=SYSTEM_CONTRACTS, plans=DEMO_ORGS
    ).start()
    started.invoke(
        "gd-mpa/admin",
        "membership",
        "revoke_identity",
        {"identity": "pearl-logistics/driver-ma", "reason": "lost the company phone"},
    )
    yield started
    started.stop()


def test_login_shows_identity_org_and_banner(page: Page) -> None:
    page.goto("/explorer")
    assert page.url.endswith("/login?next=/explorer")
    expect(page.get_by_role("note", name="Demo custody warning")).to_have_text(BANNER)
    page.get_by_label("Identity (by organisation and role)").select_option("gd-cdc/epi-wang")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Ledger explorer")).to_be_visible()
    header = page.locator("header.site-header")
    # the person as the console names people (readable.someone), the id on hover only
    viewer = header.get_by_test_id("viewer")
    expect(viewer).to_have_text("Guangdong Provincial CDC · epidemiologist")
    expect(viewer).to_have_attribute("title", "gd-cdc/epi-wang")
    expect(header).not_to_contain_text("gd-cdc/epi-wang")
    shoot(page, "header-epidemiologist")
    expect(page.get_by_role("note", name="Demo custody warning")).to_have_text(BANNER)


def test_a_stranger_finds_the_public_pages_and_the_way_in(page: Page) -> None:
    page.goto("/")
    entries = page.get_by_test_id("public-entries")
    for name in ("Verify a proof", "Verify a medicine pack", "Public epidemic statistics"):
        expect(entries.get_by_role("link", name=name)).to_be_visible()
    shoot(page, "public-home")
    assert phone_overflow(page) == 0
    page.get_by_role("link", name="Log in", exact=True).first.click()
    expect(page.get_by_role("heading", name="No login needed")).to_be_visible()
    shoot(page, "login")
    assert phone_overflow(page) == 0
    log_in(page, "gd-insurance/adjuster-sun")
    expect(page.get_by_role("heading", name="Today", exact=True)).to_be_visible()
    # No application is deployed on this chain, and an adjuster has no platform panel
    # (a regulator's home opens on the ledger's integrity): no panel, and no error either.
    expect(page.get_by_role("heading", name="Nothing to do here today")).to_be_visible()
    expect(
        page.get_by_text("No application has work for an adjuster of an insurer")
    ).to_be_visible()
    shoot(page, "home-without-app-work")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Explorer").click()
    expect(page.get_by_role("heading", name="Ledger explorer")).to_be_visible()
    shoot(page, "explorer")


def test_explorer_lists_blocks_and_opens_a_transaction(page: Page, node: EmbeddedNode) -> None:
    log_in(page, "gd-mpa/auditor-tang")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Explorer").click()
    page.get_by_role("link", name="All blocks →").click()
    rows = page.locator("#blocks tbody tr")
    expect(rows).to_have_count(node.peer.store.height())
    expect(page.locator("#blocks")).to_contain_text("VALID")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.locator("#blocks").get_by_role("link", name="1", exact=True).click()
    expect(page.get_by_role("heading", name="Block 1")).to_be_visible()
    page.locator("#transactions a").first.click()
    expect(page.get_by_role("heading", name="Transaction", exact=True)).to_be_visible()
    expect(page.locator("#validation-code")).to_have_text("VALID")
    expect(page.locator("main")).to_contain_text("membership.revoke_identity")
    expect(page.locator("#server-check")).to_contain_text("Server check: verified")
    page.get_by_role("button", name="Check in my browser").click()
    expect(page.locator("#client-check")).to_contain_text("verified — transaction hash")


def test_consortium_lists_the_ten_organisations(page: Page) -> None:
    log_in(page, "gd-commission/officer-chen")
    page.goto("/consortium")
    expect(page.locator("#organisations tbody tr")).to_have_count(10)
    expect(page.locator("#organisations")).to_contain_text(
        "Guangdong Medical Products Administration"
    )
    revoked = page.locator("#revocations")
    expect(revoked).to_contain_text("pearl-logistics/driver-ma")
    expect(revoked).to_contain_text("lost the company phone")


def test_an_admin_revokes_through_the_form(page: Page, node: EmbeddedNode) -> None:
    log_in(page, "sz-peoples-hospital/admin")
    page.goto("/consortium")
    page.get_by_label("Identity", exact=True).select_option("sz-peoples-hospital/lab-wu")
    page.get_by_label("Reason").fill("transferred to another hospital")
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator("#outcome")).to_contain_text("Revoked sz-peoples-hospital/lab-wu")
    row = page.locator('#identities tr[data-identity="sz-peoples-hospital/lab-wu"]')
    expect(row).to_contain_text("revoked")
    expect(page.locator("#revocations")).to_contain_text("transferred to another hospital")
    record = node.query(
        "gd-mpa/auditor-tang", "membership", "identity", {"id": "sz-peoples-hospital/lab-wu"}
    )
    assert record["status"] == "revoked" and record["revoked_by"] == "sz-peoples-hospital/admin"


def test_a_non_admin_is_refused_with_the_reason(page: Page, node: EmbeddedNode) -> None:
    height = node.peer.store.height()
    log_in(page, "gz-first-hospital/dr-li")
    page.goto("/consortium")
    page.get_by_label("Identity", exact=True).select_option("gz-first-hospital/lab-huang")
    page.get_by_label("Reason").fill("I would like to")
    page.get_by_role("button", name="Revoke").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Refused: Access denied")
    expect(alert).to_contain_text("only an admin of its organisation or of a regulator may revoke")
    row = page.locator('#identities tr[data-identity="gz-first-hospital/lab-huang"]')
    expect(row).to_contain_text("active")
    assert node.peer.store.height() == height


def proof_of_revocation(node: EmbeddedNode, tree_size: int | None = None) -> dict[str, Any]:
    """A real inclusion proof of the first revocation (block 1)."""
    tx_id = node.peer.block(1).transactions[0].tx_id
    return node.peer.inclusion_proof(tx_id, tree_size)


def test_public_verify_page_checks_real_and_tampered_proofs(page: Page, node: EmbeddedNode) -> None:
    page.goto("/verify")
    assert page.url.endswith("/verify"), "the verify page needs no login"
    expect(page.get_by_role("note", name="Demo custody warning")).to_be_visible()

    box = page.get_by_label("Transaction id, receipt or proof")
    box.fill(json.dumps(proof_of_revocation(node), indent=1))
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("#verdict h2")).to_have_text("Verified")

    old = proof_of_revocation(node, tree_size=2)
    node.invoke(  # the log grows past the old proof's tree size
        "gd-insurance/admin",
        "membership",
        "revoke_identity",
        {"identity": "gd-insurance/adjuster-sun", "reason": "retired"},
    )
    page.get_by_label("Transaction id, receipt or proof").fill(json.dumps(old))
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("#verdict h2")).to_have_text("Verified")
    expect(page.locator("#verdict-reason")).to_contain_text("consistent with the current log root")

    tampered = proof_of_revocation(node)
    path = bytearray(base64.b64decode(tampered["proof"][0]))
    path[0] ^= 0x80
    tampered["proof"][0] = base64.b64encode(bytes(path)).decode()
    page.get_by_label("Transaction id, receipt or proof").fill(json.dumps(tampered))
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("#verdict h2")).to_have_text("Not verified")
    expect(page.locator("#verdict-reason")).to_contain_text("does not lead to the proof's root")


def test_dashboard_updates_live_when_a_block_commits(page: Page, node: EmbeddedNode) -> None:
    log_in(page, "gd-cdc/admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Explorer").click()
    expect(page.locator("#live-status")).to_contain_text("Live")
    height = node.peer.store.height()
    expect(page.locator("#height")).to_have_text(str(height))
    node.invoke(
        "lingnan-bio/admin",
        "membership",
        "revoke_identity",
        {"identity": "lingnan-bio/ops-he", "reason": "contract ended"},
    )
    expect(page.locator("#height")).to_have_text(str(height + 1))
    expect(page.locator("#head-time")).to_contain_text("CST (UTC+08:00)")  # local, with its zone
    expect(page.locator("#recent-blocks tr").first).to_contain_text(str(height))
