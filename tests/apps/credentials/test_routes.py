"""The credentials API (issue, status, trust list, JWKS, verify, problem details) and
`healthledger credentials verify --url` and `trust export` against a served node."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.apps.credentials.qr import qr_code
from healthledger.node.embedded import EmbeddedNode
from tests.apps.credentials.support import HOLDER, NURSE, vaccinate
from tests.apps.epidemic.support import person, report
from tests.support.members import member_reads
from tests.support.served import in_process, served

DOCTOR = "gz-first-hospital/dr-li"


@pytest.fixture(scope="module")
def client(ledger: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_api(ledger, demo_custody=True), raise_server_exceptions=False) as c:
        c.auth = member_reads(ledger)
        yield c


def _issue(client: TestClient, ledger: EmbeddedNode, serial: int) -> dict[str, object]:
    body = {"identity": NURSE, "source_kind": "vaccination",
            "source_id": vaccinate(ledger, serial), **vars(HOLDER)}  # fmt: skip
    answer = client.post("/api/v1/credentials/issue", json=body)
    assert answer.status_code == 200, answer.text
    found: dict[str, object] = answer.json()
    return found


def test_issue_verify_revoke_through_the_api(client: TestClient, ledger: EmbeddedNode) -> None:
    issued = _issue(client, ledger, 101)
    texts = issued["texts"]
    assert isinstance(texts, dict) and sorted(texts) == ["dcc", "sd-jwt-vc", "shc"]
    credential = issued["credential"]
    assert isinstance(credential, dict)
    public = client.get(f"/api/v1/credentials/credentials/{credential['credential_id']}").json()
    assert public["commitment"] == credential["commitment"]
    assert HOLDER.family_name not in json.dumps(public)
    for text in texts.values():
        verdict = client.post("/api/v1/credentials/verify", json={"texts": [text]}).json()
        assert verdict["valid"], verdict
    png = qr_code(texts["dcc"]).png_data_uri(scale=3)
    photo = base64.b64decode(png.split(",", 1)[1])
    answer = client.post("/api/v1/credentials/verify/photo", files={"photo": ("q.png", photo)})
    assert answer.json()["valid"] and answer.json()["format"] == "dcc"
    revoke = {"identity": NURSE, "status": "revoked", "reason": "issued to the wrong person"}
    url = f"/api/v1/credentials/credentials/{credential['credential_id']}/status"
    assert client.post(url, json=revoke).status_code == 200
    again = client.post(url, json=revoke)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    for text in texts.values():
        verdict = client.post("/api/v1/credentials/verify", json={"texts": [text]}).json()
        assert "REVOKED" in [r["code"] for r in verdict["reasons"]], verdict


def test_bad_input_is_a_problem(client: TestClient, ledger: EmbeddedNode) -> None:
    body = {"identity": NURSE, "source_kind": "vaccination", "source_id": "v-none",
            **vars(HOLDER)}  # fmt: skip
    missing = client.post("/api/v1/credentials/issue", json=body)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"].endswith("source_id")
    bad_date = client.post("/api/v1/credentials/issue", json={**body, "birth_date": "1985-13-01"})
    assert bad_date.status_code == 422
    stranger = client.post("/api/v1/credentials/issue",
                           json={**body, "identity": "nobody/none"})  # fmt: skip
    assert stranger.status_code == 403
    assert client.get("/api/v1/credentials/credentials/c-none").status_code == 409
    verdict = client.post("/api/v1/credentials/verify", json={"texts": ["HC1:NOT-BASE45"]})
    assert verdict.status_code == 200 and not verdict.json()["valid"]


def test_public_exports(client: TestClient) -> None:
    jwks = client.get("/.well-known/jwks.json").json()
    assert jwks["keys"] and all(k["kty"] == "EC" and "d" not in k for k in jwks["keys"])
    signed = client.get("/api/v1/credentials/trust-list").json()
    assert signed["type"] == "healthledger-signed-trust-list" and signed["trust_list"]["proofs"]
    status = client.get("/api/v1/credentials/status").json()
    assert all(v["bits"] == 2 for v in status["token_status_lists"].values())
    one = client.get("/api/v1/credentials/status-lists/gz-first-hospital").json()
    assert one["sub"] in status["token_status_lists"]
    changes = client.get("/api/v1/credentials/trust-list/changes?status=applied").json()
    assert changes and all(c["status"] == "applied" for c in changes)
    last = max(c["applied_at"] for c in changes)
    assert client.get(f"/api/v1/credentials/trust-list/changes?since={last}").json() == []
    assert client.get("/api/v1/credentials/trust-list/changes?since=-1").status_code == 422


def test_cli_verifies_against_a_node_and_then_offline(
    client: TestClient, ledger: EmbeddedNode, tmp_path: Path
) -> None:
    issued = _issue(client, ledger, 102)
    texts = issued["texts"]
    assert isinstance(texts, dict)
    cache = str(tmp_path / "cache")
    with served(ledger) as url:
        result = in_process("credentials", "verify", texts["shc"], "--url", url,
                            "--cache", cache, "--json")  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout)["valid"]
        exported = tmp_path / "trust.json"
        done = in_process("credentials", "trust", "export", "--url", url, "--out", str(exported),
                          "--cache", cache)  # fmt: skip
        assert done.returncode == 0, done.stderr
    # The node is gone: the cached lists still verify, and say how old they are.
    offline = in_process("credentials", "verify", texts["dcc"], "--url", url, "--cache", cache)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "status list age" in offline.stdout
    with_file = in_process("credentials", "verify", texts["sd-jwt-vc"], "--trust", str(exported))
    assert with_file.returncode == 0, with_file.stdout
    neither = in_process("credentials", "verify", texts["dcc"])
    assert neither.returncode == 2


def test_a_confirmed_case_yields_a_recovery_certificate(
    client: TestClient, ledger: EmbeddedNode
) -> None:
    case = report(ledger, DOCTOR, person(150), disease="U07.1", classification="confirmed")
    body = {"identity": DOCTOR, "source_kind": "case", "source_id": case["case_id"],
            **vars(HOLDER)}  # fmt: skip
    unconfirmed = client.post("/api/v1/credentials/issue", json=body)
    assert unconfirmed.status_code == 422  # the CDC has not confirmed it yet
    ledger.invoke("gd-cdc/epi-wang", "epidemic", "confirm", {"case_id": case["case_id"]})
    issued = client.post("/api/v1/credentials/issue", json=body).json()
    assert issued["credential"]["kind"] == "recovery"
    assert sorted(issued["texts"]) == ["dcc", "sd-jwt-vc"]  # no SMART Health Card recovery
    for text in issued["texts"].values():
        assert client.post("/api/v1/credentials/verify", json={"texts": [text]}).json()["valid"]
