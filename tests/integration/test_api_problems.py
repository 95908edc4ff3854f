"""Every bad input gets the right status and RFC 9457 problem details, and changes nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.crypto.keys import SigningKey
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.transaction import Proposal, SignedProposal
from healthledger.node.embedded import EmbeddedNode
from tests.integration.test_api import CONTRACTS, signed, start_node
from tests.support.members import member_reads


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """One node for the module."""
    started = start_node(tmp_path_factory.mktemp("problems") / "node")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def client(node: EmbeddedNode) -> Iterator[TestClient]:
    """The API with demo custody; server errors become 500 problems, not test errors."""
    with TestClient(create_api(node, demo_custody=True), raise_server_exceptions=False) as c:
        c.auth = member_reads(node)
        yield c


def ledger_state(node: EmbeddedNode) -> tuple[Any, ...]:
    """Height, head hash and every key of every namespace the tests touch."""
    store = node.peer.store
    head = store.head()
    keys = [
        (ns, key, value.value, value.version)
        for ns in ("membership", "lifecycle", "ward")
        for key, value in store.range_state(ns, "", "", 100_000)
    ]
    return store.height(), None if head is None else head.hash, keys


@contextmanager
def unchanged(node: EmbeddedNode) -> Iterator[None]:
    """Assert the block suite leaves the ledger exactly as it was."""
    before = ledger_state(node)
    yield
    node.peer.events.wait_for_height(node.peer.store.height(), 0.1)
    assert ledger_state(node) == before, "a refused request changed the ledger"


def assert_problem(response: httpx.Response, status: int, slug: str | None) -> dict[str, Any]:
    """The response is problem details of ``slug`` with ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    if slug is not None:
        assert body["type"] == f"/api/v1/problems/{slug}"
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


def endorsed(client: TestClient, node: EmbeddedNode, creator: str, key: str) -> dict[str, Any]:
    """An endorsed, unsubmitted ward.note transaction."""
    proposal = signed(node, creator, "ward", "note", {"key": key, "text": "x"})
    response = client.post("/api/v1/proposals/endorse", json=proposal)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def flip(signature: str) -> str:
    """The signature with one byte changed."""
    raw = bytearray(base64.b64decode(signature))
    raw[10] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


# --- malformed requests ---------------------------------------------------------------


def test_malformed_json_is_400(client: TestClient, node: EmbeddedNode) -> None:
    with unchanged(node):
        response = client.post(
            "/api/v1/invoke", content=b'{"proposal": ', headers={"content-type": "application/json"}
        )
    assert_problem(response, 400, "malformed-json")


def test_wrong_types_are_422_with_each_field(client: TestClient, node: EmbeddedNode) -> None:
    body = signed(node, "gd-cdc/epi-wang", "ward", "note", {"key": "t", "text": "x"})
    body["proposal"]["timestamp"] = str(body["proposal"]["timestamp"])
    body["proposal"]["nonce"] = "not-hex"
    body["extra"] = 1
    with unchanged(node):
        response = client.post("/api/v1/invoke", json=body)
    problem = assert_problem(response, 422, "validation-error")
    fields = {e["field"] for e in problem["errors"]}
    assert {"body.proposal.timestamp", "body.proposal.nonce", "body.extra"} <= fields


def test_query_parameter_of_wrong_type_is_422(client: TestClient) -> None:
    problem = assert_problem(client.get("/api/v1/blocks?limit=lots"), 422, "validation-error")
    assert problem["errors"][0]["field"] == "query.limit"


def test_floats_and_duplicate_keys_are_not_canonical(
    client: TestClient, node: EmbeddedNode
) -> None:
    body = signed(node, "gd-cdc/epi-wang", "ward", "note", {"key": "f", "text": "x"})
    text = json.dumps(body).replace('"text": "x"', '"text": "x", "dose": 0.5')
    with unchanged(node):
        floats = client.post(
            "/api/v1/invoke", content=text, headers={"content-type": "application/json"}
        )
        dupes = client.post(
            "/api/v1/invoke",
            content=json.dumps(body)[:-1] + ', "signature": "AAAA"}',
            headers={"content-type": "application/json"},
        )
    assert_problem(floats, 422, "non-canonical")
    assert_problem(dupes, 422, "non-canonical")


