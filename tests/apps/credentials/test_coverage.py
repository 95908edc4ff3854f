"""Doses due over a real node: the CDC's coverage by region through the API (``GET
/api/v1/credentials/coverage``) and its page, from doses recorded through the epidemic
contract and populations recorded by the commission, with problems for bad filters and
callers; a holder's own doses due from a bound credential (``POST .../doses-due``)."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from healthledger.apps.credentials.app import APP as CREDENTIALS
from healthledger.apps.credentials.coverage import iso
from healthledger.apps.credentials.doses_due import AUDIENCE
from healthledger.apps.credentials.service import CredentialService
from healthledger.apps.epidemic.batch import commit_all
from healthledger.apps.epidemic.observations import VACCINATING_ROLES
from healthledger.apps.epidemic.simulate import DEMO_PARAMS, covid_series_calls, staff_of
from healthledger.crypto import sdjwt
from healthledger.crypto.jose import Jwk
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.seam import attach
from healthledger.web.console import create_console
from tests.apps.credentials.support import HOLDER, NURSE
from tests.apps.epidemic.support import person, today
from tests.support.seam import epidemic_seam

EPI = "gd-cdc/epi-wang"
URL = "/api/v1/credentials/coverage"
DUE = "/api/v1/credentials/doses-due"
# (serial, region, days ago of each COVID-19 dose): overdue, due, complete, an early
# second dose (so still overdue), complete in Tianhe, and an influenza dose (not COVID).
PEOPLE = (
    (601, "440104", (70,)),
    (602, "440104", (30,)),
    (603, "440104", (60, 35)),
    (604, "440104", (64, 50)),
    (605, "440106", (40, 12)),
)


def _dose(node: EmbeddedNode, serial: int, region: str, number: int, ago: int, cvx: str) -> str:
    args: dict[str, Any] = {"vaccine": cvx, "dose_number": number,
                            "administered_date": today(node) - ago, "region": region}  # fmt: skip
    _, result = node.invoke(NURSE, "epidemic", "record_vaccination", args,
                            transient={"patient": person(serial)})  # fmt: skip
    return str(result["vaccination_id"])


def log_in(client: TestClient, identity: str) -> None:
    """Log in through the console's form, as a new session."""
    client.cookies.clear()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    answer = client.post("/login", data={"identity": identity, "csrf": token.group(1)})
    assert answer.status_code == 303


@pytest.fixture(scope="module")
def client(ledger: EmbeddedNode) -> Iterator[TestClient]:
    for serial, region, days in PEOPLE:
        for number, ago in enumerate(days, start=1):
            _dose(ledger, serial, region, number, ago, "510")
    _dose(ledger, 606, "440104", 1, 10, "150")
    populations = [{"region": "440104", "population": 400}, {"region": "440106", "population": 200}]
    args = {"populations": populations, "source": "test denominators", "year": 2026}
    ledger.invoke("gd-commission/admin", "epidemic", "define_population", args)
    with TestClient(create_console(ledger), follow_redirects=False) as c:
        log_in(c, EPI)  # a console session reads the API as its identity
        yield c


def _rows(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["code"]: row for row in answer["rows"]}


def test_coverage_by_district_counts_complete_due_and_overdue(client: TestClient) -> None:
    answer = client.get(URL, params={"identity": EPI, "region": "440100"})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["vaccine"]["id"] == "covid-19" and found["region"]["code"] == "440100"
    yuexiu, tianhe = _rows(found)["440104"], _rows(found)["440106"]
    assert {k: yuexiu[k] for k in ("started", "complete", "up_to_date", "due", "overdue")} == {
        "started": 4, "complete": 1, "up_to_date": 1, "due": 1, "overdue": 2,
    }  # fmt: skip
    assert (yuexiu["population"], yuexiu["overdue_pct"], yuexiu["complete_pct"]) == (400, 0.5, 0.25)
    assert yuexiu["population_source"] == "test denominators (2026)"
    assert (tianhe["complete"], tianhe["overdue"], tianhe["complete_pct"]) == (1, 0, 0.5)
    assert found["rows"][0]["code"] == "440104"  # worst gap first
    province = client.get(URL, params={"identity": EPI}).json()
    assert (
        _rows(province)["440100"]["started"] == 5 and _rows(province)["440100"]["population"] == 600
    )
    flu = client.get(URL, params={"identity": EPI, "vaccine": "influenza", "region": "440100"})
    assert _rows(flu.json())["440104"]["complete"] == 1


def test_an_earlier_day_leaves_out_later_doses(client: TestClient, ledger: EmbeddedNode) -> None:
    earlier = iso(today(ledger) - 45)
    found = client.get(URL, params={"identity": EPI, "region": "440100", "as_of": earlier}).json()
    yuexiu = _rows(found)["440104"]
    assert (yuexiu["started"], yuexiu["complete"], yuexiu["overdue"]) == (3, 0, 0)
    assert found["as_of"] == earlier


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"vaccine": "smallpox"}, "query.vaccine"),
        ({"region": "44010"}, "query.region"),
        ({"region": "450000"}, "query.region"),
        ({"as_of": "2026-13-01"}, "query.as_of"),
        ({"as_of": "2999-01-01"}, "query.as_of"),
    ],
)
def test_bad_filters_are_problems_naming_the_field(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    answer = client.get(URL, params={"identity": EPI, **params})
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in answer.json()["errors"]] == [field]


