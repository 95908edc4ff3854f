"""Private inputs through the API: ``transient`` beside a signed proposal reaches the
contract, is bound by the proposal's transient_hash, and never reaches a block, a
response or the log."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.regions import RegionTable
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.transaction import transient_digest
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.conftest import CONTRACTS, TEST_REGIONS
from tests.apps.epidemic.support import case_args, person
from tests.support.members import member_reads
from tests.support.seam import epidemic_seam

REPORTER = "gz-first-hospital/dr-li"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node with the epidemic application configured on the test regions."""
    path: Path = tmp_path_factory.mktemp("api-transient") / "node"
    started = EmbeddedNode.create(
        path, contracts=CONTRACTS, batch_timeout_s=0.005, plans=DEMO_ORGS
    ).start()
    configure(epidemic_seam(started), RegionTable.from_source(TEST_REGIONS))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def client(node: EmbeddedNode) -> Iterator[TestClient]:
    """The API with demo custody on."""
    with TestClient(create_api(node, demo_custody=True)) as test_client:
        test_client.auth = member_reads(node)
        yield test_client


def salted(patient: dict[str, str]) -> dict[str, Any]:
    """The transient map a client sends: the private inputs and a random salt."""
    return {"patient": patient, "_salt": secrets.token_hex(16)}


def signed_with(node: EmbeddedNode, transient: dict[str, Any], **args: Any) -> dict[str, Any]:
    """A report_case proposal signed client-side, bound to ``transient`` by its hash."""
    proposal = node.keystore.propose(
        REPORTER,
        "epidemic",
        "report_case",
        case_args(node, **args),
        timestamp=node.clock(),
        transient=transient,
    )
    return proposal.to_json()


def secrets_of(patient: dict[str, str]) -> list[str]:
    """The strings that must appear nowhere public."""
    return [patient["name"], "Testname", patient["id_number"], patient["phone"], patient["address"]]


def chain_text(node: EmbeddedNode) -> str:
    """Every committed block, raw and decoded."""
    texts = []
    for height in range(node.peer.store.height()):
        raw = node.peer.store.block_bytes(height)
        texts.append(raw.decode("utf-8"))
        texts.append(json.dumps(json.loads(raw), ensure_ascii=False))
    return "\n".join(texts)


def test_report_with_transient_commits_and_no_block_holds_it(
    client: TestClient, node: EmbeddedNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    patient = person(401)
    body = {**signed_with(node, transient := salted(patient)), "transient": transient}
    response = client.post("/api/v1/invoke", json=body)
    assert response.status_code == 200, response.text
    case_id = response.json()["result"]["case_id"]
    text = chain_text(node)
    assert case_id in text
    assert transient_digest(transient) in text  # the binding is on chain, the data is not
    for secret in secrets_of(patient):
        assert secret not in text, f"{secret!r} is on chain"
        assert secret not in response.text
        assert secret not in caplog.text
    # The reporting hospital's vault does hold it, for authorised reads.
    held = node.query(REPORTER, "epidemic", "patient", {"case_id": case_id})
    assert patient["id_number"] in json.dumps(held, ensure_ascii=False)


def test_endorse_with_transient_returns_a_transaction_without_it(
    client: TestClient, node: EmbeddedNode
) -> None:
    patient = person(402)
    transient = salted(patient)
    body = {**signed_with(node, transient), "transient": transient}
    endorsed = client.post("/api/v1/proposals/endorse", json=body)
    assert endorsed.status_code == 200, endorsed.text
    for secret in secrets_of(patient):
        assert secret not in endorsed.text
    receipt = client.post("/api/v1/transactions", json=endorsed.json())
    assert receipt.status_code == 200, receipt.text
    text = chain_text(node)
    assert endorsed.json()["response"]["result"]["case_id"] in text
    for secret in secrets_of(patient):
        assert secret not in text


@pytest.mark.parametrize("route", ["/api/v1/invoke", "/api/v1/proposals/endorse"])
def test_transient_that_does_not_match_the_hash_is_refused(
    client: TestClient, node: EmbeddedNode, route: str
) -> None:
    patient = person(403)
    signed = signed_with(node, salted(patient))
    other = salted(person(404))
    height = node.peer.store.height()
    response = client.post(route, json={**signed, "transient": other})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "transient" in response.json()["detail"]
    for secret in [*secrets_of(patient), *secrets_of(person(404))]:
        assert secret not in response.text
    assert node.peer.store.height() == height


def test_transient_missing_for_a_bound_proposal_is_refused(
    client: TestClient, node: EmbeddedNode
) -> None:
    response = client.post("/api/v1/invoke", json=signed_with(node, salted(person(405))))
    assert response.status_code == 422, response.text


def test_transient_must_be_an_object(client: TestClient, node: EmbeddedNode) -> None:
    body = {**signed_with(node, salted(person(406))), "transient": ["Testname0406"]}
    response = client.post("/api/v1/invoke", json=body)
    assert response.status_code == 422
    assert "Testname0406" not in response.text


def test_demo_custody_salts_and_binds_transient(client: TestClient, node: EmbeddedNode) -> None:
    patient = person(407)
    response = client.post(
        "/api/v1/demo/invoke",
        json={
            "identity": REPORTER,
            "contract": "epidemic",
            "function": "report_case",
            "args": case_args(node),
            "transient": {"patient": patient},
        },
    )
    assert response.status_code == 200, response.text
    tx = client.get(f"/api/v1/transactions/{response.json()['tx_id']}").json()
    proposal = tx["transaction"]["signed_proposal"]["proposal"]
    # Salted by the server: the hash is not that of the bare map.
    assert proposal["transient_hash"] != transient_digest({"patient": patient})
    text = chain_text(node)
    for secret in secrets_of(patient):
        assert secret not in response.text
        assert secret not in text


def test_a_non_canonical_transient_is_refused_without_echo(
    client: TestClient, node: EmbeddedNode
) -> None:
    signed = signed_with(node, salted(person(408)))
    raw = json.dumps({**signed, "transient": {"patient": {"name": "Testname0408"}, "w": 1.5}})
    response = client.post(
        "/api/v1/invoke", content=raw, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert "Testname0408" not in response.text
