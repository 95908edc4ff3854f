"""Screenshots of console pages for people to look at: every browser test writes each
page it visits at a desktop width (1280 px) and a phone width (390 px) into
``test-artifacts/screens/<test>/``, a folder the test run keeps (and git ignores)."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

SCREENS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screens"
WIDTHS = (1280, 390)
"""Desktop and phone widths, in CSS pixels."""
PHONE_HEIGHT = 844
DESKTOP_HEIGHT = 900
FITS = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
SETTLE_MS = 3_000
"""How long a page may take to fit a new viewport: a chart sized to its container redraws
after the resize, not at once."""


def _test_name() -> str:
    current = os.environ.get("PYTEST_CURRENT_TEST", "unnamed")
    test = current.split(" ", 1)[0].rsplit("::", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", test)


def shoot(page: Page, name: str) -> list[Path]:
    """Write the page as it is now at each width (full page) as
    ``<name>-<width>.png``; returns the files. The viewport is put back afterwards."""
    folder = SCREENS / _test_name()
    folder.mkdir(parents=True, exist_ok=True)
    _charts_drawn(page)
    before = page.viewport_size
    written = []
    for width in WIDTHS:
        page.set_viewport_size(
            {"width": width, "height": PHONE_HEIGHT if width < 600 else DESKTOP_HEIGHT}
        )
        with contextlib.suppress(PlaywrightTimeout):  # charts redraw for the new width
            page.wait_for_function(FITS, timeout=SETTLE_MS)
        target = folder / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}-{width}.png"
        page.screenshot(path=str(target), full_page=True)
        written.append(target)
    if before is not None:
        page.set_viewport_size(before)
    return written


CHARTS_DRAWN = """() => [...document.querySelectorAll('[data-chart]')]
    .every(box => box.querySelector('svg, canvas') || box.textContent.trim())"""
"""Every chart box of the page holds its drawing (or a message in words)."""


def _charts_drawn(page: Page, timeout_ms: float = 10_000) -> None:
    """Wait (bounded) until the page's Vega charts are drawn: a picture taken before
    that shows blank boxes. A chart still not drawn is photographed as it is."""
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(CHARTS_DRAWN, timeout=timeout_ms)


def overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than its viewport (0: it fits); a table
    scrolling inside its own box does not count. A page still wider once it has had
    :data:`SETTLE_MS` to lay itself out again counts as it is then."""
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(FITS, timeout=SETTLE_MS)
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def phone_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than a 390 px phone screen (0: it fits);
    a table scrolling inside its own box does not count. The viewport is put back."""
    before = page.viewport_size
    page.set_viewport_size({"width": 390, "height": PHONE_HEIGHT})
    try:
        return overflow(page)
    finally:
        if before is not None:
            page.set_viewport_size(before)


def wide_elements(page: Page, width: int = 390) -> list[str]:
    """The innermost elements reaching past a ``width`` px screen (to say what to fix)."""
    before = page.viewport_size
    page.set_viewport_size({"width": width, "height": PHONE_HEIGHT})
    try:
        found: list[str] = page.evaluate(
            """(width) => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > width + 0.5
                    && ![...e.children].some(c => c.getBoundingClientRect().right > width + 0.5)
                    && !e.closest('table.data'))
                .slice(0, 8)
                .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                    + (e.className ? '.' + String(e.className).split(' ').join('.') : ''))""",
            width,
        )
        return found
    finally:
        if before is not None:
            page.set_viewport_size(before)
