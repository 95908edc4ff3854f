"""Batches of client-signed calls over HTTP (``/proposals/endorse/batch``,
``/transactions/batch``, ``Client.send_many``) against a real node served on a port:
each call is endorsed, checked and committed on its own, a bad one is refused by name
while the others commit, and a body that is not a batch is one 422 problem."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from healthledger.cli.bench import BENCH_CLIENT, bench_node
from healthledger.client import Client, Committed, DuplicateTransaction, Identity
from healthledger.ledger.transaction import Transaction, ValidationCode
from healthledger.node.embedded import EmbeddedNode
from tests.support.served import served


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    created = bench_node(tmp_path_factory.mktemp("batches") / "data", synchronous="OFF")
    created.start()
    yield created
    created.stop()


@pytest.fixture(scope="module")
def url(node: EmbeddedNode) -> Iterator[str]:
    with served(node) as where:
        yield where


@pytest.fixture(scope="module")
def client(node: EmbeddedNode, url: str) -> Iterator[Client]:
    entry = node.keystore.get(BENCH_CLIENT)
    assert entry is not None
    with Client(url, identity=Identity(certificate=entry.cert, key=entry.key)) as made:
        yield made


def test_a_batch_commits_each_call_and_refuses_a_replay_by_name(
    client: Client, node: EmbeddedNode
) -> None:
    replayed = client.propose("bench", "put", {"key": "batch-replayed", "value": 0})
    client.send(replayed)
    calls = [client.propose("bench", "put", {"key": f"batch-{i}", "value": i}) for i in range(2)]
    outcomes = client.send_many([calls[0], replayed, calls[1]])
    assert isinstance(outcomes[1], DuplicateTransaction)
    assert replayed.tx_id in str(outcomes[1])
    for call, outcome in zip(calls, (outcomes[0], outcomes[2]), strict=True):
        assert isinstance(outcome, Committed) and outcome.tx_id == call.tx_id
        assert outcome.receipt.code == "VALID"
        assert node.peer.store.get_state("bench", call.signed.proposal.args["key"]) is not None


def test_a_forged_transaction_in_a_batch_is_refused_and_the_others_commit(
    client: Client, node: EmbeddedNode, url: str
) -> None:
    good, forged = (
        client.endorse(client.propose("bench", "put", {"key": f"forged-{i}", "value": i}))
        for i in range(2)
    )
    # The endorsement no longer covers the response: a forgery the peer must refuse.
    other = client.endorse(client.propose("bench", "put", {"key": "forged-x", "value": 9}))
    forged = Transaction(forged.signed_proposal, other.response, forged.endorsements)
    body = b'{"transactions":[' + good.canonical + b"," + forged.canonical + b"]}"
    headers = {"Content-Type": "application/json"}
    answer = httpx.post(f"{url}/api/v1/transactions/batch", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    results = answer.json()
    assert (results["committed"], results["refused"]) == (1, 1)
    assert results["results"][0]["receipt"]["tx_id"] == good.tx_id
    problem = results["results"][1]["problem"]
    assert problem["type"].endswith("/bad-endorsement") and problem["status"] == 400
    assert problem["code"] == str(ValidationCode.BAD_ENDORSEMENT)
    assert node.peer.store.tx_location(forged.tx_id) is None


@pytest.mark.parametrize(
    ("route", "field", "count"),
    [
        ("proposals/endorse/batch", "proposals", 0),
        ("proposals/endorse/batch", "proposals", 201),
        ("transactions/batch", "transactions", 0),
        ("transactions/batch", "transactions", 201),
    ],
)
def test_an_empty_or_oversize_batch_is_one_422_problem(
    client: Client, node: EmbeddedNode, url: str, route: str, field: str, count: int
) -> None:
    call = client.propose("bench", "put", {"key": "never", "value": 1})
    item = call.body() if field == "proposals" else client.endorse(call).to_json()
    height = node.peer.store.height()
    answer = httpx.post(f"{url}/api/v1/{route}", json={field: [item] * count})
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert problem["type"].endswith("/validation-error")
    assert any(e["field"] == f"body.{field}" for e in problem["errors"]), problem
    assert node.peer.store.height() == height
    assert node.peer.store.tx_location(call.tx_id) is None
