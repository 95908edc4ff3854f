"""``healthledger network up|status|down``: a whole consortium on this machine
(ARCHITECTURE.md section 5): a three-server NATS JetStream cluster and one peer
process per organisation, each with its own data folder, keys and API port.

Layout of the network folder DIR::

    DIR/network.json        organisations, ports and process ids
    DIR/nats/n1..n3/        each NATS server's configuration, store and log
    DIR/peers/genesis.json  the consortium's genesis transaction
    DIR/peers/<org>/        one peer's data folder (that organisation's keys only)
    DIR/logs/<org>.log      one peer's output

Every process is started in its own session, so it outlives the command that started
it; ``down`` stops them by process id (SIGTERM, then SIGKILL after a timeout). A peer
brought in later with ``network join`` into ``DIR/peers/<org>`` is recorded beside
the founders' (``joined``), started with :func:`launch_peer` as they are, listed by
``status`` and stopped by ``down``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from healthledger.cli.apps import installed_contracts
from healthledger.ledger.errors import LedgerError
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.node.checkpoint import (
    Checkpoint,
    CheckpointError,
    compare,
    origin_of,
    read_notes,
    verify_peer_note,
)
from healthledger.node.consortium import DEMO_ORGS
from healthledger.node.consortium_peer import DEFAULT_CHECKPOINT_EVERY, found_consortium
from healthledger.node.embedded import CHECKPOINT_DIR, LEDGER_FILE
from healthledger.node.peer_directory import write_directories
from healthledger.ordering.nats_cluster import NatsCluster, NatsClusterError, ServerPorts, free_port

NETWORK_FILE = "network.json"
NATS_SERVERS = 3
MIN_ORGS = 3
REBIND_ATTEMPTS = 3
"""Starts of a peer during start-up: again on a fresh port when another program took
its self-chosen one, or again as it was when it ended without writing a line."""
CHECKPOINTS_COMPARED = 50
"""Status compares each peer's most recent this many checkpoints."""


class NetworkError(Exception):
    """The network cannot be brought up, inspected or stopped as asked."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class NatsProcess:
    """One NATS server of the network."""

    name: str
    client: int
    cluster: int
    monitor: int
    pid: int | None = None


@dataclass
class PeerProcess:
    """One organisation's peer process."""

    org: str
    port: int
    pid: int | None = None
    joined: bool = False
    """Brought in with ``network join`` rather than founded by ``network up``."""


