"""The API reads and answers the ledger's wire formats as the ledger's records: one
definition for the bytes, the decoding and the OpenAPI schema (api/bodies.py)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.ledger.receipt import Receipt
from healthledger.ledger.transaction import Transaction
from healthledger.node.embedded import EmbeddedNode
from tests.integration.test_api import signed, start_node
from tests.integration.test_api_problems import assert_problem, unchanged
from tests.support.members import member_reads

EPI = "gd-cdc/epi-wang"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """One node for the module."""
    started = start_node(tmp_path_factory.mktemp("records") / "node")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def client(node: EmbeddedNode) -> Iterator[TestClient]:
    """The API; server errors become 500 problems, not test errors."""
    with TestClient(create_api(node, demo_custody=False), raise_server_exceptions=False) as c:
        c.auth = member_reads(node)
        yield c


@pytest.fixture(scope="module")
def endorsed(client: TestClient, node: EmbeddedNode) -> dict[str, Any]:
    """A transaction the API endorsed, not yet submitted."""
    body = signed(node, EPI, "ward", "note", {"key": "records", "text": "x"})
    response = client.post("/api/v1/proposals/endorse", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert isinstance(answer, dict)
    return answer


def test_what_the_api_endorses_decodes_as_the_record_and_commits(
    client: TestClient, endorsed: dict[str, Any]
) -> None:
    tx = Transaction.from_json(endorsed)
    response = client.post("/api/v1/transactions", json=endorsed)
    assert response.status_code == 200, response.text
    receipt = Receipt.from_json(response.json())
    assert receipt.tx_id == tx.tx_id and receipt.valid
    fetched = client.get(f"/api/v1/transactions/{tx.tx_id}/receipt")
    assert Receipt.from_json(fetched.json()) == receipt


def test_a_malformed_transaction_lists_each_field(
    client: TestClient, node: EmbeddedNode, endorsed: dict[str, Any]
) -> None:
    body = copy.deepcopy(endorsed)
    body["signed_proposal"]["proposal"]["timestamp"] = -1
    body["endorsements"][0]["endorser"] = "Not An Id"
    body["response"]["rwset"]["writes"][0]["delete"] = False
    with unchanged(node):
        response = client.post("/api/v1/transactions", json=body)
    problem = assert_problem(response, 422, "validation-error")
    fields = {e["field"] for e in problem["errors"]}
    assert {
        "body.signed_proposal.proposal.timestamp",
        "body.endorsements.0.endorser",
        "body.response.rwset.writes.0.delete",
    } <= fields
    assert "Not An Id" not in response.text


def test_a_rule_the_schema_cannot_say_is_refused_with_its_path(
    client: TestClient, node: EmbeddedNode, endorsed: dict[str, Any]
) -> None:
    body = copy.deepcopy(endorsed)
    body["response"]["rwset"]["writes"][0]["key"] = "a\u0007b"
    with unchanged(node):
        response = client.post("/api/v1/transactions", json=body)
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"] == [
        {
            "field": "body.response.rwset.writes.0",
            "message": "rwset write key holds unprintable characters",
        }
    ]


def test_an_unsigned_transaction_is_401(
    client: TestClient, node: EmbeddedNode, endorsed: dict[str, Any]
) -> None:
    for signature in (None, ""):
        body = copy.deepcopy(endorsed)
        body["signed_proposal"]["signature"] = signature
        with unchanged(node):
            response = client.post("/api/v1/transactions", json=body)
        assert_problem(response, 401, "unsigned")


def test_a_query_takes_no_private_inputs(client: TestClient, node: EmbeddedNode) -> None:
    body = signed(node, EPI, "ward", "read_note", {"key": "records"})
    body["transient"] = {"_salt": "s"}
    response = client.post("/api/v1/query", json=body)
    problem = assert_problem(response, 422, "validation-error")
    assert [e["field"] for e in problem["errors"]] == ["body.transient"]


def test_a_body_that_is_not_json_is_refused(client: TestClient, node: EmbeddedNode) -> None:
    body = signed(node, EPI, "ward", "note", {"key": "records", "text": "x"})
    with unchanged(node):
        as_text = client.post("/api/v1/invoke", json=body, headers={"content-type": "text/plain"})
        empty = client.post(
            "/api/v1/invoke", content=b"", headers={"content-type": "application/json"}
        )
    assert_problem(as_text, 422, "validation-error")
    assert_problem(empty, 422, "validation-error")


def test_the_openapi_schemas_are_the_records(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]

    def body_ref(path: str) -> str:
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        return str(content["application/json"]["schema"]["$ref"])

    assert body_ref("/api/v1/transactions").endswith("/TransactionBody")
    assert body_ref("/api/v1/invoke").endswith("/SignedProposalBody")
    receipt = spec["paths"]["/api/v1/transactions/{tx_id}/receipt"]["get"]["responses"]["200"]
    assert receipt["content"]["application/json"]["schema"]["$ref"].endswith("/Receipt")
    assert schemas["Proposal"]["properties"]["nonce"]["pattern"] == "^[0-9a-f]{32}$"
    assert schemas["Transaction"]["additionalProperties"] is False
    # No pydantic copy of a wire format is left beside the records.
    assert not {"ProposalBody", "ReceiptOut", "EndorsementBody"} & set(schemas)
