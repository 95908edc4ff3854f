"""The credentials console in Chromium: a nurse issues the certificates of a recorded
vaccination (three QR codes); a stranger verifies one by uploading its QR image on the
public verifier page; the page verifies offline after its first load (its service
worker and WebCrypto); revoking flips its verdict once the lists are refreshed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from healthledger.apps.credentials.app import APP as CREDENTIALS
from healthledger.apps.credentials.provision import enrol_issuers
from healthledger.apps.credentials.qr import qr_code
from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.regions import RegionTable
from healthledger.apps.registry import installed_contracts
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.seam import attach
from tests.apps.credentials.support import NURSE, vaccinate
from tests.apps.epidemic.conftest import TEST_REGIONS
from tests.browser.conftest import log_in
from tests.support.screens import phone_overflow, shoot, wide_elements
from tests.support.seam import epidemic_seam


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node with every installed contract, the hospitals on the trust list."""
    path = tmp_path_factory.mktemp("credentials-console") / "node"
    started = EmbeddedNode.create(
        path, contracts=installed_contracts(), batch_timeout_s=0.005, plans=DEMO_ORGS
    ).start()
    configure(epidemic_seam(started), RegionTable.from_source(TEST_REGIONS))
    enrol_issuers(attach(started, CREDENTIALS), ["gz-first-hospital"])
    yield started
    started.stop()


def looked_at(page: Page, name: str) -> None:
    """Screenshots of the page, which must fit a phone's width."""
    shoot(page, name)
    assert phone_overflow(page) == 0, f"{name} is wider than a phone: {wide_elements(page)}"


def _verdict(page: Page, text: str) -> None:
    page.get_by_label("Or its text").fill(text)
    page.get_by_role("button", name="Verify", exact=True).click()


def test_issue_then_verify_online_offline_and_revoked(
    node: EmbeddedNode, page: Page, browser: Browser, base_url: str, tmp_path: Path
) -> None:
    vaccinate(node, 501)
    log_in(page, NURSE)
    page.goto("/credentials/issue")
    page.get_by_label("Recorded vaccination, test or case").select_option(index=0)
    page.get_by_label("Family name").fill("Chen")
    page.get_by_label("Given name").fill("Xiaoming")
    page.get_by_label("Date of birth").fill("1985-03-12")
    page.get_by_role("button", name="Issue the certificate").click()
    expect(page.get_by_test_id("receipt")).to_be_visible()
    for fmt in ("dcc", "shc", "sd-jwt-vc"):
        expect(page.get_by_test_id(f"qr-{fmt}")).to_be_visible()
    looked_at(page, "issued")
    texts = {f: page.get_by_test_id(f"text-{f}").input_value() for f in ("dcc", "shc", "sd-jwt-vc")}
    credential_id = page.get_by_test_id("credential-id").inner_text()
    image = tmp_path / "dcc.png"
    qr_code(texts["dcc"]).save(str(image), kind="png", scale=4, border=4)

    stranger = browser.new_context(base_url=base_url)
    stranger.set_default_timeout(15_000)
    verifier = stranger.new_page()
    verifier.goto("/credentials")  # redirected to /credentials/
    expect(verifier.locator("#signers")).to_contain_text("Guangzhou First People's Hospital")
    looked_at(verifier, "trust-list")
    verifier.goto("/credentials/verify")
    expect(verifier.get_by_test_id("lists")).to_contain_text("document signer")
    verifier.evaluate("navigator.serviceWorker.ready.then(() => true)")
    verifier.get_by_label("Or a photo of the QR code").set_input_files(str(image))
    expect(verifier.get_by_test_id("verdict")).to_have_attribute("data-valid", "true")
    expect(verifier.get_by_test_id("verdict")).to_contain_text("Chen")
    looked_at(verifier, "verified-photo")

    # Offline: the service worker serves the page; the page's own code verifies.
    stranger.set_offline(True)
    verifier.reload()
    expect(verifier.get_by_test_id("lists")).to_contain_text("offline")
    for fmt in ("shc", "sd-jwt-vc", "dcc"):
        _verdict(verifier, texts[fmt])
        expect(verifier.get_by_test_id("verdict")).to_have_attribute("data-valid", "true")
    looked_at(verifier, "verified-offline")

    # The issuer revokes it; once the lists are refreshed, every encoding is refused.
    page.goto("/credentials/issued")
    row = page.locator(f"tr[data-credential='{credential_id}']")
    row.get_by_label("New status").select_option("revoked")
    row.get_by_role("button", name="Change").click()
    expect(page.get_by_test_id("receipt")).to_be_visible()
    looked_at(page, "revoked")
    _verdict(verifier, texts["dcc"])  # still offline: the cached list says valid
    expect(verifier.get_by_test_id("verdict")).to_have_attribute("data-valid", "true")
    stranger.set_offline(False)
    verifier.get_by_role("button", name="Refresh the lists").click()
    expect(verifier.get_by_test_id("lists")).not_to_contain_text("offline")
    for fmt in ("dcc", "shc", "sd-jwt-vc"):
        _verdict(verifier, texts[fmt])
        expect(verifier.get_by_test_id("verdict")).to_have_attribute("data-valid", "false")
        expect(verifier.locator("#reasons li[data-code='REVOKED']")).to_be_visible()
    looked_at(verifier, "refused-revoked")
    stranger.close()