@dataclass
class Network:
    """What ``network.json`` records."""

    orgs: list[str]
    nats: list[NatsProcess]
    peers: list[PeerProcess]
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    format: int = 1

    @property
    def servers(self) -> list[str]:
        """Client URLs of the NATS servers."""
        return [f"nats://127.0.0.1:{n.client}" for n in self.nats]

    @property
    def urls(self) -> dict[str, str]:
        """Base URL of each organisation's peer."""
        return {p.org: f"http://127.0.0.1:{p.port}" for p in self.peers}

    def save(self, root: Path) -> None:
        """Write ``network.json`` atomically."""
        tmp = root / (NETWORK_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, root / NETWORK_FILE)

    @classmethod
    def load(cls, root: Path) -> Network:
        """Read ``network.json`` of ``root``; NetworkError if there is none."""
        if not root.exists():
            raise NetworkError(f"{root} does not exist", 2)
        if not root.is_dir():
            raise NetworkError(f"{root} is not a folder", 2)
        path = root / NETWORK_FILE
        if not path.is_file():
            raise NetworkError(f"{root} holds no network (no {NETWORK_FILE})", 2)
        try:
            data = json.loads(path.read_text())
            return cls(
                orgs=list(data["orgs"]),
                nats=[NatsProcess(**n) for n in data["nats"]],
                peers=[PeerProcess(**p) for p in data["peers"]],
                checkpoint_every=int(data.get("checkpoint_every", DEFAULT_CHECKPOINT_EVERY)),
                format=int(data.get("format", 1)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise NetworkError(f"{path} is not readable: {exc}", 2) from exc


# --- processes -------------------------------------------------------------------


_ENDED: dict[int, int] = {}
"""Exit codes of our own children reaped by ``alive`` (negative: killed by that signal)."""


def ended_how(pid: int | None) -> str:
    """How our child ``pid`` ended, in words, if ``alive`` reaped it; else ''."""
    code = _ENDED.get(pid) if pid is not None else None
    if code is None:
        return ""
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def alive(pid: int | None, marker: str) -> bool:
    """True if ``pid`` runs and is ours (its command line mentions ``marker``, so a
    recycled process id after a reboot is never signalled)."""
    if pid is None:
        return False
    try:
        # Reap it if it is our own finished child (a zombie still answers kill 0).
        reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            _ENDED[pid] = os.waitstatus_to_exitcode(status)
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return True  # no /proc: trust the recorded id
    return marker.encode() in cmdline


def terminate(pids: Sequence[int | None], marker: str, *, timeout: float) -> int:
    """SIGTERM every live process of ``pids``, then SIGKILL those still running after
    ``timeout`` seconds; returns how many were running."""
    running = [pid for pid in pids if pid is not None and alive(pid, marker)]
    for pid in running:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(pid, marker) for pid in running) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in running:
        if alive(pid, marker):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while any(alive(pid, marker) for pid in running) and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(running)


def port_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers themselves bind: a port left in TIME_WAIT by the last run is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def http_json(url: str, *, timeout: float = 2.0) -> Any:
    """GET ``url`` and parse its JSON body."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own local URL
        return json.loads(response.read())


# --- up --------------------------------------------------------------------------


def _plan_ports(orgs: int, base_port: int | None) -> tuple[list[ServerPorts], list[int]]:
    if base_port is None:
        nats = [ServerPorts(free_port(), free_port(), free_port()) for _ in range(NATS_SERVERS)]
        return nats, [free_port() for _ in range(orgs)]
    nats = [
        ServerPorts(base_port + 3 * i, base_port + 3 * i + 1, base_port + 3 * i + 2)
        for i in range(NATS_SERVERS)
    ]
    first_peer = base_port + 3 * NATS_SERVERS + 1
    return nats, [first_peer + i for i in range(orgs)]


def _check_ports(network: Network) -> None:
    ports = [p for n in network.nats for p in (n.client, n.cluster, n.monitor)]
    ports += [p.port for p in network.peers]
    if max(ports) > 65535 or min(ports) < 1:
        raise NetworkError(f"ports {min(ports)}-{max(ports)} are out of range", 2)
    for port in ports:
        if not port_free(port):
            raise NetworkError(
                f"port {port} is already in use on 127.0.0.1; stop what uses it or "
                "choose another --base-port",
                2,
            )


def up(
    root: Path,
    *,
    orgs: int,
    base_port: int | None,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
    timeout: float = 60.0,
    say: Callable[[str], None] = print,
) -> Network:
    """Found (or restart) the network in ``root`` and wait until every part is healthy."""
    root = root.absolute()
    if checkpoint_every < 1:
        raise NetworkError("--checkpoint-every must be at least 1", 2)
    if not MIN_ORGS <= orgs <= len(DEMO_ORGS):
        raise NetworkError(f"--orgs must be between {MIN_ORGS} and {len(DEMO_ORGS)}", 2)
    if root.exists() and not root.is_dir():
        raise NetworkError(f"{root} is not a folder", 2)
    if not root.parent.is_dir():
        raise NetworkError(f"{root.parent} does not exist", 2)
    marker = str(root)
    rebind = False
    if (root / NETWORK_FILE).exists():
        network = Network.load(root)
        pids = [n.pid for n in network.nats] + [p.pid for p in network.peers]
        if any(alive(pid, marker) for pid in pids):
            raise NetworkError(
                f"a network is already running in {root}; run "
                f"'healthledger network down --data {root}' first"
            )
        founders = sum(not p.joined for p in network.peers)
        if founders != orgs:
            raise NetworkError(
                f"{root} holds a network founded by {founders} organisations, not {orgs}", 2
            )
        say(f"restarting the network in {root}")
    else:
        if root.is_dir() and any(root.iterdir()):
            raise NetworkError(f"{root} is not empty and holds no network", 2)
        nats_ports, peer_ports = _plan_ports(orgs, base_port)
        rebind = base_port is None
        plans = DEMO_ORGS[:orgs]
        network = Network(
            orgs=[p.id for p in plans],
            nats=[
                NatsProcess(f"n{i + 1}", p.client, p.cluster, p.monitor)
                for i, p in enumerate(nats_ports)
            ],
            peers=[PeerProcess(p.id, port) for p, port in zip(plans, peer_ports, strict=True)],
            checkpoint_every=checkpoint_every,
        )
        _check_ports(network)
        root.mkdir(exist_ok=True)
        found_consortium(root / "peers", plans=plans, contracts=installed_contracts())
        network.save(root)
        say(f"founded a consortium of {orgs} organisations in {root}")
    _check_ports(network)
    try:
        _start(root, network, timeout=timeout, say=say, rebind=rebind)
    except BaseException:
        down(root, timeout=5.0, say=lambda _m: None)
        raise
    return network


def _start(
    root: Path,
    network: Network,
    *,
    timeout: float,
    say: Callable[[str], None],
    rebind: bool = False,
) -> None:
    """Start the NATS servers, then the peers, and wait until all are healthy. With
    ``rebind`` (ports this command chose itself), a peer whose port another program
    took meanwhile is started again on a fresh port."""
    try:
        cluster = NatsCluster(
            root / "nats",
            size=len(network.nats),
            ports=[ServerPorts(n.client, n.cluster, n.monitor) for n in network.nats],
            detached=True,
        )
    except NatsClusterError as exc:
        raise NetworkError(str(exc)) from exc
    cluster.write_configs()
    for i in range(cluster.size):
        cluster.launch(i)
        network.nats[i].pid = cluster.pid(i)
    network.save(root)
    try:
        cluster.wait_ready(timeout=timeout)
    except NatsClusterError as exc:
        raise NetworkError(str(exc)) from exc
    finally:
        cluster.release()
    say(f"NATS JetStream cluster up: {', '.join(network.servers)}")
    # Each peer's gateway reaches the other organisations' peers through this directory.
    write_directories(root / "peers", network.urls)
    start_peers(root, network, network.peers, timeout=timeout, say=say, rebind=rebind)


def start_peers(
    root: Path,
    network: Network,
    peers: Sequence[PeerProcess],
    *,
    timeout: float,
    say: Callable[[str], None],
    rebind: bool,
) -> None:
    """Launch ``peers`` and wait until every one serves and takes writes. With
    ``rebind`` (ports chosen by this command, not by the operator), a peer whose port
    another program took meanwhile is started again on a fresh port, and every peer
    directory names the new one. A peer that ended without writing a line (a signal
    from outside, a crash in start-up) is started again as it was; one that said why
    it stopped is reported."""
    for peer in peers:
        launch_peer(root, network, peer)
    for attempt in range(1, REBIND_ATTEMPTS + 1):
        try:
            wait_healthy(root, peers, timeout=timeout, say=say)
            return
        except PeerExited as exc:
            if attempt == REBIND_ATTEMPTS:
                raise
            if rebind and PORT_IN_USE in exc.log_tail:
                exc.peer.port = free_port()
                say(f"port taken: starting the peer of {exc.peer.org} on {exc.peer.port} instead")
                write_directories(root / "peers", network.urls)
            elif exc.log_tail:
                raise  # it said why: starting it again would fail the same way
            else:
                # Ended before writing a line (a signal from outside, a crash in start-up):
                # start it once more, as a service manager would, and say so.
                say(f"{exc}: starting it again")
            launch_peer(root, network, exc.peer)


def launch_peer(root: Path, network: Network, peer: PeerProcess) -> None:
    """Start the peer process of ``peer`` (its folder ``root/peers/<org>``) in its own
    session, its output appended to ``root/logs/<org>.log``, and record its process id."""
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    with (logs / f"{peer.org}.log").open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "healthledger.cli.main",
                "node",
                "--data",
                str(root / "peers" / peer.org),
                "--port",
                str(peer.port),
                "--jetstream",
                ",".join(network.servers),
                "--demo-custody",
                "--checkpoint-every",
                str(network.checkpoint_every),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    peer.pid = proc.pid
    network.save(root)


LOG_TAIL_LINES = 5
"""Lines of an exited peer's log quoted in the error."""
PORT_IN_USE = "address already in use"


class PeerExited(NetworkError):
    """A peer process ended while starting; ``log_tail`` quotes the end of its log."""

    def __init__(self, peer: PeerProcess, log: Path) -> None:
        try:
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        self.peer = peer
        self.log_tail = "\n".join(line for line in lines[-LOG_TAIL_LINES:] if line.strip())
        how = ended_how(peer.pid)
        quoted = f"; its log ends: {self.log_tail}" if self.log_tail else " (its log is empty)"
        super().__init__(
            f"the peer of {peer.org} exited{f' ({how})' if how else ''}; see {log}{quoted}"
        )


def wait_healthy(
    root: Path, peers: Sequence[PeerProcess], *, timeout: float, say: Callable[[str], None]
) -> None:
    """Wait until every peer of ``peers`` serves and takes writes; NetworkError naming
    the log of one that exited, or those still waiting after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    waiting = list(peers)
    while waiting:
        for peer in list(waiting):
            if not alive(peer.pid, str(root)):
                raise PeerExited(peer, root / "logs" / f"{peer.org}.log")
            try:
                answer = http_json(f"http://127.0.0.1:{peer.port}/api/v1/status", timeout=1.0)
            except (OSError, ValueError):
                continue
            # Serving queries is not enough: wait until its orderer takes writes too.
            if not answer.get("accepting_writes"):
                continue
            waiting.remove(peer)
            say(f"peer {peer.org}: http://127.0.0.1:{peer.port}/")
        if waiting and time.monotonic() > deadline:
            names = ", ".join(p.org for p in waiting)
            raise NetworkError(f"peers not healthy after {timeout:g} s: {names}")
        if waiting:
            time.sleep(0.2)


# --- status ------------------------------------------------------------------------


def status(root: Path) -> dict[str, Any]:
    """Each peer's height, head hash, lag and health, and each NATS server's health."""
    root = root.absolute()
    network = Network.load(root)
    peers: list[dict[str, Any]] = []
    for peer in network.peers:
        item: dict[str, Any] = {
            "org": peer.org,
            "url": f"http://127.0.0.1:{peer.port}/",
            "pid": peer.pid if alive(peer.pid, str(root)) else None,
            "height": None,
            "block_hash": None,
            "lag": None,
            "healthy": False,
        }
        try:
            answer = http_json(f"http://127.0.0.1:{peer.port}/api/v1/status")
        except (OSError, ValueError) as exc:
            item["error"] = str(getattr(exc, "reason", exc))
        else:
            live = answer.get("checkpoints") or {}
            delivery = answer.get("delivery") or {}
            item.update(
                height=int(answer["height"]),
                block_hash=answer.get("head_hash"),
                log_size=answer.get("log_size"),
                log_root=answer.get("log_root"),
                accepting_writes=bool(answer.get("accepting_writes")),
                # Reachable, ordering, delivering and serving (not forked or tampered).
                healthy=bool(answer.get("healthy", True)),
                checkpoint_state=live.get("state"),
                serving=bool(live.get("serving", True)),
                refusal=live.get("reason"),
                delivery_stuck=bool(delivery.get("stuck", False)),
                rejected_notes=int(live.get("rejected_count", 0)),
            )
        peers.append(item)
    heights = [p["height"] for p in peers if p["height"] is not None]
    top = max(heights, default=0)
    for item in peers:
        if item["height"] is not None:
            item["lag"] = top - item["height"]
    nats = []
    for server in network.nats:
        try:
            health = http_json(f"http://127.0.0.1:{server.monitor}/healthz")
            healthy = health.get("status") == "ok"
        except (OSError, ValueError):
            healthy = False
        nats.append(
            {
                "name": server.name,
                "url": f"nats://127.0.0.1:{server.client}",
                "pid": server.pid if alive(server.pid, str(root)) else None,
                "healthy": healthy,
            }
        )
    hashes = {p["block_hash"] for p in peers if p["healthy"]}
    common = all(p["healthy"] for p in peers) and len(hashes) == 1 and top > 0
    checkpoints = _checkpoints(root, network)
    minority = {org for d in checkpoints["divergences"] for org in d["minority"]}
    for item in peers:
        item["checkpoint"] = checkpoints["latest"].get(item["org"])
        # Named by the notes on disk, or by the peer's own live comparison.
        item["diverged"] = item["org"] in minority or item.get("checkpoint_state") in {
            "minority",
            "tampered",
        }
        item["state"] = peer_state(item, in_minority=item["org"] in minority)
    del checkpoints["latest"]
    checkpoints["peer_states"] = {
        p["org"]: p["checkpoint_state"] for p in peers if p.get("checkpoint_state")
    }
    if any(state != "ok" for state in checkpoints["peer_states"].values()):
        checkpoints["alarm"] = True
    return {
        "network": str(root),
        "peers": peers,
        "nats": nats,
        "common_head": common,
        "checkpoints": checkpoints,
    }


PEER_STATES = (
    "ok",
    "down",
    "tampered",
    "minority",
    "diverged",
    "stuck",
    "no-ordering",
    "unhealthy",
)
"""What ``status`` says of a peer, most serious first after ``ok``: unreachable; a
stored block failed its self-check; a majority signed other checkpoints (both stop
serving); its checkpoints disagree with another's; ordered transactions wait and its
stream position does not move; it cannot reach the ordering cluster; it reports itself
unhealthy for another reason."""


def peer_state(item: Mapping[str, Any], *, in_minority: bool) -> str:
    """One of PEER_STATES for a peer's status ``item``; ``in_minority``: the notes on
    disk put it in the minority of a divergence."""
    if item["height"] is None:
        return "down"
    live = item.get("checkpoint_state")
    if live in {"tampered", "minority"}:
        return str(live)
    if in_minority or live == "diverged":
        return "diverged"
    if item.get("delivery_stuck"):
        return "stuck"
    if not item.get("accepting_writes"):
        return "no-ordering"
    return "ok" if item["healthy"] else "unhealthy"


def _checkpoints(root: Path, network: Network) -> dict[str, Any]:
    """Every peer's recent signed checkpoints, verified against the consortium's
    membership and compared: an alarm if any disagree or fail verification."""
    report: dict[str, Any] = {
        "every": network.checkpoint_every,
        "latest": {},
        "divergences": [],
        "invalid": {},
        "alarm": False,
    }
    ledgers = [root / "peers" / p.org / LEDGER_FILE for p in network.peers]
    reference = next((path for path in ledgers if path.is_file()), None)
    if reference is None:
        return report
    try:
        store = SqliteStore(reference)
    except LedgerError as exc:
        report["invalid"]["*"] = [f"cannot open {reference}: {exc}"]
        report["alarm"] = True
        return report
    try:
        origin = origin_of(store.header(0))
        verified: dict[str, dict[int, Checkpoint]] = {}
        for peer in network.peers:
            notes = read_notes(root / "peers" / peer.org / CHECKPOINT_DIR)
            good: dict[int, Checkpoint] = {}
            for height in sorted(notes)[-CHECKPOINTS_COMPARED:]:
                try:
                    good[height] = verify_peer_note(
                        notes[height], org=peer.org, state=store, origin=origin
                    )
                except CheckpointError as exc:
                    report["invalid"].setdefault(peer.org, []).append(f"{height}: {exc}")
            verified[peer.org] = good
            if good:
                last = good[max(good)]
                report["latest"][peer.org] = {"height": last.height, "block_hash": last.block_hash}
    finally:
        store.close()
    report["divergences"] = [d.to_json() for d in compare(verified)]
    report["alarm"] = bool(report["divergences"] or report["invalid"])
    return report


# --- down --------------------------------------------------------------------------


def down(root: Path, *, timeout: float = 10.0, say: Callable[[str], None] = print) -> int:
    """Stop every peer, then every NATS server; returns how many processes were stopped.
    Stopping a network that is already down does nothing."""
    root = root.absolute()
    network = Network.load(root)
    marker = str(root)
    stopped = 0
    # Peers first, so none is left publishing to a cluster that is going away.
    for group in (network.peers, network.nats):
        stopped += terminate([p.pid for p in group], marker, timeout=timeout)
        for proc in group:
            proc.pid = None
        network.save(root)
    say(f"stopped {stopped} processes" if stopped else f"no process of {root} was running")
    return stopped
