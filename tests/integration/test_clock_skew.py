"""Peers whose clocks are hours off, in a real three-server JetStream cluster.

One peer runs on the true time, one three hours ahead, one three hours behind (their
clocks injected). Blocks and their times come from the ordering stream, so every peer
cuts the same blocks with the cluster's time; each peer's own writes carry its own
clock as proposal timestamp and still commit, valid, on every peer; a peer asked to
endorse another organisation's proposal stamped hours away from its own clock refuses
it, saying by how much.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from healthledger.apps.registry import installed_contracts
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.consortium_peer import (
    ConsortiumNode,
    found_consortium,
    open_consortium_peer,
)
from healthledger.node.errors import BadRequest
from healthledger.node.peer import MAX_CLOCK_SKEW_MS
from healthledger.ordering.nats_cluster import NatsCluster
from healthledger.ordering.solo import wall_clock_ms
from tests.support.gs1 import gln
from tests.support.jetstream_peer import (
    CHECKPOINT_EVERY,
    MAX_BLOCK_TX,
    Load,
    assert_same_chains,
    wait_for,
)
from tests.support.nats_cluster import fresh_cluster, nats_cluster

pytestmark = pytest.mark.slow

__all__ = ["nats_cluster"]

STREAM = "CLOCK_SKEW"
HOUR_MS = 3600 * 1000
SKEWS = (0, 3 * HOUR_MS, -3 * HOUR_MS)
"""The true time, three hours ahead, three hours behind."""
MARGIN_MS = 5 * 60 * 1000
"""How far a block time may be from the true time seen around it (a loaded machine)."""


def skewed(offset_ms: int) -> Callable[[], int]:
    """A clock ``offset_ms`` away from the true one."""
    return lambda: wall_clock_ms() + offset_ms


def open_skewed(folder: Path, servers: list[str], offset_ms: int) -> ConsortiumNode:
    """A consortium peer as the fault tests open them, on a clock ``offset_ms`` off."""
    return open_consortium_peer(
        folder,
        contracts=installed_contracts(),
        servers=servers,
        clock=skewed(offset_ms),
        stream=STREAM,
        subject_prefix=f"hl.{STREAM.lower()}",
        max_block_tx=MAX_BLOCK_TX,
        batch_timeout_s=0.02,
        checkpoint_every=CHECKPOINT_EVERY,
        stuck_after_s=5.0,
    )


def test_peers_hours_apart_agree_and_lose_nothing(
    tmp_path: Path, nats_cluster: NatsCluster
) -> None:
    cluster = fresh_cluster(nats_cluster)
    folders = found_consortium(tmp_path, plans=DEMO_ORGS[:3], contracts=installed_contracts())
    started = wall_clock_ms()
    nodes = [
        open_skewed(folder, cluster.urls, offset).start()
        for folder, offset in zip(folders.values(), SKEWS, strict=True)
    ]
    true, ahead, behind = nodes
    load = Load(nodes)
    try:
        wait_for(lambda: all(n.peer.accepting for n in nodes), "every peer takes writes")
        load.start()
        wait_for(lambda: load.count() >= 150, "150 acknowledged transactions")
        # Another organisation's proposal three hours off its clock: refused, saying why.
        for endorser, creator in ((true, ahead), (true, behind), (ahead, true), (behind, ahead)):
            signed = creator.propose(
                f"{creator.org}/admin",
                "supply",
                "register_location",
                {"gln": gln(creator.org, 99_999), "name": "far away"},
            )
            with pytest.raises(BadRequest, match=r"proposal timestamp is \d+ s from") as refused:
                endorser.peer.endorse(signed)
            assert f"at most {MAX_CLOCK_SKEW_MS // 1000} s" in str(refused.value)
        load.stop()
        head = max(n.peer.store.height() for n in nodes)
        wait_for(
            lambda: all(n.peer.store.height() == head for n in nodes), "every peer at one head"
        )
        signed_up_to = (head - 1) // CHECKPOINT_EVERY * CHECKPOINT_EVERY
        wait_for(
            lambda: all(
                all((p["height"] or 0) >= signed_up_to and p["agrees"] for p in view["peers"])
                for view in (n.guard.to_json() for n in nodes)
            ),
            "agreeing checkpoints at the head",
        )
        ended = wall_clock_ms()
    finally:
        load.stop()
        for node in nodes:
            node.stop()
    # Every acknowledged write, whichever clock stamped it, is valid on every peer.
    assert all(code is ValidationCode.VALID for code in load.acked.values())
    assert_same_chains(list(folders.values()), load.acked)
    assert all(n.guard.divergence_count == 0 for n in nodes)
    # Block times are the ordering cluster's, whatever the peers' clocks say.
    check = open_skewed(folders[DEMO_ORGS[0].id], cluster.urls, 0)
    try:
        store = check.peer.store
        times = [store.header(h).timestamp for h in range(1, store.height())]
        assert times == sorted(times)
        assert started - MARGIN_MS <= times[0] and times[-1] <= ended + MARGIN_MS
        # Proposal timestamps are each peer's own clock: the skew is on record.
        by_org: dict[str, list[int]] = {n.org: [] for n in nodes}
        for tx_id in load.acked:
            tx = check.peer.transaction(tx_id)[0]
            by_org[tx.proposal.creator.split("/")[0]].append(tx.proposal.timestamp)
    finally:
        check.stop()
    for node, offset in zip(nodes, SKEWS, strict=True):
        assert by_org[node.org], f"{node.org} got no write acknowledged"
        for stamp in by_org[node.org]:
            assert started + offset - MARGIN_MS <= stamp <= ended + offset + MARGIN_MS
