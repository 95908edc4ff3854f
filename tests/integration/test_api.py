"""The API over a real embedded node: happy paths, proofs, events, metrics, demo custody.

Proposals are signed client-side with the demo keystore's keys; requests go through
the ASGI app in process (no sockets). Error paths are in test_api_problems.py.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, query, transaction
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.merkle import verify_consistency, verify_inclusion
from healthledger.node.embedded import EmbeddedNode
from tests.support.members import member_reads


class Ward(Contract):
    """A test contract: notes, a function no endorsers can satisfy, and one that crashes."""

    name = "ward"
    policy = "OR('*.peer')"

    @transaction()
    def note(self, ctx: Context, *, key: str, text: str) -> dict[str, Any]:
        """Write a note and emit an event."""
        ctx.put(f"note/{key}", {"text": text, "by": ctx.caller.id})
        ctx.emit("noted", {"key": key})
        return {"key": key}

    @transaction(policy="AND('gd-cdc.peer', 'no-such-org.peer')")
    def escalate(self, ctx: Context, *, key: str) -> None:
        """Needs an endorser that no organisation has."""
        ctx.put(f"escalated/{key}", True)

    @transaction()
    def crash(self, ctx: Context) -> None:
        """A contract bug."""
        raise ZeroDivisionError("division by zero in ward.crash")

    @query()
    def read_note(self, ctx: Context, *, key: str) -> Any:
        """One note."""
        return ctx.get(f"note/{key}")


CONTRACTS = (*SYSTEM_CONTRACTS, Ward)


def start_node(path: Path) -> EmbeddedNode:
    """A started embedded node with the demo consortium and the Ward contract."""
    return EmbeddedNode.create(
        path, contracts=CONTRACTS, batch_timeout_s=0.01, plans=DEMO_ORGS
    ).start()


def signed(node: EmbeddedNode, creator: str, contract: str, function: str, args: Any) -> Any:
    """A proposal signed client-side with ``creator``'s key, in its JSON form."""
    proposal = node.keystore.propose(creator, contract, function, args, timestamp=node.clock())
    return proposal.to_json()


def b64(data: str) -> bytes:
    """Decode base64."""
    return base64.b64decode(data)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """One node for the module."""
    started = start_node(tmp_path_factory.mktemp("api") / "node")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def client(node: EmbeddedNode) -> Iterator[TestClient]:
    """The API with demo custody on."""
    with TestClient(create_api(node, demo_custody=True)) as test_client:
        test_client.auth = member_reads(node)
        yield test_client


def invoke(client: TestClient, node: EmbeddedNode, creator: str, fn: str, args: Any) -> Any:
    """Invoke a ward or membership function and return the JSON answer."""
    contract = "membership" if fn in {"revoke_identity", "register_identity"} else "ward"
    response = client.post("/api/v1/invoke", json=signed(node, creator, contract, fn, args))
    assert response.status_code == 200, response.text
    return response.json()


def test_status_reports_head_log_and_custody(client: TestClient, node: EmbeddedNode) -> None:
    status = client.get("/api/v1/status").json()
    head = node.peer.store.head()
    assert head is not None
    assert status["height"] == node.peer.store.height()
    assert status["head_hash"] == head.hash
    assert status["log_size"] == head.log_size and status["log_root"] == head.log_root
    assert status["genesis_hash"] == node.peer.store.header(0).hash
    assert status["custody"] == "demo"
    assert "Never use this mode in production" in status["custody_notice"]


def test_invoke_commits_and_returns_receipt_and_result(
    client: TestClient, node: EmbeddedNode
) -> None:
    answer = invoke(client, node, "gd-cdc/epi-wang", "note", {"key": "k1", "text": "fever"})
    assert answer["custody"] == "client"
    assert answer["result"] == {"key": "k1"}
    receipt = answer["receipt"]
    assert receipt["valid"] is True and receipt["code"] == "VALID"
    assert client.get(f"/api/v1/transactions/{receipt['tx_id']}/receipt").json() == receipt
    query = client.post(
        "/api/v1/query",
        json=signed(node, "gd-mpa/auditor-tang", "ward", "read_note", {"key": "k1"}),
    )
    assert query.status_code == 200
    assert query.json()["result"] == {"text": "fever", "by": "gd-cdc/epi-wang"}


