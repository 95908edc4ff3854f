"""The public verify page: no login, a clear answer for good and bad URIs."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from healthledger.node.embedded import EmbeddedNode
from healthledger.web.console import create_console
from tests.apps.supply.conftest import GTIN, commission


@pytest.fixture
def console(supply: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_console(supply), follow_redirects=False) as client:
        yield client


def test_verify_page_needs_no_login(console: TestClient, supply: EmbeddedNode) -> None:
    empty = console.get("/supply/verify")
    assert empty.status_code == 200 and 'id="pack-form"' in empty.text
    commission(supply, "P1", expiry="2099-12-31")
    uri = f"https://id.gs1.org/01/{GTIN}/10/L1/21/P1?17=991231"
    page = console.get(f"/supply/verify?uri={quote(uri, safe='')}")
    assert page.status_code == 200
    assert 'id="pack-status">genuine<' in page.text
    assert "made (commissioned)" in page.text and "Lingnan Biologics" in page.text
    assert 'id="pack-advice"' in page.text
    unknown = console.get(f"/supply/verify?uri={quote(uri.replace('P1', 'P9'), safe='')}")
    assert 'id="pack-status">unknown<' in unknown.text


def test_bad_uri_is_a_clear_answer(console: TestClient) -> None:
    page = console.get("/supply/verify?uri=https%3A%2F%2Fexample.com%2Fnot-a-pack")
    assert page.status_code == 422
    assert "not a pack" in page.text and "Traceback" not in page.text