def test_a_hospital_is_refused_the_regional_figure(client: TestClient) -> None:
    answer = client.get(URL, params={"identity": NURSE})
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert client.get(URL, params={"identity": "gd-cdc/nobody"}).status_code == 403


def test_the_console_page_shows_the_same_figure_and_names_a_bad_filter(client: TestClient) -> None:
    figure = client.get(URL, params={"identity": EPI, "region": "440100"}).json()
    page = client.get("/credentials/coverage", params={"region": "440100"})
    assert page.status_code == 200
    row = re.search(r'<tr data-region="440104"[^>]*>(.*?)</tr>', page.text, re.S)
    assert row is not None and "Yuexiu (440104)" in row.group(1)
    overdue = re.search(r'data-testid="overdue">(\d+)', row.group(1))
    assert overdue is not None and int(overdue.group(1)) == _rows(figure)["440104"]["overdue"]
    refused = client.get("/credentials/coverage", params={"as_of": "someday"})
    assert refused.status_code == 422 and "a date, YYYY-MM-DD" in refused.text


def test_the_demo_covid_series_leaves_second_doses_overdue(
    client: TestClient, ledger: EmbeddedNode
) -> None:
    epidemic = epidemic_seam(ledger)
    orgs = {f"org/{h}": {"region": r} for h, r in (("gz-first-hospital", "440100"),)}
    staff = staff_of(epidemic, ["gz-first-hospital"], VACCINATING_ROLES)
    before = client.get(URL, params={"identity": EPI}).json()["total"]
    calls = covid_series_calls(["440104", "440106"], staff, orgs, random.Random(7), DEMO_PARAMS,
                               [], today=today(ledger))  # fmt: skip
    assert all(commit_all(epidemic, calls))
    after = client.get(URL, params={"identity": EPI}).json()["total"]
    assert after["started"] - before["started"] == DEMO_PARAMS.covid_first_doses
    assert after["overdue"] > before["overdue"] and after["complete"] > before["complete"]


HOLDER_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def bound(client: TestClient, ledger: EmbeddedNode) -> str:
    """A COVID-19 vaccination credential (dose 1, 40 days ago) bound to HOLDER_KEY, of a
    person whose second dose is due; another person's doses are on the ledger too."""
    _dose(ledger, 612, "440304", 1, 70, "510")
    vaccination_id = _dose(ledger, 611, "440304", 1, 40, "510")
    _dose(ledger, 611, "440304", 1, 200, "150")
    service = CredentialService(attach(ledger, CREDENTIALS))
    fact = service.fact(NURSE, "vaccination", vaccination_id)
    key = Jwk.of(HOLDER_KEY.public_key())
    prepared = service.prepare(NURSE, "vaccination", fact, HOLDER, source_id=vaccination_id,
                               formats=("sd-jwt-vc",), holder_key=key)  # fmt: skip
    call = prepared.call
    ledger.invoke(call.identity, call.contract, call.function, call.args, transient=call.transient)
    return prepared.texts["sd-jwt-vc"]


def _present(ledger: EmbeddedNode, text: str, *, aud: str = AUDIENCE, ago: int = 0,
             key: ec.EllipticCurvePrivateKey | None = HOLDER_KEY) -> str:  # fmt: skip
    return sdjwt.present(text, disclose=lambda d: False, holder_key=key, audience=aud,
                         nonce="-", issued_at=ledger.clock() // 1000 - ago)  # fmt: skip


def test_the_holder_sees_only_their_own_doses_due(
    client: TestClient, ledger: EmbeddedNode, bound: str
) -> None:
    answer = client.post(DUE, json={"presentation": _present(ledger, bound)})
    assert answer.status_code == 200, answer.text
    series = {s["vaccine"]: s for s in answer.json()["series"]}
    covid = series["covid-19"]
    first = today(ledger) - 40
    assert (covid["status"], covid["doses"]) == ("due", [iso(first)])
    assert covid["next"]["due"] == iso(first + 28) and covid["next"]["overdue_from"] == iso(
        first + 56
    )
    assert series["influenza"]["status"] == "complete"  # the person's other vaccine
    assert "pid" not in answer.text and "440304" not in answer.text


@pytest.mark.parametrize(
    "bad",
    [{"aud": "https://checkpoint.example/gate"}, {"ago": 3600}, {"key": None}],
    ids=["another-audience", "stale", "no-key-binding"],
)
def test_a_presentation_that_proves_no_holder_is_refused(
    client: TestClient, ledger: EmbeddedNode, bound: str, bad: dict[str, Any]
) -> None:
    answer = client.post(DUE, json={"presentation": _present(ledger, bound, **bad)})
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "KEY_BINDING" in answer.json()["detail"]
    garbage = client.post(DUE, json={"presentation": "not a credential"})
    assert garbage.status_code == 403
