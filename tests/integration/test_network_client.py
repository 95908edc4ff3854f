"""The operator's HTTP client (``healthledger.network.client``) against a real node's API
served over HTTP: typed answers, and every RFC 9457 problem, missing answer or refusal
as a typed ``NetworkError``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from healthledger.api.app import create_api
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.errors import HealthledgerError
from healthledger.network.client import NetworkClient
from healthledger.network.errors import (
    NetworkError,
    PeerFailed,
    PeerUnreachable,
    ProblemAnswer,
    RequestRefused,
)
from healthledger.node.embedded import EmbeddedNode
from healthledger.ordering.nats_cluster import free_port
from tests.integration.test_gateway import serve
from tests.support.contracts import Notebook
from tests.support.members import member_reads

DOCTOR = "gz-first-hospital/dr-li"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedNode, str]]:
    node = EmbeddedNode.create(
        tmp_path_factory.mktemp("network-client") / "node",
        contracts=(*SYSTEM_CONTRACTS, Notebook),
        plans=DEMO_ORGS[:3],
        batch_timeout_s=0.005,
    ).start()
    server, thread, url = serve(create_api(node), "network-client")
    yield node, url
    server.should_exit = True
    thread.join(15)
    node.stop()


@pytest.fixture
def client(served: tuple[EmbeddedNode, str]) -> Iterator[NetworkClient]:
    with NetworkClient(timeout=10.0, reads=member_reads(served[0])) as made:
        yield made


def test_status_and_reads_are_typed(
    served: tuple[EmbeddedNode, str], client: NetworkClient
) -> None:
    node, url = served
    status = client.status(url)
    genesis = node.peer.store.header(0).hash
    assert status.height == node.peer.store.height() >= 1
    assert status.genesis_hash == genesis and status.accepting_writes and status.healthy
    assert client.block_hash(url, 0) == genesis
    with (
        NetworkClient(timeout=10.0) as anonymous,
        pytest.raises(ProblemAnswer, match="for consortium members"),
    ):
        anonymous.block_hash(url, 0)  # blocks are members' reads
    assert {o["id"] for o in client.organisations(url)} == {p.id for p in DEMO_ORGS[:3]}
    assert "gd-cdc/peer0" in {i["id"] for i in client.identities(url, "gd-cdc")}
    [latest] = client.key_history(url, "membership", "identity/gd-cdc/peer0", limit=1)
    assert latest["version"][0] == 0  # registered by the genesis block


def test_a_committed_invocation_and_its_result(
    served: tuple[EmbeddedNode, str], client: NetworkClient
) -> None:
    node, url = served
    signed = node.propose(DOCTOR, "notebook", "put", {"key": "client-a", "value": 7})
    committed = client.invoke(url, signed)
    assert committed.valid and committed.code == "VALID"
    assert node.peer.store.header(committed.height).hash == client.block_hash(url, committed.height)
    read = node.propose(DOCTOR, "notebook", "get", {"key": "client-a"})
    assert client.query(url, read)["value"] == 7


def test_problem_answers_are_typed_errors(
    served: tuple[EmbeddedNode, str], client: NetworkClient
) -> None:
    node, url = served
    refused = node.propose(DOCTOR, "notebook", "remove", {"key": "never-written"})
    with pytest.raises(RequestRefused) as conflict:
        client.invoke(url, refused)
    assert conflict.value.status == 409
    assert "/api/v1/problems/" in conflict.value.type
    assert "no entry never-written" in conflict.value.detail
    assert conflict.value.problem["status"] == 409

    with pytest.raises(PeerFailed) as bug:
        client.invoke(url, node.propose(DOCTOR, "notebook", "crash", {"key": "x"}))
    assert bug.value.status == 500

    with pytest.raises(RequestRefused) as missing:
        client.block_hash(url, 10**9)
    assert missing.value.status == 404
    # An embedded node serves no peer directory: its network routes answer 404.
    with pytest.raises(RequestRefused):
        client.directory(url)
    # One root for everything the package raises.
    for kind in (RequestRefused, PeerFailed, PeerUnreachable):
        assert issubclass(kind, NetworkError) and issubclass(NetworkError, HealthledgerError)
    assert issubclass(RequestRefused, ProblemAnswer) and issubclass(PeerFailed, ProblemAnswer)


def test_no_answer_is_peer_unreachable(client: NetworkClient) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PeerUnreachable) as unreachable:
        client.status(nobody, timeout=2.0)
    assert unreachable.value.url.startswith(nobody)
    assert not client.nats_healthy(nobody, timeout=2.0)
