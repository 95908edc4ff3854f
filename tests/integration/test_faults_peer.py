"""Faults of one consortium peer out of three, under load: killed -9, or stopped for a
while, then started again. It resumes from the stream position recorded with its last
block and catches up; every peer ends with the same chain, every acknowledged
transaction in it exactly once, and agreeing checkpoints."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from healthledger.apps.registry import installed_contracts
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.checkpoint import read_notes
from healthledger.node.checkpoint_guard import CheckpointState
from healthledger.node.consortium_peer import found_consortium
from healthledger.node.embedded import CHECKPOINT_DIR, LEDGER_FILE
from healthledger.ordering.nats_cluster import NatsCluster
from tests.support.jetstream_peer import (
    Load,
    assert_same_chains,
    height_of,
    open_peer,
    spawn_peer,
    wait_for,
)
from tests.support.nats_cluster import fresh_cluster, nats_cluster

pytestmark = pytest.mark.slow

__all__ = ["nats_cluster"]


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "stop"])
def test_a_peer_down_under_load_comes_back_and_catches_up(
    tmp_path: Path, nats_cluster: NatsCluster, how: signal.Signals
) -> None:
    cluster = fresh_cluster(nats_cluster)
    stream = f"FAULT_PEER_{how.name}"
    folders = list(
        found_consortium(tmp_path, plans=DEMO_ORGS[:3], contracts=installed_contracts()).values()
    )
    a, b = (open_peer(folder, stream, cluster.urls).start() for folder in folders[:2])
    c_folder = folders[2]
    c = spawn_peer(c_folder, stream, cluster.urls)
    load = Load([a, b])
    try:
        wait_for(lambda: a.peer.accepting and b.peer.accepting, "both peers take writes")
        load.start()
        wait_for(lambda: height_of(c_folder) >= 6, "the third peer commits")
        assert load.count() > 0
        os.kill(c.pid, how)
        c.wait(30)
        down_at = height_of(c_folder)
        # The others go on without it for a while.
        wait_for(lambda: a.peer.store.height() >= down_at + 12, "the chain grows while it is down")
        c = spawn_peer(c_folder, stream, cluster.urls)
        wait_for(lambda: height_of(c_folder) > down_at + 12, "it catches up under load")
        load.stop()
        wait_for(
            lambda: a.peer.store.height() == b.peer.store.height() == height_of(c_folder),
            "every peer at one head",
        )
        head = a.peer.store.height()
        # Its checkpoints after the restart reached the others and agree.
        last = (head - 1) // 4 * 4
        wait_for(
            lambda: max(read_notes(c_folder / CHECKPOINT_DIR), default=0) >= last,
            "the restarted peer signs its checkpoints",
        )
        wait_for(
            lambda: all(
                any(
                    p["org"] == folders[2].name and (p["height"] or 0) >= last
                    for p in n.guard.to_json()["peers"]
                )
                for n in (a, b)
            ),
            "its checkpoints reach the others",
        )
    finally:
        load.stop()
        c.send_signal(signal.SIGTERM)
        c.wait(30)
        a.stop()
        b.stop()
    assert all(code is ValidationCode.VALID for code in load.acked.values())
    assert_same_chains(folders, load.acked)
    assert a.guard.state is CheckpointState.OK and b.guard.state is CheckpointState.OK
    assert a.guard.divergence_count == 0 and b.guard.rejected_count == 0


def test_a_peer_whose_delivery_stopped_shows_unhealthy_until_restarted(
    tmp_path: Path, nats_cluster: NatsCluster
) -> None:
    cluster = fresh_cluster(nats_cluster)
    stream = "FAULT_STUCK"
    folders = list(
        found_consortium(tmp_path, plans=DEMO_ORGS[:3], contracts=installed_contracts()).values()
    )
    a, b, c = (open_peer(folder, stream, cluster.urls).start() for folder in folders)
    load = Load([a, b])
    try:
        wait_for(lambda: a.peer.accepting and b.peer.accepting, "both peers take writes")
        load.start()
        wait_for(lambda: c.peer.store.height() >= 4, "the third peer commits")
        assert c.consortium_status()["healthy"]
        # Its disk starts refusing blocks: the peer stops delivering rather than skip one.
        db = sqlite3.connect(c.data_dir / LEDGER_FILE, timeout=30)
        with db:
            db.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON blocks "
                "BEGIN SELECT RAISE(ABORT, 'disk refuses writes'); END"
            )
        wait_for(lambda: c.consortium_status()["delivery"]["stuck"], "delivery shows stuck")
        status = c.consortium_status()
        assert not status["healthy"]
        assert status["delivery"]["stream_last_tx"] > status["delivery"]["position"]
        assert a.consortium_status()["healthy"]  # the others are fine
        # The operator fixes the disk and restarts the peer: it catches up.
        c.stop()
        with db:
            db.execute("DROP TRIGGER refuse")
        db.close()
        c = open_peer(c.data_dir, stream, cluster.urls).start()
        load.stop()
        wait_for(
            lambda: a.peer.store.height() == b.peer.store.height() == c.peer.store.height(),
            "every peer at one head",
        )
        wait_for(lambda: c.consortium_status()["healthy"], "healthy again")
    finally:
        load.stop()
        for node in (a, b, c):
            node.stop()
    assert_same_chains(folders, load.acked)
