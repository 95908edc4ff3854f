"""The web console in process (no browser): sessions, CSRF, redirects, error pages.

The browser tests in tests/browser drive the same pages in Chromium.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from healthledger.node.embedded import EmbeddedNode
from healthledger.web.console import create_console
from healthledger.web.session import COOKIE_NAME, SessionSigner
from tests.integration.test_api import start_node

BANNER_START = "Demo custody mode: the server holds every demo identity"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """One node for the module."""
    started = start_node(tmp_path_factory.mktemp("console") / "node")
    yield started
    started.stop()


@pytest.fixture
def browser(node: EmbeddedNode) -> Iterator[TestClient]:
    """A fresh console client that does not follow redirects."""
    with TestClient(create_console(node), follow_redirects=False) as client:
        yield client


def csrf_of(html: str) -> str:
    """The CSRF token in a page's forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def log_in(client: TestClient, identity: str, next_path: str = "/") -> None:
    """Log in through the form."""
    page = client.get("/login")
    response = client.post(
        "/login", data={"identity": identity, "csrf": csrf_of(page.text), "next": next_path}
    )
    assert response.status_code == 303


def test_pages_need_a_login_and_return_to_where_they_were(browser: TestClient) -> None:
    response = browser.get("/blocks?from=0&order=asc")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/blocks%3Ffrom%3D0%26order%3Dasc"
    log_in(browser, "gd-cdc/admin", "/blocks?from=0&order=asc")
    page = browser.get("/blocks?from=0&order=asc")
    assert page.status_code == 200 and "gd-cdc/admin" in page.text


def test_every_page_states_demo_custody(browser: TestClient) -> None:
    assert BANNER_START in browser.get("/login").text
    assert BANNER_START in browser.get("/verify").text
    log_in(browser, "gd-cdc/admin")
    for path in ("/", "/blocks", "/blocks/0", "/consortium"):
        assert BANNER_START in browser.get(path).text, path


def test_login_never_redirects_off_site(browser: TestClient) -> None:
    page = browser.get("/login")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = browser.post(
            "/login", data={"identity": "gd-cdc/admin", "csrf": csrf_of(page.text), "next": target}
        )
        assert response.headers["location"] == "/", target


def test_tampered_or_foreign_cookies_are_ignored(browser: TestClient, node: EmbeddedNode) -> None:
    log_in(browser, "gd-cdc/epi-wang")
    genuine = browser.cookies[COOKIE_NAME]
    assert browser.get("/explorer").status_code == 200
    payload, mac = genuine.split(".")
    forged = SessionSigner().issue("gd-mpa/admin")
    for cookie in (f"{payload}x.{mac}", f"{payload}.{mac[:-2]}AA", forged, "garbage"):
        browser.cookies.clear()
        browser.cookies.set(COOKIE_NAME, cookie)
        assert browser.get("/explorer").status_code == 303, cookie
        assert 'data-testid="viewer"' not in browser.get("/").text, cookie


def test_unknown_identity_cannot_log_in(browser: TestClient) -> None:
    page = browser.get("/login")
    response = browser.post(
        "/login", data={"identity": "gd-cdc/mallory", "csrf": csrf_of(page.text)}
    )
    assert response.status_code == 403 and "No demo key is held" in response.text
    assert COOKIE_NAME not in response.cookies


