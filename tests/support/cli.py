"""The real `healthledger` command in a subprocess, and a network folder that is
always taken down after its test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthledger.network.layout import NETWORK_FILE, Network
from healthledger.network.processes import alive


def healthledger(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real CLI."""
    return subprocess.run(
        [sys.executable, "-m", "healthledger.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def pids(root: Path) -> list[int]:
    """Process ids the network in ``root`` recorded, live or not."""
    network = Network.load(root)
    return [p.pid for p in network.peers if p.pid] + [n.pid for n in network.nats if n.pid]


def not_running(root: Path) -> list[str]:
    """Each recorded process of the network in ``root`` that is not running, named with
    the end of its log (empty when all run)."""
    network = Network.load(root)
    logs = [(f"peer {p.org}", p.pid, root / "logs" / f"{p.org}.log") for p in network.peers]
    logs += [(f"NATS {n.name}", n.pid, root / "nats" / n.name / "server.log") for n in network.nats]
    ended = []
    for name, pid, log in logs:
        if alive(pid, str(root.absolute())):
            continue
        try:
            tail = log.read_text(errors="replace").splitlines()[-5:]
        except OSError:
            tail = ["(no log)"]
        ended.append(f"{name} (process {pid}) is not running; its log ends: {tail}")
    return ended


@pytest.fixture
def network_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder for `healthledger network up`; afterwards the network is taken down
    and no process of it is left behind, even when the test failed."""
    root = tmp_path / "net"
    yield root
    if (root / NETWORK_FILE).exists():
        started = pids(root)
        healthledger("network", "down", "--data", str(root), "--timeout", "5")
        for pid in started:
            if alive(pid, str(root.absolute())):
                os.kill(pid, 9)
