"""The appeals page names who filed an appeal by the identity the contract records
(``filer``); an appeal recorded before the contract kept it, with its organisation alone
(``filed_by``), is still shown, by the organisation's name."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from healthledger.apps.credentials.healthcode_contract import APPEAL_ROLES, Grounds, HealthCode
from healthledger.apps.epidemic.contract import Epidemic
from healthledger.contracts.context import Context
from healthledger.contracts.contract import transaction
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.node.embedded import EmbeddedNode
from healthledger.web.console import create_console
from tests.apps.credentials.healthcode_support import (
    DOCTOR,
    EPI,
    confirmed_case,
    evaluate,
    pid_of,
    start,
)


class HealthCodeBeforeFiler(HealthCode):
    """The health code as it recorded appeals before it kept who filed them."""

    @transaction(roles=APPEAL_ROLES, kinds=("hospital",))
    def file_appeal(self, ctx: Context, *, pid: str, grounds: Grounds) -> dict[str, Any]:
        """File an appeal, recorded with the filing organisation only."""
        appeal = super().file_appeal(ctx, pid=pid, grounds=grounds)
        older = {k: v for k, v in appeal.items() if k != "filer"}
        ctx.put(f"appeal/{appeal['appeal_id']}", older)
        return older


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    contracts = (*SYSTEM_CONTRACTS, Epidemic, HealthCodeBeforeFiler)
    yield from start(tmp_path_factory.mktemp("appeal-filer") / "data", contracts=contracts)


def log_in(client: TestClient, identity: str) -> None:
    """Log in through the console's form, as a new session."""
    client.cookies.clear()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    answer = client.post("/login", data={"identity": identity, "csrf": token.group(1)})
    assert answer.status_code == 303


def test_an_appeal_recorded_without_its_filer_shows_the_organisation(node: EmbeddedNode) -> None:
    case = pid_of(node, 51)
    confirmed_case(node, 51, days_ago=1)
    evaluate(node, case)
    _, appeal = node.invoke(DOCTOR, "healthcode", "file_appeal",
                            {"pid": case, "grounds": "recovered"})  # fmt: skip
    stored = node.query(EPI, "healthcode", "appeals", {"status": "filed"})
    assert [("filer" in a, a["filed_by"]) for a in stored] == [(False, "gz-first-hospital")]

    with TestClient(create_console(node), follow_redirects=False) as client:
        log_in(client, EPI)
        answer = client.get("/credentials/healthcode/appeals")
    assert answer.status_code == 200, answer.text
    row = re.search(rf'<tr data-appeal="{appeal["appeal_id"]}">(.*?)</tr>', answer.text, re.S)
    assert row is not None
    by = re.search(r'<td data-label="By" data-by="([^"]*)">([^<]*)</td>', row.group(1))
    assert by is not None
    assert (by.group(1), html.unescape(by.group(2))) == (
        "gz-first-hospital",
        "Guangzhou First People's Hospital",
    )