def test_forms_without_the_csrf_token_are_refused(browser: TestClient, node: EmbeddedNode) -> None:
    log_in(browser, "gz-first-hospital/admin")
    height = node.peer.store.height()
    response = browser.post(
        "/consortium/revoke",
        data={"identity": "gz-first-hospital/dr-li", "reason": "csrf", "csrf": "forged"},
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "the form has expired" in response.text
    assert node.peer.store.height() == height
    places = response.text.split('data-testid="places"', 1)[1]
    for href in ('href="/"', 'href="/verify"', 'href="/supply/verify"', 'href="/epidemic/public"'):
        assert href in places, href


def test_the_logged_out_home_and_the_login_page_offer_the_public_pages(
    browser: TestClient,
) -> None:
    for path in ("/", "/login"):
        page = browser.get(path)
        assert page.status_code == 200
        entries = page.text.split('data-testid="public-entries"', 1)[1]
        for href in ("/verify", "/supply/verify", "/epidemic/public"):
            assert f'href="{href}"' in entries, (path, href)
    assert 'href="/login"' in browser.get("/").text


def test_a_person_lands_on_their_home_with_the_explorer_one_click_away(
    browser: TestClient,
) -> None:
    log_in(browser, "gd-commission/admin")
    home = browser.get("/")
    assert home.status_code == 200 and "<h1>Today</h1>" in home.text
    assert 'href="/explorer"' in home.text and 'href="/consortium"' in home.text
    assert "Ledger explorer" in browser.get("/explorer").text


def test_revoke_form_shows_the_contract_refusal(browser: TestClient, node: EmbeddedNode) -> None:
    log_in(browser, "gd-insurance/adjuster-sun")
    csrf = csrf_of(browser.get("/consortium").text)
    height = node.peer.store.height()
    response = browser.post(
        "/consortium/revoke",
        data={"identity": "gd-insurance/admin", "reason": "coup", "csrf": csrf},
    )
    assert response.status_code == 403
    assert "Refused: Access denied" in response.text
    assert "only an admin of its organisation or of a regulator may revoke" in response.text
    assert node.peer.store.height() == height


def test_regulator_admin_may_revoke_in_another_org(browser: TestClient, node: EmbeddedNode) -> None:
    log_in(browser, "gd-mpa/admin")
    csrf = csrf_of(browser.get("/consortium").text)
    response = browser.post(
        "/consortium/revoke",
        data={"identity": "gd-redcross/accountant-zhou", "reason": "audit finding", "csrf": csrf},
    )
    assert response.status_code == 200 and "Revoked <strong>gd-redcross/accountant-zhou" in (
        response.text
    )
    again = browser.post(
        "/consortium/revoke",
        data={"identity": "gd-redcross/accountant-zhou", "reason": "twice", "csrf": csrf},
    )
    assert again.status_code == 409 and "already revoked" in again.text


def test_errors_are_pages_off_the_api_and_problems_on_it(browser: TestClient) -> None:
    log_in(browser, "gd-cdc/admin")
    page = browser.get("/blocks/9999")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "no block at height 9999" in page.text and "Traceback" not in page.text
    api = browser.get("/api/v1/blocks/9999")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


def test_verify_page_is_public(browser: TestClient, node: EmbeddedNode) -> None:
    tx_id = node.peer.block(0).transactions[0].tx_id
    response = browser.get(f"/verify?q={tx_id}")
    assert response.status_code == 200 and "<h2>Verified</h2>" in response.text
    posted = browser.post("/verify", data={"submission": "not a proof"})
    assert posted.status_code == 200 and "<h2>Not verified</h2>" in posted.text


def test_without_demo_custody_pages_are_read_only(node: EmbeddedNode) -> None:
    with TestClient(create_console(node, demo_custody=False), follow_redirects=False) as client:
        home = client.get("/")
        assert home.status_code == 200
        assert BANNER_START not in home.text
        assert 'id="revoke-form"' not in client.get("/consortium").text
        assert client.get("/api/v1/status").json()["custody"] == "client"
        login = client.get("/login").text
        assert login.count("<option") == 0 and "Demo custody is off" in login


def test_sessions_expire() -> None:
    now = [1_000_000.0]
    signer = SessionSigner(max_age_s=60, clock=lambda: now[0])
    cookie = signer.issue("gd-cdc/admin")
    assert signer.read(cookie) == "gd-cdc/admin"
    now[0] += 61
    assert signer.read(cookie) is None
    assert signer.check_csrf("gd-cdc/admin", signer.csrf_token("gd-cdc/admin"))
    assert not signer.check_csrf("gd-cdc/admin", signer.csrf_token("gd-mpa/admin"))


def test_a_regulators_home_opens_on_the_ledgers_integrity(browser: TestClient) -> None:
    log_in(browser, "gd-mpa/inspector-feng")
    home = browser.get("/")
    assert home.status_code == 200
    assert "Integrity of the ledger" in home.text
    assert "single node" in home.text and "healthledger verify" in home.text
    browser.cookies.clear()
    log_in(browser, "gd-cdc/epi-wang")
    assert "Integrity of the ledger" not in browser.get("/").text