def test_endorse_then_submit_then_read_back(client: TestClient, node: EmbeddedNode) -> None:
    proposal = signed(node, "gd-cdc/epi-zhao", "ward", "note", {"key": "k2", "text": "cough"})
    endorsed = client.post("/api/v1/proposals/endorse", json=proposal)
    assert endorsed.status_code == 200, endorsed.text
    tx = endorsed.json()
    assert tx["signed_proposal"] == proposal
    assert tx["endorsements"], "the peer endorses with the identities the policy needs"
    height = node.peer.store.height()
    assert node.peer.store.height() == height, "endorsing orders nothing"

    submitted = client.post("/api/v1/transactions", json=tx)
    assert submitted.status_code == 200, submitted.text
    receipt = submitted.json()
    assert receipt["valid"] is True and receipt["height"] >= height
    assert submitted.headers["location"] == f"/api/v1/transactions/{receipt['tx_id']}/receipt"

    detail = client.get(f"/api/v1/transactions/{receipt['tx_id']}").json()
    assert detail["transaction"] == tx
    assert detail["code"] == "VALID"
    assert detail["location"]["height"] == receipt["height"]
    assert detail["location"]["log_index"] == receipt["log_index"]

    history = client.get("/api/v1/state/ward/note/k2/history").json()
    assert history["key"] == "note/k2"
    assert [h["tx_id"] for h in history["history"]] == [receipt["tx_id"]]
    assert history["history"][0]["value"] == {"text": "cough", "by": "gd-cdc/epi-zhao"}


def test_submit_without_waiting_answers_202(client: TestClient, node: EmbeddedNode) -> None:
    proposal = signed(node, "gd-cdc/epi-zhao", "ward", "note", {"key": "k3", "text": "rash"})
    tx = client.post("/api/v1/proposals/endorse", json=proposal).json()
    response = client.post("/api/v1/transactions?wait=false", json=tx)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "submitted"
    for _ in range(100):
        receipt = client.get(body["receipt"])
        if receipt.status_code == 200:
            break
        node.peer.events.wait_for_height(node.peer.store.height(), 0.1)
    assert receipt.status_code == 200 and receipt.json()["valid"] is True


def test_block_list_pages_newest_first(client: TestClient, node: EmbeddedNode) -> None:
    for n in range(3):
        invoke(client, node, "gd-cdc/epi-wang", "note", {"key": f"page{n}", "text": "x"})
    height = node.peer.store.height()
    first = client.get("/api/v1/blocks?limit=2").json()
    assert [b["height"] for b in first["items"]] == [height - 1, height - 2]
    assert first["next"] == height - 3
    second = client.get(f"/api/v1/blocks?from={first['next']}&limit=2").json()
    assert second["items"][0]["height"] == height - 3
    ascending = client.get("/api/v1/blocks?order=asc&limit=1").json()
    assert ascending["items"][0]["height"] == 0
    assert ascending["items"][0]["codes"] == {"VALID": 1}
    assert ascending["items"][0]["tx_count"] == 1


def test_block_detail_holds_hashed_form(client: TestClient, node: EmbeddedNode) -> None:
    block = client.get("/api/v1/blocks/0").json()
    assert block["hash"] == node.peer.block(0).hash
    assert block["block"]["header"]["height"] == 0
    assert block["block"]["codes"] == ["VALID"]
    assert len(block["tx_ids"]) == 1


def test_inclusion_proof_verifies_with_public_code(client: TestClient, node: EmbeddedNode) -> None:
    answer = invoke(client, node, "gd-cdc/epi-wang", "note", {"key": "p1", "text": "proof"})
    tx_id = answer["receipt"]["tx_id"]
    proof = client.get(f"/api/v1/proofs/inclusion/{tx_id}").json()
    status = client.get("/api/v1/status").json()
    assert proof["treeSize"] == status["log_size"]
    root = bytes.fromhex(status["log_root"])
    assert b64(proof["root"]) == root
    verify_inclusion(
        leaf_index=proof["leafIdx"],
        tree_size=proof["treeSize"],
        leaf_hash=b64(proof["leafHash"]),
        proof=[b64(p) for p in proof["proof"]],
        root=root,
    )
    older = client.get(f"/api/v1/proofs/inclusion/{tx_id}?tree_size={proof['leafIdx'] + 1}")
    assert older.status_code == 200 and older.json()["treeSize"] == proof["leafIdx"] + 1


