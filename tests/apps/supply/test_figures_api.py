"""The recall dashboard's figures as JSON (GET /api/v1/supply/recalls), from the same
function the recall page and the role homes call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.apps.supply.dashboards import recall_dashboard
from healthledger.apps.supply.verification import PublicLedger
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import GTIN, MAKER_OPS, REGULATOR
from tests.apps.supply.test_routes import COMMISSION, document, post
from tests.support.members import member_reads
from tests.support.seam import supply_seam


@pytest.fixture
def client(supply: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_api(supply, demo_custody=True)) as made:
        made.auth = member_reads(supply)
        yield made


def test_recalls_route_answers_the_recall_dashboard(
    client: TestClient, supply: EmbeddedNode
) -> None:
    assert client.get("/api/v1/supply/recalls").json() == []
    assert post(client, MAKER_OPS, document(COMMISSION)).status_code == 200
    recalled = client.post(
        "/api/v1/demo/invoke",
        json={
            "identity": REGULATOR,
            "contract": "supply",
            "function": "recall",
            "args": {"gtin": GTIN, "lot": "LOT7", "reason": "potency below specification"},
        },
    )
    assert recalled.status_code == 200, recalled.text
    answer = client.get("/api/v1/supply/recalls")
    assert answer.status_code == 200
    body = answer.json()
    assert body == recall_dashboard(PublicLedger(supply_seam(supply)))
    (recall,) = body
    assert recall["reason"] == "potency below specification" and recall["lot"] == "LOT7"
    assert recall["total"] == sum(recall["counts"].values()) >= 1
    assert isinstance(recall["at"], int)
