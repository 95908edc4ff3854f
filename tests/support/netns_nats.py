"""A three-server NATS JetStream cluster whose servers each run in a namespace of a
``NetLab`` (``tests/support/netns.py``), so that the test can cut the links between
them, and between them and the peers.

Same configuration as ``NatsCluster`` (stream replicas 3, ``sync_interval: always``),
only listening on the server's namespace address; the monitoring port is read from
inside the server's own namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from healthledger.ordering.nats_cluster import NatsCluster, ServerPorts, server_config
from tests.support.netns import NetLab

PORTS = ServerPorts(client=4222, cluster=6222, monitor=8222)
"""Every server has an address of its own, so they can all use the usual ports."""


class NamespacedNatsCluster(NatsCluster):
    """``NatsCluster`` with member ``i`` running in lab node ``names[i]``."""

    def __init__(self, base_dir: Path, lab: NetLab, names: list[str]) -> None:
        super().__init__(base_dir, size=len(names), ports=[PORTS] * len(names))
        self.lab = lab
        self.nodes = [lab.nodes[name] for name in names]

    @property
    def urls(self) -> list[str]:
        """Client URLs of every member, at its namespace address."""
        return [f"nats://{node.address}:{PORTS.client}" for node in self.nodes]

    def node_name(self, index: int) -> str:
        """The lab node member ``index`` runs in."""
        return self.nodes[index].name

    def write_configs(self) -> None:
        """Every member's configuration, listening on its namespace address."""
        cluster = self.cluster_name()
        for i, node in enumerate(self.nodes):
            folder = self.server_dir(i)
            (folder / "store").mkdir(parents=True, exist_ok=True)
            others = [n for j, n in enumerate(self.nodes) if j != i]
            text = server_config(
                name=self.name(i),
                cluster=cluster,
                ports=PORTS,
                routes=[PORTS.cluster] * len(others),
                store_dir=folder / "store",
                sync_always=self.sync_always,
                host=node.address,
                route_hosts=[n.address for n in others],
            )
            self.config_path(i).write_text(text)

    def _spawn(self, index: int) -> None:
        if self.running(index):
            return
        log = (self.server_dir(index) / "server.log").open("ab")
        self._logs[index] = log
        self._procs[index] = self.lab.popen(
            self.nodes[index].name,
            [self.binary, "-c", str(self.config_path(index))],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def _monitor(self, index: int, path: str) -> Any:
        node = self.nodes[index]
        body = self.lab.http_get(node.name, f"http://{node.address}:{PORTS.monitor}{path}")
        if body is None:
            raise OSError(f"{self.name(index)} did not answer {path}")
        return json.loads(body)


_STEPDOWN = """
import asyncio, json, sys
import nats

async def main() -> None:
    nc = await nats.connect(sys.argv[1], connect_timeout=5)
    subject = "$JS.API.STREAM.LEADER.STEPDOWN." + sys.argv[2]
    body = json.dumps({"placement": {"preferred": sys.argv[3]}}).encode()
    await nc.request(subject, body, timeout=5)
    await nc.close()

asyncio.run(main())
"""


def make_leader(cluster: NamespacedNatsCluster, stream: str, index: int) -> bool:
    """Ask ``stream``'s leader to hand over to member ``index`` (from inside that
    member's namespace); True once it leads, False if it still does not after a few
    tries."""
    node = cluster.nodes[index]
    for _ in range(5):
        if cluster.stream_leader(stream) == index:
            return True
        argv = [sys.executable, "-c", _STEPDOWN, cluster.urls[index], stream, cluster.name(index)]
        subprocess.run(node.command(argv), capture_output=True, timeout=30, check=False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and cluster.stream_leader(stream) is None:
            time.sleep(0.2)
    return cluster.stream_leader(stream) == index