def test_consistency_proof_verifies(client: TestClient) -> None:
    proof = client.get("/api/v1/proofs/consistency?first=1").json()
    verify_consistency(
        size1=proof["size1"],
        size2=proof["size2"],
        root1=b64(proof["root1"]),
        root2=b64(proof["root2"]),
        proof=[b64(p) for p in proof["proof"]],
    )


def test_verify_endpoint_accepts_real_and_refuses_tampered(
    client: TestClient, node: EmbeddedNode
) -> None:
    answer = invoke(client, node, "gd-cdc/epi-wang", "note", {"key": "v1", "text": "verify"})
    tx_id = answer["receipt"]["tx_id"]
    proof = client.get(f"/api/v1/proofs/inclusion/{tx_id}").json()
    assert client.post("/api/v1/proofs/verify", json=proof).json()["verified"] is True
    old = client.get(f"/api/v1/proofs/inclusion/{tx_id}?tree_size={proof['leafIdx'] + 1}").json()
    invoke(client, node, "gd-cdc/epi-wang", "note", {"key": "v2", "text": "later"})
    verdict = client.post("/api/v1/proofs/verify", json=old).json()
    assert verdict["verified"] is True and "consistent" in verdict["reason"]
    receipt = client.post("/api/v1/proofs/verify", json=answer["receipt"]).json()
    assert receipt["verified"] is True and receipt["kind"] == "receipt"

    # A proof that does not verify is never a bare 200: a 422 problem saying why.
    tampered = dict(proof, root=base64.b64encode(bytes(32)).decode())
    refused = client.post("/api/v1/proofs/verify", json=tampered)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    verdict = refused.json()
    assert verdict["type"] == "/api/v1/problems/proof-invalid"
    assert verdict["verified"] is False and "root" in verdict["reason"]
    assert verdict["kind"] == "proof" and verdict["detail"] == verdict["reason"]
    lying = dict(answer["receipt"], code="MVCC_READ_CONFLICT")
    refused = client.post("/api/v1/proofs/verify", json=lying)
    assert refused.status_code == 422
    assert refused.json()["type"] == "/api/v1/problems/proof-invalid"
    absent = client.post("/api/v1/proofs/verify", json="ab" * 32)
    assert absent.json()["type"] == "/api/v1/problems/proof-invalid"


@pytest.mark.parametrize(
    "garbage",
    [
        "hello",
        42,
        [],
        {},
        {"leafIdx": -1, "treeSize": 1, "root": "", "leafHash": "", "proof": []},
        {"leafIdx": 0, "treeSize": 1, "root": "not base64!", "leafHash": "", "proof": []},
        {"tx_id": "not hex"},
    ],
)
def test_verify_endpoint_answers_garbage_with_a_problem(client: TestClient, garbage: Any) -> None:
    answer = client.post("/api/v1/proofs/verify", json=garbage)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["type"] == "/api/v1/problems/proof-malformed"
    assert body["verified"] is False and body["reason"]
    unparseable = client.post(
        "/api/v1/proofs/verify", content=b"{garbage", headers={"content-type": "application/json"}
    )
    assert unparseable.status_code == 400
    assert unparseable.json()["type"] == "/api/v1/problems/malformed-json"


def test_consortium_reads_membership_state(client: TestClient) -> None:
    organisations = client.get("/api/v1/consortium/organisations").json()
    assert len(organisations) == 10
    assert {"gd-cdc", "gd-mpa", "gz-first-hospital"} <= {o["id"] for o in organisations}
    identities = client.get("/api/v1/consortium/identities?org=gd-cdc").json()
    assert {i["id"] for i in identities} == {
        "gd-cdc/admin",
        "gd-cdc/peer0",
        "gd-cdc/epi-wang",
        "gd-cdc/epi-zhao",
    }
    assert all(i["status"] == "active" and len(i["fingerprint"]) == 64 for i in identities)


def test_revocation_through_the_api(client: TestClient, node: EmbeddedNode) -> None:
    answer = invoke(
        client,
        node,
        "yuexiu-pharmacy/admin",
        "revoke_identity",
        {"identity": "yuexiu-pharmacy/pharm-xu", "reason": "licence lapsed"},
    )
    assert answer["result"]["status"] == "revoked"
    record = client.get("/api/v1/consortium/identities?org=yuexiu-pharmacy").json()
    revoked = next(i for i in record if i["id"] == "yuexiu-pharmacy/pharm-xu")
    assert revoked["status"] == "revoked" and revoked["reason"] == "licence lapsed"


