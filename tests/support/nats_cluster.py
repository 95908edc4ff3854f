"""A real three-server NATS JetStream cluster for the tests (module scope)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from healthledger.ordering.nats_cluster import NatsCluster


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """Three nats-server processes on free 127.0.0.1 ports, fsync before ack, each
    with its own store; stopped (and every member restarted first) at module end."""
    cluster = NatsCluster(tmp_path_factory.mktemp("nats")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def fresh_cluster(cluster: NatsCluster) -> NatsCluster:
    """``cluster`` with every member running again (after a test killed some)."""
    for i in range(cluster.size):
        if not cluster.running(i):
            cluster.restart(i)
    return cluster
