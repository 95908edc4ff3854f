"""The supply forms refuse in words: a form error names its field, a contract's refusal
names products, places and members, never a stack trace; nothing is written."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

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
    commission,
    step,
    unit,
    with_check,
)
from tests.support.members import member_reads

BARE_SSCC = re.compile(r"(?<!\d)\d{18}(?!\d)")
"""An SSCC's 18 digits run together, as a person should never have to read them."""


@pytest.fixture
def console(supply: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_console(supply), follow_redirects=False) as client:
        client.auth = member_reads(supply)
        yield client


def log_in(client: TestClient, identity: str) -> str:
    """Log in; the session's CSRF token."""
    client.cookies.clear()
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post("/login", data={"identity": identity, "csrf": token[1], "next": "/"})
    assert answer.status_code == 303
    home = client.get("/supply/commission")
    found = re.search(r'name="csrf" value="([^"]+)"', home.text)
    assert found is not None
    return found[1]


def test_a_form_error_names_its_field(console: TestClient, supply: EmbeddedNode) -> None:
    csrf = log_in(console, MAKER_OPS)
    height = supply.peer.store.height()
    form = {"csrf": csrf, "product": GTIN, "lot": "two words", "expiry": "2099-12-31"}
    page = console.post("/supply/commission", data=form | {"count": "3", "place": PLANT})
    assert page.status_code == 422
    assert 'id="f-lot-error"' in page.text and "no spaces" in page.text
    assert 'data-testid="receipt"' not in page.text and "Traceback" not in page.text
    assert supply.peer.store.height() == height


def test_a_contract_refusal_is_said_with_names(console: TestClient, supply: EmbeddedNode) -> None:
    csrf = log_in(console, PHARMACY)
    height = supply.peer.store.height()
    form = {"csrf": csrf, "product": GTIN, "lot": "X1", "expiry": "2099-12-31", "count": "1"}
    page = console.post("/supply/commission", data=form | {"place": PHARMACY_GLN})
    assert page.status_code == 403
    reason = re.search(r'data-testid="refusal-reason">([^<]+)<', page.text)
    assert reason is not None
    assert "pack X1-001 of Influenza vaccine 0.5 ml" in reason[1]
    assert "Lingnan Biologics (vaccine maker)" in reason[1] and "lingnan-bio" not in reason[1]
    assert supply.peer.store.height() == height


def test_receiving_what_is_not_on_its_way_is_refused(
    console: TestClient, supply: EmbeddedNode
) -> None:
    commission(supply, "R1")
    csrf = log_in(console, PHARMACY)
    page = console.post("/supply/receive", data={"csrf": csrf, "unit": unit("R1")})
    assert page.status_code in (403, 409)
    assert "pack R1 of Influenza vaccine 0.5 ml is not in transit" in page.text


def test_a_case_is_named_by_its_sscc_as_people_read_it(
    console: TestClient, supply: EmbeddedNode
) -> None:
    commission(supply, "K1", "K2")
    digits = with_check("16951234000000077")  # inside the maker's prefix 6951234
    case = f"00/{digits}"
    capture(supply, MAKER_OPS, step("pack-k", "pack", [unit("K1"), unit("K2")], parent=case))
    readable = f"SSCC 1 6951234 000000077 {digits[-1]}"
    csrf = log_in(console, PHARMACY)
    refused = console.post("/supply/receive", data={"csrf": csrf, "unit": case})
    assert refused.status_code in (403, 409)
    reason = re.search(r'data-testid="refusal-reason">([^<]+)<', refused.text)
    assert reason is not None and f"case {readable} is not in transit" in reason[1]
    assert not BARE_SSCC.search(reason[1])
    traced = console.get(f"/supply/trace?unit={case}")
    heading = re.search(r"<h2>([^<]+)</h2>", traced.text)
    assert heading is not None and heading[1] == f"Case {readable}"
    pack = console.get(f"/supply/trace?unit={unit('K1')}")
    assert f">case {readable}</a>" in pack.text  # packed in it
    unknown = console.get(f"/supply/trace?unit=00/{with_check('16951234000000078')}")
    assert unknown.status_code == 404
    assert "No case SSCC 1 6951234 000000078 " in unknown.text
    for page in (refused, traced, pack, unknown):  # the unit id stays in links and fields
        shown = re.sub(r'(href|value)="[^"]*"', "", page.text)
        assert not BARE_SSCC.search(shown), BARE_SSCC.search(shown)


def test_an_unreadable_photo_is_a_clear_refusal(console: TestClient) -> None:
    csrf = log_in(console, PHARMACY)
    files = {"photo": ("pack.png", b"\x89PNG\r\n\x1a\n not an image", "image/png")}
    page = console.post("/supply/dispense", data={"csrf": csrf}, files=files)
    assert page.status_code == 422
    assert "not a readable image" in page.text


def test_quality_releases_a_quarantined_pack(console: TestClient, supply: EmbeddedNode) -> None:
    commission(supply, "H1", "H2")
    warm = step(
        "warm", "observe", [unit("H1"), unit("H2")], location=PLANT, temperatures_dc=[41, 118]
    )
    capture(supply, MAKER_OPS, warm)
    csrf = log_in(console, MAKER)
    holds = console.get("/supply/holds")
    assert holds.text.count('name="decision" value="release"') == 2
    decided = {"csrf": csrf, "unit": unit("H1"), "reason": "stability data cover it"}
    page = console.post("/supply/holds", data=decided | {"decision": "release"})
    assert page.status_code == 200 and 'data-testid="receipt"' in page.text
    assert page.text.count('name="decision" value="release"') == 1
    history = console.get(f"/api/v1/supply/units/{unit('H1')}/history").json()
    assert history["status"] == "genuine"
    csrf = log_in(console, MAKER_OPS)  # an operator may not decide
    page = console.post(
        "/supply/holds", data=decided | {"csrf": csrf, "unit": unit("H2"), "decision": "destroy"}
    )
    assert page.status_code == 403 and 'data-testid="refusal"' in page.text
    history = console.get(f"/api/v1/supply/units/{unit('H2')}/history").json()
    assert history["status"] == "quarantined"


def test_a_form_without_its_token_is_refused(console: TestClient, supply: EmbeddedNode) -> None:
    log_in(console, MAKER_OPS)
    height = supply.peer.store.height()
    page = console.post("/supply/recalls", data={"product": GTIN, "lot": "L1", "reason": "x"})
    assert page.status_code == 403
    assert supply.peer.store.height() == height


def test_the_forms_need_a_login(console: TestClient) -> None:
    for path in ("/supply/commission", "/supply/receive", "/supply/dispense", "/supply/holds"):
        answer = console.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