def read_sse(text: str) -> list[dict[str, Any]]:
    """Parse a text/event-stream body into events."""
    events = []
    for chunk in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in chunk.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if fields:
            fields["data"] = json.loads(fields["data"])
            events.append(fields)
    return events


def test_events_stream_and_resume(client: TestClient, node: EmbeddedNode) -> None:
    for n in range(2):  # at least five events: blocks 0..2 and two contract events
        invoke(client, node, "gd-cdc/epi-wang", "note", {"key": f"ev{n}", "text": "x"})
    with client.stream("GET", "/api/v1/events?limit=5") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = read_sse(response.read().decode())
    assert len(events) == 5
    assert [e["id"] for e in events][:2] == ["0", "1"]
    assert events[0]["event"] == "block" and events[0]["data"]["height"] == 0
    ids = [e["id"] for e in events]
    by_header = client.get("/api/v1/events?limit=3", headers={"Last-Event-ID": ids[1]})
    assert [e["id"] for e in read_sse(by_header.text)] == ids[2:5]
    by_query = client.get(f"/api/v1/events?after={ids[2]}&limit=2")
    assert [e["id"] for e in read_sse(by_query.text)] == ids[3:5]


def test_events_wake_on_a_new_block(client: TestClient, node: EmbeddedNode) -> None:
    head = node.peer.store.height() - 1
    done: dict[str, Any] = {}

    def follow() -> None:  # the stream is open before the block commits
        response = client.get(f"/api/v1/events?after={head}:999:0&limit=1")
        done["events"] = read_sse(response.text)

    follower = threading.Thread(target=follow)
    follower.start()
    answer = invoke(client, node, "gd-cdc/epi-wang", "note", {"key": "e1", "text": "live"})
    follower.join(10)
    assert not follower.is_alive()
    assert done["events"][0]["event"] == "block"
    assert done["events"][0]["data"]["height"] == answer["receipt"]["height"]


def test_contract_events_carry_payload(client: TestClient, node: EmbeddedNode) -> None:
    answer = invoke(client, node, "gd-cdc/epi-wang", "note", {"key": "e2", "text": "event"})
    height = answer["receipt"]["height"]
    events = read_sse(client.get(f"/api/v1/events?after={height}&limit=1").text)
    assert events[0]["event"] == "contract"
    assert events[0]["id"] == f"{height}:0:0"
    assert events[0]["data"]["name"] == "noted"
    assert events[0]["data"]["payload"] == {"key": "e2"}


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "healthledger_height" in response.text


def test_openapi_documents_the_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/v1/invoke",
        "/api/v1/transactions",
        "/api/v1/proposals/endorse",
        "/api/v1/events",
        "/api/v1/proofs/inclusion/{tx_id}",
        "/api/v1/demo/invoke",
    ):
        assert path in spec["paths"], path
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "/api/v1/proposals/endorse" in docs.text and "SignedProposalBody" in docs.text
    assert "cdn" not in docs.text.lower() and "<script" not in docs.text


def test_demo_custody_signs_for_the_identity(client: TestClient, node: EmbeddedNode) -> None:
    response = client.post(
        "/api/v1/demo/invoke",
        json={
            "identity": "gd-cdc/epi-wang",
            "contract": "ward",
            "function": "note",
            "args": {"key": "d1", "text": "demo"},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["custody"] == "demo" and "production" in body["custody_notice"]
    tx = client.get(f"/api/v1/transactions/{body['receipt']['tx_id']}").json()
    assert tx["transaction"]["signed_proposal"]["proposal"]["creator"] == "gd-cdc/epi-wang"
    query = client.post(
        "/api/v1/demo/query",
        json={
            "identity": "gd-mpa/auditor-tang",
            "contract": "membership",
            "function": "organisations",
        },
    )
    assert query.status_code == 200 and len(query.json()["result"]) == 10


def test_without_demo_custody_there_are_no_demo_routes(node: EmbeddedNode) -> None:
    with TestClient(create_api(node)) as plain:
        plain.auth = member_reads(node)
        assert plain.get("/api/v1/status").json()["custody"] == "client"
        response = plain.post(
            "/api/v1/demo/query",
            json={"identity": "gd-cdc/admin", "contract": "membership", "function": "x"},
        )
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
