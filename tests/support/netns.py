"""A small network of Linux network namespaces for the partition tests.

Every node (a NATS server, a peer process) lives in a namespace of its own with one
address, ``10.77.<n>.2``, on a veth link to a router namespace (the *hub*), which
forwards between them. A partition is a pair of policy rules in the hub that discard
what one node sends the other (``ip rule ... blackhole``): packets leave the sender
and vanish in transit, as on a real cut link, with no error for either end. Nothing
is added to the namespace the test runs in: no address, no route, no rule.

Needs root and iproute2 (``ip``); the lab deletes its namespaces when closed, and a
new lab first deletes those a killed earlier run left behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from types import TracebackType
from typing import Any

PREFIX = "hlnet"
"""Every namespace a lab makes is named ``hlnet-<pid>-<token>-<node>``."""


class NetLabError(Exception):
    """The namespaces could not be made or changed."""


def lab_unavailable() -> str | None:
    """Why a lab cannot be made on this machine (not root, no ``ip``), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed; `make test` installs it"
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip`` with ``args``; NetLabError with its message if it fails and ``check``."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise NetLabError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def remove_stale_namespaces() -> None:
    """Delete lab namespaces whose making process has ended (a run killed mid-test)."""
    listed = ip("netns", "list", check=False).stdout.split()
    for name in listed:
        parts = name.split("-")
        if len(parts) < 4 or parts[0] != PREFIX or not parts[1].isdigit():
            continue
        if not Path(f"/proc/{parts[1]}").exists():
            ip("netns", "delete", name, check=False)


@dataclass(frozen=True)
class Node:
    """One namespace of the lab."""

    name: str
    """The node's name in the test (``n1``, ``p2``)."""
    netns: str
    """The namespace it runs in."""
    address: str
    """Its one address, reachable from every other node of the lab."""

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this node's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]


class NetLab:
    """Namespaces joined by a router namespace, with partitions made and healed there."""

    def __init__(self, names: Sequence[str]) -> None:
        if len(set(names)) != len(names) or not names:
            raise ValueError("a lab needs distinct node names")
        self._tag = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(3)}"
        self.hub = f"{self._tag}-hub"
        self.nodes = {
            name: Node(name, f"{self._tag}-{name}", f"10.77.{i}.2")
            for i, name in enumerate(names, start=1)
        }
        self._cuts: set[tuple[str, str]] = set()
        self._made: list[str] = []

    # --- life cycle -------------------------------------------------------------

    def open(self) -> NetLab:
        """Make the namespaces, links and routes; everything made is deleted on failure."""
        remove_stale_namespaces()
        try:
            self._make(self.hub)
            ip("netns", "exec", self.hub, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            for i, node in enumerate(self.nodes.values(), start=1):
                self._make(node.netns)
                link = f"h{i}"
                ip("link", "add", "eth0", "netns", node.netns, "type", "veth",
                   "peer", "name", link, "netns", self.hub)  # fmt: skip
                ip("-n", self.hub, "addr", "add", f"10.77.{i}.1/30", "dev", link)
                ip("-n", self.hub, "link", "set", link, "up")
                ip("-n", node.netns, "addr", "add", f"{node.address}/30", "dev", "eth0")
                ip("-n", node.netns, "link", "set", "eth0", "up")
                ip("-n", node.netns, "route", "add", "default", "via", f"10.77.{i}.1")
        except NetLabError:
            self.close()
            raise
        return self

    def _make(self, netns: str) -> None:
        ip("netns", "add", netns)
        self._made.append(netns)
        ip("-n", netns, "link", "set", "lo", "up")

    def close(self) -> None:
        """Delete every namespace (and with them the links and rules)."""
        for netns in reversed(self._made):
            ip("netns", "delete", netns, check=False)
        self._made.clear()
        self._cuts.clear()

    def __enter__(self) -> NetLab:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- partitions -------------------------------------------------------------

    def cut(self, a: str, b: str) -> None:
        """Drop everything between nodes ``a`` and ``b``, both ways (idempotent)."""
        pair = (min(a, b), max(a, b))
        if pair in self._cuts:
            return
        for src, dst in ((a, b), (b, a)):
            self._rule("add", src, dst)
        self._cuts.add(pair)

    def mend(self, a: str, b: str) -> None:
        """Carry traffic between ``a`` and ``b`` again (idempotent)."""
        pair = (min(a, b), max(a, b))
        if pair not in self._cuts:
            return
        for src, dst in ((a, b), (b, a)):
            self._rule("del", src, dst)
        self._cuts.discard(pair)

    def isolate(self, name: str, from_: Sequence[str] | None = None) -> None:
        """Cut ``name`` off from every node in ``from_`` (default: every other node)."""
        for other in from_ if from_ is not None else self.nodes:
            if other != name:
                self.cut(name, other)

    def split(self, side: Sequence[str]) -> None:
        """Cut every node of ``side`` off from every node not in it."""
        rest = [n for n in self.nodes if n not in side]
        for a in side:
            for b in rest:
                self.cut(a, b)

    def heal(self) -> None:
        """Mend every cut."""
        for a, b in sorted(self._cuts):
            self.mend(a, b)

    @property
    def cuts(self) -> set[tuple[str, str]]:
        """The pairs cut right now."""
        return set(self._cuts)

    def _rule(self, action: str, src: str, dst: str) -> None:
        source, target = self.nodes[src].address, self.nodes[dst].address
        ip("-n", self.hub, "rule", action, "from", source, "to", target, "blackhole")

    def reachable_pairs(self) -> list[tuple[str, str]]:
        """Every pair of nodes not cut apart."""
        return [p for p in combinations(sorted(self.nodes), 2) if p not in self._cuts]

    # --- running things inside -----------------------------------------------------

    def popen(self, name: str, argv: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` in node ``name``'s namespace (``ip netns exec`` execs it, so the
        process id is the command's own)."""
        return subprocess.Popen(self.nodes[name].command(argv), **options)

    def http_get(self, name: str, url: str, *, timeout: float = 2.0) -> bytes | None:
        """The body ``url`` answers, asked from inside node ``name``; None on any failure."""
        fetch = (
            "import sys, urllib.request\n"
            "sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], "
            "timeout=float(sys.argv[2])).read())\n"
        )
        argv = [sys.executable, "-S", "-c", fetch, url, str(timeout)]
        try:
            done = subprocess.run(
                self.nodes[name].command(argv),
                capture_output=True,
                timeout=timeout + 10,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None
        return done.stdout if done.returncode == 0 else None
