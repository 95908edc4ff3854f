"""The browser harness every console test shares: headless Debian Chromium driven by
Playwright, the console served by uvicorn on a thread over the module's own ``node``
fixture (each test module defines ``node``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from healthledger.node.embedded import EmbeddedNode
from healthledger.web.console import create_console

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def base_url(node: EmbeddedNode) -> Iterator[str]:
    """The console over ``node``, served on 127.0.0.1 and a port the OS picks."""
    config = uvicorn.Config(
        create_console(node),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="console-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    """A fresh context: no session cookie, nobody logged in."""
    context = browser.new_context(base_url=base_url)
    context.set_default_timeout(10_000)
    # a page that builds a dashboard or a work list on first load may take longer on a
    # busy two-core machine; waiting for it is not a statement about its speed
    context.set_default_navigation_timeout(45_000)
    opened = context.new_page()
    yield opened
    context.close()


def log_in(page: Page, identity: str) -> None:
    """Log in through the login page."""
    page.goto("/login")
    page.get_by_label("Identity (by organisation and role)").select_option(identity)
    page.get_by_role("button", name="Log in").click()
    # the header names the person in words; the identity id is its tooltip
    expect(page.get_by_test_id("viewer")).to_have_attribute("title", identity)
