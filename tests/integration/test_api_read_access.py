"""Who may read what (api.read_access): members' routes refuse anonymous readers with
a problem naming how to authenticate; a signed read or a console session passes; a
replayed, stale, tampered or foreign signature is refused; public routes answer anyone.

One small embedded node (system contracts, demo consortium) for the module; requests go
through the ASGI app in process.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from healthledger.client import AsyncClient, Identity
from healthledger.client.read_auth import SignedReads
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.crypto.keys import SigningKey
from healthledger.crypto.signed_reads import sign_read, wall_clock_ms
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from healthledger.web.console import create_console

MEMBER = "gd-cdc/epi-wang"
MEMBER_ROUTES = (
    ("GET", "/api/v1/blocks"),
    ("GET", "/api/v1/blocks/0"),
    ("GET", "/api/v1/transactions/" + "a" * 64),
    ("GET", "/api/v1/transactions/" + "a" * 64 + "/receipt"),
    ("GET", "/api/v1/state/membership/identity%2Fgd-cdc%2Fepi-wang/history"),
    ("GET", "/api/v1/consortium/identities"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/snapshot"),
    ("GET", "/api/v1/workers"),
    ("GET", "/api/v1/supply/events"),
    ("GET", "/api/v1/epidemic/figures"),
    ("GET", "/api/v1/credentials/healthcode/holders"),
    ("POST", "/api/v1/supply/capture"),
    ("GET", "/metrics"),
)
PUBLIC_ROUTES = (
    "/api/v1/status",
    "/api/v1/checkpoints",
    "/api/v1/problems",
    "/api/v1/consortium/organisations",
    "/api/v1/proofs/consistency?first=1&second=1",
    "/api/v1/credentials/trust-list",
    "/api/v1/credentials/healthcode/jwks.json",
    "/api/v1/epidemic/diseases",
    "/.well-known/jwks.json",
    "/openapi.json",
    "/docs",
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """One node with the demo consortium."""
    path: Path = tmp_path_factory.mktemp("reads") / "node"
    started = EmbeddedNode.create(
        path, contracts=SYSTEM_CONTRACTS, batch_timeout_s=0.01, plans=DEMO_ORGS
    ).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def api(node: EmbeddedNode) -> Iterator[TestClient]:
    """The console (API and pages, demo custody), no credentials."""
    with TestClient(create_console(node, demo_custody=True)) as client:
        yield client


def key_of(node: EmbeddedNode, identity: str) -> SigningKey:
    entry = node.keystore.get(identity)
    assert entry is not None
    return entry.key


def signed_headers(node: EmbeddedNode, path: str, query: str = "", **kw: object) -> dict[str, str]:
    return sign_read(
        key_of(node, MEMBER), identity=MEMBER, method="GET", path=path, query=query, **kw
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(("method", "path"), MEMBER_ROUTES)
def test_anonymous_read_of_a_members_route_is_refused(
    api: TestClient, method: str, path: str
) -> None:
    answer = api.request(method, path, json={} if method == "POST" else None)
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["type"] == "/api/v1/problems/unauthenticated"
    assert "HL-Signature" in body["detail"] and "log in" in body["detail"]
    assert body["authenticate"] == ["HL-Identity", "HL-Timestamp", "HL-Nonce", "HL-Signature"]
    assert answer.headers["www-authenticate"].startswith("HL-Signature")


@pytest.mark.parametrize("path", PUBLIC_ROUTES)
def test_public_routes_answer_anyone(api: TestClient, node: EmbeddedNode, path: str) -> None:
    # Anyone gets what a member gets (this node runs no applications' contracts and is
    # no consortium peer, so some answer 404 or 409 to both).
    answer = api.get(path)
    route, _, query = path.partition("?")
    member = api.get(path, headers=signed_headers(node, route, query))
    assert answer.status_code == member.status_code, answer.text
    assert answer.status_code not in (401, 403), answer.text


def test_signed_read_passes_and_a_replay_is_refused(api: TestClient, node: EmbeddedNode) -> None:
    headers = signed_headers(node, "/api/v1/blocks", "limit=1")
    first = api.get("/api/v1/blocks?limit=1", headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()
    replayed = api.get("/api/v1/blocks?limit=1", headers=headers)
    assert replayed.status_code == 401
    assert replayed.json()["type"] == "/api/v1/problems/bad-read-signature"
    assert "already used" in replayed.json()["detail"]


def test_stale_tampered_partial_and_foreign_signatures_are_refused(
    api: TestClient, node: EmbeddedNode
) -> None:
    stale = signed_headers(node, "/api/v1/blocks", clock=lambda: wall_clock_ms() - 5 * 60_000)
    tampered = signed_headers(node, "/api/v1/blocks", "limit=1")
    moved = signed_headers(node, "/api/v1/blocks/0")
    partial = {k: v for k, v in signed_headers(node, "/api/v1/blocks").items() if k != "HL-Nonce"}
    for headers, url, why in (
        (stale, "/api/v1/blocks", "from the node's clock"),
        (tampered, "/api/v1/blocks?limit=2", "does not verify"),
        (moved, "/api/v1/blocks", "does not verify"),
        (partial, "/api/v1/blocks", "missing HL-Nonce"),
    ):
        answer = api.get(url, headers=headers)
        assert answer.status_code == 401, (url, answer.text)
        assert answer.json()["type"] == "/api/v1/problems/bad-read-signature"
        assert why in answer.json()["detail"]
    stranger = sign_read(
        SigningKey.generate(), identity="gd-cdc/nobody", method="GET", path="/api/v1/blocks"
    )
    answer = api.get("/api/v1/blocks", headers=stranger)
    assert answer.status_code == 403
    assert answer.json()["type"] == "/api/v1/problems/access-denied"
    impostor = sign_read(
        SigningKey.generate(), identity=MEMBER, method="GET", path="/api/v1/blocks"
    )
    assert api.get("/api/v1/blocks", headers=impostor).status_code == 401


def test_a_revoked_identity_reads_no_more(api: TestClient, node: EmbeddedNode) -> None:
    with TestClient(api.app) as client:
        client.auth = SignedReads.of(node.keystore.get("yuexiu-pharmacy/pharm-xu"))  # type: ignore[arg-type]
        assert client.get("/api/v1/blocks?limit=1").status_code == 200
        proposal = node.keystore.propose(
            "yuexiu-pharmacy/admin",
            "membership",
            "revoke_identity",
            {"identity": "yuexiu-pharmacy/pharm-xu", "reason": "left"},
            timestamp=node.clock(),
        )
        assert client.post("/api/v1/invoke", json=proposal.to_json()).status_code == 200
        refused = client.get("/api/v1/blocks?limit=1")
        assert refused.status_code == 403
        assert "revoked" in refused.json()["detail"]


def test_a_console_session_reads_members_routes(api: TestClient) -> None:
    page = api.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    with TestClient(api.app) as browser:
        login = browser.post(
            "/login",
            data={"identity": "gd-cdc/admin", "csrf": csrf.group(1), "next": "/"},
            follow_redirects=False,
        )
        assert login.status_code == 303
        assert browser.get("/api/v1/blocks?limit=1").status_code == 200
        browser.cookies.clear()
        assert browser.get("/api/v1/blocks?limit=1").status_code == 401


def test_the_async_client_signs_its_reads(api: TestClient, node: EmbeddedNode) -> None:
    entry = node.keystore.get(MEMBER)
    assert entry is not None
    identity = Identity(certificate=entry.cert, key=entry.key)
    genesis_tx = node.peer.block(0).transactions[0].tx_id
    app = api.app

    async def read() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://node", identity=identity, transport=transport) as client:
            receipt = await client.receipt(genesis_tx)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as anon:
            refused = await anon.get(f"/api/v1/transactions/{genesis_tx}/receipt")
        return receipt.height, refused.status_code

    assert asyncio.run(read()) == (0, 401)


def test_openapi_names_who_may_call_each_operation(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    assert set(spec["components"]["securitySchemes"]) == {"SignedRead", "ConsoleSession"}
    blocks = spec["paths"]["/api/v1/blocks"]["get"]
    assert blocks["security"] and {"401", "403"} <= set(blocks["responses"])
    status = spec["paths"]["/api/v1/status"]["get"]
    assert "security" not in status and "401" not in status["responses"]
