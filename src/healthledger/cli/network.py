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
``status`` (:mod:`healthledger.cli.network_status`) and stopped by ``down``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, astuple, dataclass
from pathlib import Path
from typing import Any

from healthledger.cli.apps import installed_contracts
from healthledger.errors import HealthledgerError
from healthledger.ledger.errors import LedgerError
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.node.consortium import DEMO_ORGS
from healthledger.node.consortium_peer import (
    DEFAULT_CHECKPOINT_EVERY,
    found_consortium,
)
from healthledger.node.embedded import LEDGER_FILE
from healthledger.node.peer_directory import write_directories
from healthledger.ordering.nats_cluster import (
    NatsCluster,
    NatsClusterError,
    ServerPorts,
    free_port,
    free_ports,
    fresh_server_ports,
)

NETWORK_FILE = "network.json"
NATS_SERVERS = 3
MIN_ORGS = 3
REBIND_ATTEMPTS = 3
"""Starts of a peer during start-up: again on a fresh port when another program took
its self-chosen one, or again as it was when it ended without writing a line."""


class NetworkError(HealthledgerError):
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
    def ports(self) -> set[int]:
        """Every port the network's servers and peers listen on."""
        return {p for n in self.nats for p in (n.client, n.cluster, n.monitor)} | {
            p.port for p in self.peers
        }

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
_LAUNCHED: dict[int, subprocess.Popen[bytes]] = {}
"""Peer processes this process started, kept so that the ``subprocess`` module never
reaps one behind ``alive``'s back (it reaps dropped children at the next launch, and
the exit status, which says how a peer ended, would be lost)."""


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
    launched = _LAUNCHED.get(pid)
    if launched is not None:
        code = launched.poll()
        if code is None:
            return True  # our own running child (perhaps still inside exec)
        _ENDED[pid] = code
        del _LAUNCHED[pid]
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
        cmdline = command_line(pid)
    except OSError:
        return True  # no /proc: trust the recorded id
    if not cmdline:
        # Our own child read while it execs: Popen has returned but the new program's
        # arguments are not in place yet (seen under load right after a launch). It is
        # starting, unless it is a zombie: ended and not yet reaped.
        state, parent = process_state(pid)
        return parent == os.getpid() and state not in ("Z", "X")
    return marker.encode() in cmdline


def command_line(pid: int) -> bytes:
    """The command line of ``pid``, its arguments joined by spaces (OSError without /proc)."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")


def process_state(pid: int) -> tuple[str | None, int | None]:
    """The state letter (R, S, D, Z, ...) and parent process id of ``pid`` in
    ``/proc``; None for what cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None, None
    # "pid (comm) S ppid ...": the name may hold spaces and parentheses.
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 2 or not fields[1].isdigit():
        return (fields[0] if fields else None), None
    return fields[0], int(fields[1])


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
        ports = free_ports(3 * NATS_SERVERS + orgs)
        nats = [ServerPorts(*ports[3 * i : 3 * i + 3]) for i in range(NATS_SERVERS)]
        return nats, ports[3 * NATS_SERVERS :]
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
    ``rebind`` (a network just founded on ports this command chose itself), a server or
    peer whose port another program took meanwhile is started again on a fresh port."""
    _start_nats(root, network, timeout=timeout, say=say, rebind=rebind)
    say(f"NATS JetStream cluster up: {', '.join(network.servers)}")
    # Each peer's gateway reaches the other organisations' peers through this directory.
    write_directories(root / "peers", network.urls)
    start_peers(root, network, network.peers, timeout=timeout, say=say, rebind=rebind)
    ended = [n for n in network.nats if not alive(n.pid, str(root))]
    if ended:
        names = ", ".join(n.name for n in ended)
        raise NetworkError(
            f"NATS server {names} ended while the peers started; see "
            + ", ".join(str(root / "nats" / n.name / "server.log") for n in ended)
        )


def _start_nats(
    root: Path, network: Network, *, timeout: float, say: Callable[[str], None], rebind: bool
) -> None:
    """Start the NATS servers of ``network`` and wait for a JetStream meta leader."""
    for attempt in range(1, REBIND_ATTEMPTS + 1):
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
            return
        except NatsClusterError as exc:
            if not (rebind and attempt < REBIND_ATTEMPTS and cluster.port_taken()):
                raise NetworkError(str(exc)) from exc
            # A new cluster holds nothing yet: start it afresh on other ports.
            cluster.stop()
            shutil.rmtree(root / "nats")
            fresh = fresh_server_ports(len(network.nats), avoid=network.ports)
            for server, ports in zip(network.nats, fresh, strict=True):
                server.client, server.cluster, server.monitor = astuple(ports)
                server.pid = None
            network.save(root)
            say("a NATS port was taken meanwhile: starting the cluster on fresh ports")
        finally:
            cluster.release()


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
    genesis = chain_genesis(root, network)
    for peer in peers:
        launch_peer(root, network, peer)
    for attempt in range(1, REBIND_ATTEMPTS + 1):
        try:
            wait_healthy(root, peers, genesis=genesis, timeout=timeout, say=say)
            return
        except PeerExited as exc:
            if attempt == REBIND_ATTEMPTS:
                raise
            if rebind and PORT_IN_USE in exc.log_tail:
                exc.peer.port = free_port(avoid=network.ports)
                say(f"port taken: starting the peer of {exc.peer.org} on {exc.peer.port} instead")
                write_directories(root / "peers", network.urls)
            elif exc.log_tail:
                raise  # it said why: starting it again would fail the same way
            else:
                # Ended before writing a line (a signal from outside, a crash in start-up):
                # start it once more, as a service manager would, and say so.
                say(f"{exc}: starting it again")
            # Never two of one peer: make sure the one that seemed to end has.
            terminate([exc.peer.pid], str(root), timeout=5.0)
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
            # Every line reaches the log at once, and a crash in native code leaves the
            # Python stack there rather than an empty log.
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"},
        )
    _LAUNCHED[proc.pid] = proc
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


def chain_genesis(root: Path, network: Network) -> str | None:
    """Hash of the genesis block of the network in ``root``, read from the ledger of
    the first peer that has one; None if none can be read."""
    for peer in network.peers:
        ledger = root / "peers" / peer.org / LEDGER_FILE
        if not ledger.is_file():
            continue
        try:
            store = SqliteStore(ledger)
        except LedgerError:
            continue
        try:
            return store.header(0).hash
        except LedgerError:
            continue
        finally:
            store.close()
    return None


def wait_healthy(
    root: Path,
    peers: Sequence[PeerProcess],
    *,
    genesis: str | None,
    timeout: float,
    say: Callable[[str], None],
) -> None:
    """Wait until every peer of ``peers`` serves this network's chain and takes writes;
    NetworkError naming the log of one that exited, or those still waiting after
    ``timeout`` seconds. An answer from another chain on a peer's port (a program that
    took the port first) does not count: that peer fails to bind and is reported."""
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
            if genesis is not None and answer.get("genesis_hash") != genesis:
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
