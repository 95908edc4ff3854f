"""Network partitions under load: three NATS servers and three consortium peers, each in
a network namespace of its own, links cut in transit (``tests/support/netns.py``).

Every scenario checks the same things: while the network is split, the peers that can
reach a quorum keep committing (a peer whose server was cut away moves to another);
no acknowledged transaction is lost or committed twice; no two peers ever hold
different blocks at one height; once healed, every peer holds the same chain, and
their exchanged checkpoints agree. A write refused meanwhile is refused with a
one-line reason, never a stack trace.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthledger.node.errors import NodeError
from tests.support.jetstream_peer import assert_same_chains, wait_for
from tests.support.netns import lab_unavailable
from tests.support.netns_nats import make_leader
from tests.support.partition_rig import SERVERS, PartitionRig

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(lab_unavailable() is not None, reason=str(lab_unavailable())),
]

DURING = 20
"""Transactions every peer must get acknowledged while the network is split."""


def error_names(cls: type[Exception]) -> set[str]:
    """``cls`` and every subclass of it, by name."""
    return {cls.__name__}.union(*(error_names(sub) for sub in cls.__subclasses__()))


NODE_ERRORS = error_names(NodeError)


@pytest.fixture
def rig(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[PartitionRig]:
    """A running consortium in its own lab; namespaces and processes always removed."""
    stream = f"PART_{request.node.name.upper()[5:25]}"
    with PartitionRig(tmp_path, stream=stream) as opened:
        yield opened


def every_peer_commits(rig: PartitionRig, what: str) -> None:
    """Wait until each peer has ``DURING`` more acknowledged transactions."""
    targets = [(p, len(p.lines("acked")) + DURING) for p in rig.peers]
    wait_for(lambda: all(len(p.lines("acked")) >= n for p, n in targets), what, timeout=60)


def assert_nothing_lost(rig: PartitionRig) -> None:
    """Drain, converge and check the invariants of the module docstring."""
    rig.drain_and_converge()
    found = rig.collect()
    assert not found.crashed, found.crashed[0]
    assert not found.forks, found.forks
    assert found.acked and set(found.acked.values()) == {"VALID"}
    assert_same_chains([p.folder for p in rig.peers], found.acked)  # type: ignore[arg-type]
    for line in found.refused:
        assert line.split(":", 1)[0] in NODE_ERRORS, line


def assert_checkpoints_agree(rig: PartitionRig) -> None:
    """After the rig closed: every peer's guard saw no divergence and serves."""
    for peer in rig.peers:
        status = json.loads((peer.out / "status.json").read_text())
        assert status["divergences"] == 0 and status["refusal"] is None, status


def test_a_stream_leader_cut_off_from_everything_loses_nothing(rig: PartitionRig) -> None:
    rig.wait_acked(30, "load before the partition")
    # The leader is the server the first peer is connected to: that peer must move.
    server = rig.server_of(rig.peers[0])
    assert server is not None
    assert make_leader(rig.cluster, rig.stream, SERVERS.index(server))
    rig.lab.isolate(server)
    every_peer_commits(rig, "every peer commits with the stream leader cut off")
    rig.lab.heal()
    rig.wait_acked(30, "load after healing")
    assert_nothing_lost(rig)
    rig.close()
    assert_checkpoints_agree(rig)


def test_a_minority_server_and_a_flapping_link_lose_nothing(rig: PartitionRig) -> None:
    rig.wait_acked(30, "load before the partition")
    # A server cut off from the other two still answers its clients: a peer on it
    # must notice that nothing is acknowledged and move.
    server = rig.server_of(rig.peers[1])
    assert server is not None
    rig.lab.isolate(server, from_=SERVERS)
    every_peer_commits(rig, "every peer commits with one server in a minority")
    rig.lab.heal()
    rig.wait_acked(30, "load after healing")
    # A flapping link between the stream leader and a follower, and between a peer
    # and its server: cut and mended every half second or so for a while.
    leader = rig.stream_leader() or SERVERS[0]
    follower = next(s for s in SERVERS if s != leader)
    peer = rig.peers[2]
    its_server = rig.server_of(peer) or SERVERS[0]
    rng = random.Random(11)
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        rig.lab.cut(leader, follower)
        rig.lab.cut(peer.node, its_server)
        time.sleep(rng.uniform(0.3, 1.2))
        rig.lab.heal()
        time.sleep(rng.uniform(0.3, 1.2))
    rig.wait_acked(30, "load after the flapping")
    assert_nothing_lost(rig)
    rig.close()
    assert_checkpoints_agree(rig)