def test_wallet_claims_then_discloses_a_subset_with_key_binding(
    node: EmbeddedNode, page: Page, browser: Browser, base_url: str, tmp_path: Path
) -> None:
    """A nurse offers a certificate to the holder's wallet; the wallet claims it bound to
    its own key, keeps it offline, and shows a checkpoint only the vaccine and dose,
    signed for the checkpoint's request; the verifier accepts it and sees nothing else,
    and refuses the same QR code for its next request."""
    vaccinate(node, 502)
    log_in(page, NURSE)
    page.goto("/credentials/issue")
    page.get_by_label("Recorded vaccination, test or case").select_option(index=0)
    page.get_by_label("Family name").fill("Wang")
    page.get_by_label("Given name").fill("Fang")
    page.get_by_label("Date of birth").fill("1990-07-04")
    page.get_by_label("A link for the holder's wallet").check()
    page.get_by_role("button", name="Issue the certificate").click()
    expect(page.get_by_test_id("claim-qr")).to_be_visible()
    looked_at(page, "claim-offer")
    link = page.get_by_test_id("claim-link").get_attribute("href")
    assert link is not None and "/credentials/wallet#claim=" in link

    holder = browser.new_context(base_url=base_url, device_scale_factor=2)
    holder.set_default_timeout(15_000)
    wallet = holder.new_page()
    wallet.goto(link)
    notice = wallet.get_by_test_id("wallet-notice")  # the claim commits a transaction
    expect(notice).to_contain_text("bound to this wallet's key", timeout=30_000)
    card = wallet.locator(".wallet-card").first
    expect(card).to_have_attribute("data-valid", "true")
    expect(card).to_contain_text("Fang Wang")
    expect(card).to_contain_text("July 4, 1990")  # a local date, not 1990-07-04
    due = wallet.locator("#doses-due-list li[data-vaccine='covid-19']")  # asked with the key
    expect(due).to_have_attribute("data-status", "scheduled")  # dose 1 was 20 days ago
    expect(due).to_contain_text("Dose 2: due on")
    looked_at(wallet, "wallet")
    wallet.get_by_label("Or its text").fill("HC1:NOT A CERTIFICATE")
    wallet.get_by_role("button", name="Add to the wallet").click()
    expect(notice).to_contain_text("This certificate cannot be read")
    expect(wallet.locator(".wallet-card")).to_have_count(1)
    wallet.evaluate("navigator.serviceWorker.ready.then(() => true)")
    holder.set_offline(True)
    wallet.reload()
    expect(wallet.locator(".wallet-card").first).to_contain_text("Fang Wang")

    checkpoint = browser.new_context(base_url=base_url)
    checkpoint.set_default_timeout(15_000)
    verifier = checkpoint.new_page()
    verifier.goto("/credentials/verify")
    expect(verifier.get_by_test_id("lists")).to_contain_text("document signer")
    verifier.get_by_role("button", name="New request").click()
    nonce = verifier.get_by_test_id("nonce").inner_text()

    wallet.locator(".wallet-card").first.get_by_role("button", name="Show").click()
    present = wallet.get_by_test_id("present")
    for private in ("Given name", "Family name", "Date of birth"):  # not shown unless ticked
        expect(present.get_by_label(private, exact=True)).not_to_be_checked()
    for extra in ("Country", "Manufacturer"):
        present.get_by_label(extra, exact=True).uncheck()
    present.get_by_label("The verifier's code").fill(nonce.lower())
    present.get_by_role("button", name="Make the QR code").click()
    expect(wallet.get_by_test_id("shown")).to_contain_text(nonce)
    looked_at(wallet, "presentation")
    image = tmp_path / "presentation.png"
    wallet.get_by_test_id("presentation-qr").screenshot(path=str(image))

    present.get_by_role("button", name="EU Digital COVID Certificate").click()
    expect(wallet.get_by_test_id("shown")).to_contain_text("As issued")
    assert wallet.get_by_test_id("presentation-text").input_value().startswith("HC1:")

    verifier.get_by_label("Or a photo of the QR code").set_input_files(str(image))
    verdict = verifier.get_by_test_id("verdict")
    expect(verdict).to_have_attribute("data-valid", "true")
    disclosed = verifier.get_by_test_id("disclosed")
    expect(disclosed.locator("dd[data-claim='vaccine']")).to_be_visible()
    expect(disclosed.locator("dd[data-claim='dose']")).to_be_visible()
    expect(verdict).not_to_contain_text("Wang")
    expect(verdict).not_to_contain_text("1990")
    expect(verdict).to_contain_text("proved, for this request")
    looked_at(verifier, "presentation-verified")

    verifier.get_by_role("button", name="New request").click()  # a replay answers no request
    verifier.get_by_role("button", name="Verify", exact=True).click()
    expect(verdict).to_have_attribute("data-valid", "false")
    expect(verifier.locator("#reasons li[data-detail='nonce']")).to_be_visible()
    holder.close()
    checkpoint.close()
