"""Fault: one NATS server of the ordering cluster killed -9 while three consortium
peers are under load, then restarted. Ordering goes on with a quorum of two; at the
end every peer holds the same chain, every acknowledged transaction is in it exactly
once, and the peers' exchanged checkpoints agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthledger.apps.registry import installed_contracts
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.checkpoint_guard import CheckpointState
from healthledger.node.consortium_peer import ConsortiumNode, found_consortium
from healthledger.ordering.nats_cluster import NatsCluster
from tests.support.jetstream_peer import Load, assert_same_chains, open_peer, wait_for
from tests.support.nats_cluster import fresh_cluster, nats_cluster

pytestmark = pytest.mark.slow

__all__ = ["nats_cluster"]

STREAM = "FAULT_NATS"


def agreed_checkpoints(nodes: list[ConsortiumNode], height: int) -> bool:
    """True once every peer has compared every other peer's checkpoint at ``height``
    or above, and found them equal."""
    for node in nodes:
        view = node.guard.to_json()
        if view["state"] != "ok":
            return False
        if any(
            p["height"] is None or p["height"] < height or not p["agrees"] for p in view["peers"]
        ):
            return False
    return True


def test_a_nats_server_killed_under_load_loses_and_duplicates_nothing(
    tmp_path: Path, nats_cluster: NatsCluster
) -> None:
    cluster = fresh_cluster(nats_cluster)
    folders = found_consortium(tmp_path, plans=DEMO_ORGS[:3], contracts=installed_contracts())
    nodes = [open_peer(folder, STREAM, cluster.urls).start() for folder in folders.values()]
    load = Load(nodes)
    try:
        wait_for(lambda: all(n.peer.accepting for n in nodes), "every peer takes writes")
        load.start()
        wait_for(lambda: load.count() >= 30, "30 acknowledged transactions")
        wait_for(lambda: cluster.stream_leader(STREAM) is not None, "a stream leader")
        leader = cluster.stream_leader(STREAM)
        assert leader is not None
        cluster.kill(leader)  # the stream's leader: the hardest member to lose
        before = load.count()
        wait_for(lambda: load.count() >= before + 60, "ordering on with two servers")
        cluster.restart(leader)
        after = load.count()
        wait_for(lambda: load.count() >= after + 60, "ordering on after the restart")
        load.stop()
        head = max(n.peer.store.height() for n in nodes)
        wait_for(
            lambda: all(n.peer.store.height() == head for n in nodes), "every peer at one head"
        )
        # A checkpoint is signed every 4 blocks: every peer must have compared the
        # others' up to the last one before the head, and agree.
        signed = (head - 1) // 4 * 4
        wait_for(lambda: agreed_checkpoints(nodes, signed), "agreeing checkpoints at the head")
    finally:
        load.stop()
        for node in nodes:
            node.stop()
    assert all(code is ValidationCode.VALID for code in load.acked.values())
    assert_same_chains(list(folders.values()), load.acked)
    assert all(n.guard.state is CheckpointState.OK for n in nodes)
