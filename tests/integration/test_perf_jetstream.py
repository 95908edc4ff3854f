"""Batch submission through JetStream (``submit_many``: many publishes awaiting their
acks side by side) against a real three-server NATS cluster: every transaction is
stored once, acknowledged only once stored, de-duplicated by its id, and refused
clearly when NATS is down."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthledger.cli.bench import bench_node, endorse_puts
from healthledger.ledger.transaction import Transaction, ValidationCode
from healthledger.node.errors import NodeUnavailable
from healthledger.ordering.jetstream import JetStreamOrderer
from healthledger.ordering.nats_cluster import NatsCluster
from healthledger.ordering.orderer import OrderingError
from tests.integration.test_jetstream import Collector, JetStreamPeer, orderer, wait_for_height
from tests.support.nats_cluster import fresh_cluster, nats_cluster

pytestmark = pytest.mark.slow

__all__ = ["nats_cluster"]


@pytest.fixture(scope="module")
def transactions(tmp_path_factory: pytest.TempPathFactory) -> list[Transaction]:
    """Endorsed bench.put transactions with distinct ids."""
    node = bench_node(tmp_path_factory.mktemp("txs") / "data", synchronous="OFF")
    try:
        return endorse_puts(node, 400)
    finally:
        node.stop()


@pytest.fixture
def pair(
    nats_cluster: NatsCluster, request: pytest.FixtureRequest
) -> Iterator[tuple[tuple[JetStreamOrderer, JetStreamOrderer], tuple[Collector, Collector]]]:
    """Two started orderers on a stream of the test's own; few acks in flight at once,
    so that a batch waits its turn."""
    fresh_cluster(nats_cluster)
    stream = "P_" + request.node.name.upper()[:40]
    orderers = (
        orderer(nats_cluster, stream, max_in_flight=8),
        orderer(nats_cluster, stream, max_in_flight=8),
    )
    collectors = (Collector(), Collector())
    for o, c in zip(orderers, collectors, strict=True):
        o.start(c)
    yield orderers, collectors
    for o in orderers:
        o.stop()


def test_batches_from_two_peers_are_each_stored_once_in_one_order(
    pair: tuple[tuple[JetStreamOrderer, JetStreamOrderer], tuple[Collector, Collector]],
    transactions: list[Transaction],
) -> None:
    (a, b), (got_a, got_b) = pair
    txs = transactions[:120]
    assert a.submit_many(txs[:60]) == [None] * 60
    assert b.submit_many(txs[60:]) == [None] * 60
    got_a.wait(120)
    got_b.wait(120)
    assert got_a.shape() == got_b.shape()
    assert sorted(got_a.tx_ids()) == sorted(tx.tx_id for tx in txs)


def test_a_resubmitted_batch_is_delivered_once(
    pair: tuple[tuple[JetStreamOrderer, JetStreamOrderer], tuple[Collector, Collector]],
    transactions: list[Transaction],
) -> None:
    (a, b), (got_a, got_b) = pair
    txs = transactions[120:150]
    assert a.submit_many(txs) == [None] * 30
    # Resubmitted whole by the same peer and in part by another: acknowledged, and
    # dropped by the stream's de-duplication on the transaction id.
    assert a.submit_many(txs) == [None] * 30
    assert b.submit_many(txs[:10]) == [None] * 10
    marker = transactions[150]
    a.submit(marker)
    got_a.wait(31)
    got_b.wait(31)
    assert sorted(got_a.tx_ids()) == sorted(tx.tx_id for tx in [*txs, marker])
    assert got_a.tx_ids()[-1] == marker.tx_id
    assert got_b.shape() == got_a.shape()


def test_packed_batches_from_two_peers_are_each_delivered_once_in_one_order(
    nats_cluster: NatsCluster, transactions: list[Transaction]
) -> None:
    fresh_cluster(nats_cluster)
    # Two messages in flight at most: the rest wait and leave packed, up to 16 a message.
    packing = {"max_in_flight": 2, "max_message_tx": 16}
    a, b = (orderer(nats_cluster, "PACKED", **packing) for _ in range(2))
    got_a, got_b = Collector(), Collector()
    a.start(got_a)
    b.start(got_b)
    try:
        txs = transactions[250:370]
        assert a.submit_many(txs[:60]) == [None] * 60
        assert b.submit_many(txs[60:]) == [None] * 60
        got_a.wait(120)
        got_b.wait(120)
        assert got_a.shape() == got_b.shape()
        assert sorted(got_a.tx_ids()) == sorted(tx.tx_id for tx in txs)
        # Fewer stream messages than transactions (ticks included): they were packed.
        last = got_a.shape()[-1][3]
        assert last is not None and last < len(txs)
    finally:
        a.stop()
        b.stop()


def test_submit_many_refuses_clearly_with_every_server_down(
    tmp_path: Path, transactions: list[Transaction]
) -> None:
    with NatsCluster(tmp_path / "nats") as cluster:
        o = orderer(cluster, "DOWNMANY", publish_timeout_s=30.0)
        o.start(Collector())
        assert o.submit_many(transactions[200:205]) == [None] * 5
        for i in range(cluster.size):
            cluster.kill(i)
        # Refused as a whole if the client has noticed the lost connection already, else
        # each transaction gets its own error: either way none is acknowledged.
        try:
            outcome = o.submit_many(transactions[205:210])
        except OrderingError as exc:
            assert "NATS is unavailable" in str(exc)
        else:
            assert all(isinstance(error, OrderingError) for error in outcome), outcome
            assert all(
                "NATS is unavailable" in str(error) or "did not acknowledge" in str(error)
                for error in outcome
            ), outcome
        o.stop()


def test_peers_commit_batches_to_identical_chains(
    tmp_path: Path, nats_cluster: NatsCluster
) -> None:
    fresh_cluster(nats_cluster)
    bench_node(tmp_path / "a").stop()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    a = JetStreamPeer(tmp_path / "a", nats_cluster, "BATCHES")
    b = JetStreamPeer(tmp_path / "b", nats_cluster, "BATCHES")
    try:
        txs = [
            a.peer.endorse(
                a.keystore.propose(
                    "bench-org/client",
                    "bench",
                    "put",
                    {"key": f"batch-{i}", "value": i},
                    timestamp=a.peer.now(),
                )
            )
            for i in range(200)
        ]
        futures = a.peer.submit_many(txs[:100], precheck=False)
        futures += b.peer.submit_many(txs[100:], precheck=False)
        receipts = [f.result(60) for f in futures]
        assert all(r.code is ValidationCode.VALID for r in receipts)
        head = max(r.height for r in receipts)
        wait_for_height([a, b], head + 1)
        for height in range(head + 1):
            assert a.peer.store.header(height).hash == b.peer.store.header(height).hash
        committed = [tx.tx_id for h in range(1, head + 1) for tx in a.peer.block(h).transactions]
        assert sorted(committed) == sorted(tx.tx_id for tx in txs)
    finally:
        a.stop()
        b.stop()


def test_peer_batch_with_ordering_down_fails_every_future(
    tmp_path: Path, transactions: list[Transaction]
) -> None:
    bench_node(tmp_path / "data").stop()
    with NatsCluster(tmp_path / "nats") as cluster:
        peer = JetStreamPeer(tmp_path / "data", cluster, "PEERDOWN")
        for i in range(cluster.size):
            cluster.kill(i)
        try:
            futures = peer.peer.submit_many(transactions[300:303], precheck=False)
            for future in futures:
                error = future.exception(30)
                assert isinstance(error, NodeUnavailable)
                assert "NATS is unavailable" in str(error)
        finally:
            peer.stop()
