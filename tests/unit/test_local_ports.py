"""Ports for a local network: all different within one plan, none of those to avoid;
each new NATS cluster has a name of its own, so its servers never route into another
cluster on the machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthledger.ordering.nats_cluster import (
    CLUSTER_NAME,
    NatsCluster,
    free_ports,
    fresh_server_ports,
)


def test_free_ports_are_all_different_and_avoid_those_named() -> None:
    avoid = set(free_ports(20))
    for _ in range(50):
        ports = free_ports(40, avoid=avoid)
        assert len(set(ports)) == 40
        assert not avoid & set(ports)
    servers = fresh_server_ports(3)
    flat = [p for s in servers for p in (s.client, s.cluster, s.monitor)]
    assert len(set(flat)) == 9


def test_a_new_cluster_gets_a_name_of_its_own_and_keeps_it(tmp_path: Path) -> None:
    first = NatsCluster(tmp_path / "a", binary="/bin/true")
    second = NatsCluster(tmp_path / "b", binary="/bin/true")
    first.write_configs()
    second.write_configs()
    name = first.cluster_name()
    assert name.startswith(CLUSTER_NAME + "-") and name != second.cluster_name()
    assert f"name: {name}\n" in first.config_path(0).read_text()
    again = NatsCluster(tmp_path / "a", binary="/bin/true", ports=first.ports)
    again.write_configs()
    assert again.cluster_name() == name


def test_a_cluster_configured_before_names_kept_their_shared_name(tmp_path: Path) -> None:
    old = NatsCluster(tmp_path / "old", binary="/bin/true")
    old.write_configs()
    (tmp_path / "old" / "cluster-name").unlink()
    # As configured by an earlier version: the configuration files, no name file.
    reopened = NatsCluster(tmp_path / "old", binary="/bin/true", ports=old.ports)
    reopened.write_configs()
    assert reopened.cluster_name() == CLUSTER_NAME
    assert f"name: {CLUSTER_NAME}\n" in reopened.config_path(1).read_text()


def test_ports_are_chosen_below_the_ephemeral_range_where_it_is_known() -> None:
    """A port below the range the kernel hands to outgoing connections is never taken by
    one while its server is down and restarting."""
    from healthledger.ordering.nats_cluster import EPHEMERAL_RANGE_FILE, LISTEN_PORTS_FROM

    if not EPHEMERAL_RANGE_FILE.is_file():
        pytest.skip("this kernel does not say its ephemeral port range")
    low = int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    ports = free_ports(30)
    assert len(set(ports)) == 30
    assert all(LISTEN_PORTS_FROM <= port < low for port in ports)
