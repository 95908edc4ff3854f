"""Consortium peers: one organisation's keys each, one genesis, JetStream ordering that
may be down when the peer starts; the ordering position stored with each block."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from healthledger.apps.registry import installed_contracts
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.consortium_peer import found_consortium, open_consortium_peer, peer_org
from healthledger.node.embedded import LEDGER_FILE, EmbeddedNode
from healthledger.node.errors import NodeUnavailable
from healthledger.ordering.nats_cluster import NatsCluster
from tests.support.gs1 import gln

PLANS = DEMO_ORGS[:3]


def test_each_org_folder_holds_only_its_own_keys_and_the_same_genesis(tmp_path: Path) -> None:
    folders = found_consortium(tmp_path, plans=PLANS, contracts=installed_contracts())
    assert sorted(folders) == sorted(p.id for p in PLANS)
    genesis = set()
    for org, folder in folders.items():
        assert peer_org(folder) == org
        node = EmbeddedNode(folder, contracts=installed_contracts())
        try:
            assert {e.cert.org for e in node.keystore.entries()} == {org}
            assert set(node.keystore.vault_keys) == {org} == set(node.keystore.cas)
            assert [i for i, _ in node.keystore.peers()] == [f"{org}/peer0"]
            genesis.add(node.peer.store.header(0).hash)
        finally:
            node.stop()
    assert len(genesis) == 1


def test_the_ordering_position_commits_with_its_block(tmp_path: Path) -> None:
    folders = found_consortium(tmp_path, plans=PLANS, contracts=installed_contracts())
    folder = folders[PLANS[0].id]
    node = EmbeddedNode(folder, contracts=installed_contracts())
    try:
        chain = node.peer.chain
        assert node.peer.store.ordering_position() == 0
        chain.append([], timestamp=node.clock(), stream_seq=41)
        assert node.peer.store.ordering_position() == 41
        chain.append([], timestamp=node.clock())  # a block without a position keeps the last
        assert node.peer.store.ordering_position() == 41
    finally:
        node.stop()
    reopened = SqliteStore(folder / LEDGER_FILE)
    try:
        assert reopened.ordering_position() == 41
        assert reopened.height() == 3
    finally:
        reopened.close()


@pytest.mark.slow
def test_a_peer_starts_without_nats_serves_queries_and_writes_once_it_is_up(
    tmp_path: Path,
) -> None:
    folders = found_consortium(tmp_path / "peers", plans=PLANS, contracts=installed_contracts())
    org = PLANS[2].id
    cluster = NatsCluster(tmp_path / "nats")  # ports chosen, nothing started yet
    node = open_consortium_peer(
        folders[org],
        contracts=installed_contracts(),
        servers=cluster.urls,
        connect_timeout_s=1.0,
    )
    try:
        node.start()  # a consortium peer does not fail when NATS is down
        assert not node.peer.accepting
        organisations = node.query(f"{org}/admin", "membership", "organisations", {})
        assert {o["id"] for o in organisations} == {p.id for p in PLANS}
        with pytest.raises(NodeUnavailable, match=r"ordering is unavailable.*NATS"):
            node.invoke(
                f"{org}/admin", "supply", "register_location", {"gln": gln(org, 1), "name": "x"}
            )
        with cluster:
            deadline = time.monotonic() + 30
            while not node.peer.accepting and time.monotonic() < deadline:
                time.sleep(0.1)
            assert node.peer.accepting
            receipt, _ = node.invoke(
                f"{org}/admin", "supply", "register_location", {"gln": gln(org, 2), "name": "depot"}
            )
            assert receipt.code is ValidationCode.VALID
            endorsers = node.peer.block(receipt.height).transactions[receipt.index].endorsements
            assert [e.endorser for e in endorsers] == [f"{org}/peer0"]
            assert node.peer.store.ordering_position() > 0
            node.stop()
    finally:
        node.stop()