def test_body_too_large_is_413_without_reading_it(client: TestClient, node: EmbeddedNode) -> None:
    huge = b'{"proposal": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    with unchanged(node):
        declared = client.post(
            "/api/v1/invoke", content=huge, headers={"content-type": "application/json"}
        )

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(huge), 64 * 1024):
                yield huge[start : start + 64 * 1024]

        streamed = client.post(
            "/api/v1/transactions", content=chunks(), headers={"content-type": "application/json"}
        )
    assert_problem(declared, 413, "payload-too-large")
    assert declared.request.headers["content-length"] == str(len(huge))
    assert_problem(streamed, 413, "payload-too-large")
    assert streamed.request.headers["transfer-encoding"] == "chunked"


def test_unknown_route_and_method(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not-found")
    assert_problem(client.delete("/api/v1/status"), 405, "method-not-allowed")


# --- contract errors ----------------------------------------------------------------


def test_unknown_contract_and_function_are_404(client: TestClient, node: EmbeddedNode) -> None:
    with unchanged(node):
        contract = client.post(
            "/api/v1/invoke", json=signed(node, "gd-cdc/epi-wang", "pharmacy", "sell", {})
        )
        function = client.post(
            "/api/v1/invoke", json=signed(node, "gd-cdc/epi-wang", "ward", "discharge", {})
        )
        as_query = client.post(
            "/api/v1/query", json=signed(node, "gd-cdc/epi-wang", "ward", "note", {})
        )
    assert_problem(contract, 404, "unknown-contract")
    assert_problem(function, 404, "unknown-function")
    assert_problem(as_query, 404, "unknown-function")


def test_invalid_arguments_are_422_with_each_field(client: TestClient, node: EmbeddedNode) -> None:
    with unchanged(node):
        response = client.post(
            "/api/v1/invoke",
            json=signed(node, "gd-cdc/epi-wang", "ward", "note", {"key": 7, "colour": "red"}),
        )
    problem = assert_problem(response, 422, "invalid-arguments")
    assert {e["field"] for e in problem["errors"]} == {"args.key", "args.text", "args.colour"}


def test_role_refused_by_contract_is_403(client: TestClient, node: EmbeddedNode) -> None:
    args = {"identity": "gz-first-hospital/lab-huang", "reason": "no"}
    with unchanged(node):
        response = client.post(
            "/api/v1/invoke",
            json=signed(node, "gz-first-hospital/dr-li", "membership", "revoke_identity", args),
        )
    assert "only an admin" in assert_problem(response, 403, "access-denied")["detail"]


def test_business_rule_refusal_is_409(client: TestClient, node: EmbeddedNode) -> None:
    args = {"identity": "gz-first-hospital/nobody", "reason": "no"}
    with unchanged(node):
        response = client.post(
            "/api/v1/invoke",
            json=signed(node, "gz-first-hospital/admin", "membership", "revoke_identity", args),
        )
    assert "not registered" in assert_problem(response, 409, "rejected")["detail"]


def test_unsatisfiable_policy_is_422(client: TestClient, node: EmbeddedNode) -> None:
    with unchanged(node):
        response = client.post(
            "/api/v1/invoke", json=signed(node, "gd-cdc/epi-wang", "ward", "escalate", {"key": "a"})
        )
    assert "no-such-org.peer" in assert_problem(response, 422, "endorsement-failed")["detail"]


def test_contract_bug_is_500_without_trace(client: TestClient, node: EmbeddedNode) -> None:
    with unchanged(node):
        response = client.post(
            "/api/v1/invoke", json=signed(node, "gd-cdc/epi-wang", "ward", "crash", {})
        )
    assert_problem(response, 500, "contract-failure")


def test_internal_error_is_500_without_detail(node: EmbeddedNode) -> None:
    app = create_api(node)

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret at /etc/healthledger/keystore.json")

    with TestClient(app, raise_server_exceptions=False) as plain:
        plain.auth = member_reads(node)
        response = plain.get("/api/v1/boom")
    problem = assert_problem(response, 500, "internal-error")
    assert "secret" not in response.text and problem["error_id"] in problem["detail"]


# --- identity and signatures ------------------------------------------------------------


def test_forged_signature_is_401(client: TestClient, node: EmbeddedNode) -> None:
    body = signed(node, "gd-cdc/epi-wang", "ward", "note", {"key": "s", "text": "x"})
    body["signature"] = flip(body["signature"])
    with unchanged(node):
        response = client.post("/api/v1/invoke", json=body)
    assert_problem(response, 401, "bad-signature")
    assert response.headers["www-authenticate"].startswith("Signature")


def test_missing_signature_is_401(client: TestClient, node: EmbeddedNode) -> None:
    body = signed(node, "gd-cdc/epi-wang", "ward", "note", {"key": "s", "text": "x"})
    del body["signature"]
    with unchanged(node):
        response = client.post("/api/v1/query", json=body)
    assert_problem(response, 401, "unsigned")


def test_signature_by_another_key_is_401(client: TestClient, node: EmbeddedNode) -> None:
    args = {"key": "s", "text": "x"}
    proposal = Proposal("ward", "note", args, "gd-cdc/epi-wang", "0" * 32, node.clock())
    forged = SignedProposal.sign(proposal, SigningKey.generate()).to_json()
    with unchanged(node):
        response = client.post("/api/v1/invoke", json=forged)
    assert_problem(response, 401, "bad-signature")


def test_unknown_identity_is_403(client: TestClient, node: EmbeddedNode) -> None:
    args = {"key": "u", "text": "x"}
    proposal = Proposal("ward", "note", args, "gd-cdc/mallory", "1" * 32, node.clock())
    body = SignedProposal.sign(proposal, SigningKey.generate()).to_json()
    with unchanged(node):
        response = client.post("/api/v1/invoke", json=body)
    assert "not a registered identity" in assert_problem(response, 403, "access-denied")["detail"]


def test_stale_timestamp_is_400(client: TestClient, node: EmbeddedNode) -> None:
    entry = node.keystore.get("gd-cdc/epi-wang")
    assert entry is not None
    proposal = Proposal("ward", "note", {"key": "o", "text": "x"}, entry.id, "2" * 32, 1000)
    with unchanged(node):
        response = client.post(
            "/api/v1/invoke", json=SignedProposal.sign(proposal, entry.key).to_json()
        )
    assert "clock" in assert_problem(response, 400, "bad-request")["detail"]


def test_revoked_identity_is_403(client: TestClient, node: EmbeddedNode) -> None:
    pending = endorsed(client, node, "gz-first-hospital/nurse-lin", "before-revocation")
    revoke = client.post(
        "/api/v1/invoke",
        json=signed(
            node,
            "gz-first-hospital/admin",
            "membership",
            "revoke_identity",
            {"identity": "gz-first-hospital/nurse-lin", "reason": "left the hospital"},
        ),
    )
    assert revoke.status_code == 200, revoke.text
    with unchanged(node):
        invoked = client.post(
            "/api/v1/invoke",
            json=signed(
                node, "gz-first-hospital/nurse-lin", "ward", "note", {"key": "r", "text": "x"}
            ),
        )
        submitted = client.post("/api/v1/transactions", json=pending)
        demo = client.post(
            "/api/v1/demo/invoke",
            json={
                "identity": "gz-first-hospital/nurse-lin",
                "contract": "ward",
                "function": "note",
                "args": {"key": "r", "text": "x"},
            },
        )
    assert "revoked" in assert_problem(invoked, 403, "access-denied")["detail"]
    assert_problem(submitted, 403, "access-denied")
    assert_problem(demo, 403, "access-denied")


# --- transactions -----------------------------------------------------------------------


def test_replayed_transaction_is_409(client: TestClient, node: EmbeddedNode) -> None:
    tx = endorsed(client, node, "gd-cdc/epi-wang", "replay")
    assert client.post("/api/v1/transactions", json=tx).status_code == 200
    with unchanged(node):
        again = client.post("/api/v1/transactions", json=tx)
        reendorse = client.post("/api/v1/proposals/endorse", json=tx["signed_proposal"])
    assert_problem(again, 409, "duplicate-transaction")
    assert_problem(reendorse, 409, "duplicate-transaction")


def test_forged_transaction_signature_is_401(client: TestClient, node: EmbeddedNode) -> None:
    tx = endorsed(client, node, "gd-cdc/epi-wang", "forged-tx")
    tx["signed_proposal"]["signature"] = flip(tx["signed_proposal"]["signature"])
    with unchanged(node):
        response = client.post("/api/v1/transactions", json=tx)
    assert_problem(response, 401, "bad-signature")


def test_tampered_response_is_a_bad_endorsement(client: TestClient, node: EmbeddedNode) -> None:
    tx = endorsed(client, node, "gd-cdc/epi-wang", "tampered")
    tx["response"]["rwset"]["writes"][0]["value"]["text"] = "changed after endorsement"
    with unchanged(node):
        response = client.post("/api/v1/transactions", json=tx)
    assert_problem(response, 400, "bad-endorsement")


def test_missing_endorsements_fail_the_policy(client: TestClient, node: EmbeddedNode) -> None:
    tx = endorsed(client, node, "gd-cdc/epi-wang", "unendorsed")
    tx["endorsements"] = []
    with unchanged(node):
        response = client.post("/api/v1/transactions", json=tx)
    assert_problem(response, 422, "endorsement-failed")


def test_stale_read_is_409_conflict(client: TestClient, node: EmbeddedNode) -> None:
    args = {"identity": "sz-peoples-hospital/lab-wu", "reason": "moved"}
    first = client.post(
        "/api/v1/proposals/endorse",
        json=signed(node, "sz-peoples-hospital/admin", "membership", "revoke_identity", args),
    ).json()
    second = client.post(
        "/api/v1/proposals/endorse",
        json=signed(node, "gd-mpa/admin", "membership", "revoke_identity", args),
    ).json()
    assert client.post("/api/v1/transactions", json=first).status_code == 200
    with unchanged(node):
        response = client.post("/api/v1/transactions", json=second)
    assert_problem(response, 409, "mvcc-conflict")


def test_commit_timeout_is_504(client: TestClient, node: EmbeddedNode) -> None:
    body = signed(node, "gd-cdc/epi-wang", "ward", "note", {"key": "slow", "text": "x"})
    response = client.post("/api/v1/invoke?timeout=0.000001", json=body)
    problem = assert_problem(response, 504, "commit-timeout")
    assert problem["receipt"] == f"/api/v1/transactions/{problem['tx_id']}/receipt"
    for _ in range(200):  # it still commits: wait, so later tests see a quiet ledger
        if client.get(problem["receipt"]).status_code == 200:
            break
        node.peer.events.wait_for_height(node.peer.store.height(), 0.05)
    assert client.get(problem["receipt"]).json()["valid"] is True


def test_stopped_orderer_is_503(tmp_path: Path) -> None:
    idle = EmbeddedNode.create(tmp_path / "idle", contracts=CONTRACTS, plans=DEMO_ORGS)
    try:
        with TestClient(create_api(idle)) as plain, unchanged(idle):
            plain.auth = member_reads(idle)
            response = plain.post(
                "/api/v1/invoke",
                json=signed(idle, "gd-cdc/epi-wang", "ward", "note", {"key": "n", "text": "x"}),
            )
        assert_problem(response, 503, "unavailable")
    finally:
        idle.stop()


# --- reads --------------------------------------------------------------------------------


def test_reads_of_missing_things_are_404(client: TestClient) -> None:
    missing = "ab" * 32
    assert_problem(client.get(f"/api/v1/transactions/{missing}"), 404, "not-found")
    assert_problem(client.get(f"/api/v1/transactions/{missing}/receipt"), 404, "not-found")
    assert_problem(client.get(f"/api/v1/proofs/inclusion/{missing}"), 404, "not-found")
    assert_problem(client.get("/api/v1/blocks/99999"), 404, "not-found")
    assert_problem(client.get("/api/v1/proofs/consistency?first=99999"), 404, "not-found")
    assert_problem(client.get("/api/v1/transactions/not-hex"), 422, "validation-error")


def test_bad_event_id_is_400(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/events?after=x:y"), 400, "bad-request")
    response = client.get("/api/v1/events", headers={"Last-Event-ID": "1:2"})
    assert_problem(response, 400, "bad-request")


def test_demo_identity_without_a_key_is_403(client: TestClient, node: EmbeddedNode) -> None:
    with unchanged(node):
        response = client.post(
            "/api/v1/demo/invoke",
            json={"identity": "gd-cdc/mallory", "contract": "ward", "function": "note", "args": {}},
        )
    assert_problem(response, 403, "access-denied")


def test_problem_types_are_documented(client: TestClient) -> None:
    kinds = client.get("/api/v1/problems").json()
    assert {"malformed-json", "bad-signature", "endorsement-failed"} <= {
        k["type"].rsplit("/", 1)[1] for k in kinds
    }
    assert client.get("/api/v1/problems/mvcc-conflict").json()["status"] == 409
