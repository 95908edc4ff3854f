"""``healthledger bench network --clients N``: a consortium as deployed, driven over
HTTP by N client processes through the client library.

The consortium is started as ``network up`` starts one: a three-server NATS JetStream
cluster (fsync before every ack) and one peer process per organisation, each with its
own folder and keys, serving the platform's API (``bench_clients_node``). Each client
process (``bench_clients_worker``) holds an organisation admin's identity in an
encrypted PKCS#8 key file and writes ``bench.put`` calls through its organisation's
peer: signed in the client, endorsed, checked, submitted, receipt awaited. A thread
here follows every peer's event stream to learn when each block committed on each
peer, and every process's CPU time is read before and after each load (CPU per
committed transaction, by process).

Three loads, one after the other on the same consortium:

1. peak: every client keeps ``concurrency`` calls in flight (closed loop), in requests
   of up to ``batch`` calls (above 1: through the batch routes, two requests a batch);
   committed tx/s on every peer (a transaction counts once every peer holds its block);
2. and 3. paced at 50 % and 80 % of that peak (open loop, calls due at fixed times,
   latency counted from when each was due; a due call leaves at once while the
   client has requests to spare, else with those due when one returns): p50/p99 from
   the client's signing to its receipt, and to the commit on every peer.

Then, in the same run, today's in-process submit path (``bench network`` without
``--clients``: pre-endorsed transactions handed to ``Peer.submit_many`` inside each
peer process) over the same number of transactions, and the ratio of the two peaks.
Figures are printed; nothing is asserted on time.

What the profile showed (py-spy on every process of a peak: 3 peers, 2 clients of 64
calls in flight, 2 cores shared with other work at load 13-25, so CPU per committed
transaction is the figure that carries from run to run):

- Before: 5.0-5.5 ms of CPU per committed transaction over every process: peers
  3.5-3.8 (an endorsing peer ~1.3, a peer that only validates ~0.7), clients 1.1-1.3,
  NATS 0.4; and this benchmark's own polling of every peer's status (50 requests a
  second each, ~15 % of a peer), now each peer's event stream.
- Clients: ~10 % in ``import sniffio`` failing on every pooled request (httpcore
  tries it each time; sniffio is now a dependency).
- Per request, whatever it carries: HTTP, routing, two thread hops, a JetStream call.
  32 calls a request instead of 8 cost ~25 % less CPU per transaction over every
  process (interleaved runs), so 32 is the default.
- Endorsing peers: a fifth of their interpreter time in FastAPI's ``jsonable_encoder``
  walking the write routes' answers again (now a ``JSONResponse``), a few per cent in
  the gateway's exhaustive choice of endorsers per proposal (now remembered), and a
  wrapped future, shield and timer per transaction of a batch waiting for its commit
  (now one wake-up a batch). Together within the noise of interleaved runs (3.5 ->
  3.3 ms median).
- After: ~3.2-3.4 ms per transaction: peers ~2.5 (endorsing ~0.9-1.0, validating
  ~0.55), clients ~0.45, NATS ~0.2. Ed25519 is now 35-55 % of a peer's samples (55 %
  on a peer that only validates: two verifications per transaction), SQLite (queries,
  the commit's fsync) 17-20 %, the event loop and HTTP about a fifth of an endorsing
  peer; signing and verifying 42 % of a client.
- Then an endorsing peer stopped verifying its own endorsement again in its precheck
  (it remembers the signatures it makes): one verification of two per own
  transaction, ~9 % of such a peer's samples; within the noise of two interleaved
  runs each at load 14 (2.9-3.2 before, 2.6-3.5 ms after).
- Left: ``parse_canonical``'s pure-Python duplicate-key hook on every body; two
  thread hops a request; at the paced loads, small blocks (cut every 50 ms) and small
  requests cost twice the CPU per transaction of the peak. The signatures alone
  (client: sign, verify the endorsement; endorsing peer: verify, sign; every other
  peer: two verifications) are ~0.9 ms of CPU per transaction at this machine's
  rates, so 1,500 tx/s on two cores would leave ~0.4 ms a transaction for HTTP, JSON,
  SQLite and NATS over all processes.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import httpx

from healthledger.cli.bench_clients_node import CONTRACTS, PROFILE_ENV
from healthledger.cli.bench_clients_worker import ClientJob, Phase
from healthledger.cli.bench_clients_worker import run as run_client
from healthledger.cli.bench_network import network_benchmark, process_answer
from healthledger.cli.reporting import BenchmarkFailed
from healthledger.client import Client, ClientError, Identity
from healthledger.crypto.enrolment import encrypt_key
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.consortium_peer import found_consortium
from healthledger.node.embedded import KEYSTORE_FILE
from healthledger.node.keystore import Keystore
from healthledger.ordering.nats_cluster import NatsCluster, free_ports

READY_TIMEOUT_S = 90.0
PHASE_TIMEOUT_S = 600.0
CLIENT = "a client process"
POLL_S = 0.02
"""How often the benchmark looks whether a block it waits for has committed."""
CLIENT_BATCH = 32
"""Calls a client sends in one request by default (through the batch routes). Each
request costs the peer and the client its HTTP, routing and thread hops whatever it
carries: at 32 rather than 8 a committed transaction cost about a quarter less CPU over
every process, at no higher p99 (same run, 3 peers, 64 calls in flight a client)."""
PACED = (0.5, 0.8)
"""The paced loads, as shares of the measured peak."""

Say = Callable[[str], None]


@dataclass
class HeightWatch:
    """When each peer committed each block: one event stream per peer
    (``GET /api/v1/events`` through the client library, signed as that peer's
    organisation's admin), each block event stamped as it arrives. A stream costs the
    peer one read of each new block; polling every peer's status 50 times a second
    cost each of them about 15 % of its CPU under load."""

    urls: dict[str, str]
    readers: dict[str, Identity]
    """Who reads each peer's stream (the stream is for consortium members)."""
    seen: dict[str, dict[int, float]] = field(default_factory=dict)
    heads: dict[str, str | None] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _clients: list[Client] = field(default_factory=list)

    def start(self) -> HeightWatch:
        """Begin following every peer's stream (from its first block)."""
        self.seen = {org: {} for org in self.urls}
        for org, url in self.urls.items():
            client = Client(url, identity=self.readers[org], timeout=10.0)
            self._clients.append(client)
            thread = threading.Thread(
                target=self._follow, args=(org, client), name=f"watch-{org}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self) -> None:
        """Stop following (closing the connections ends the streams)."""
        self._stop.set()
        for client in self._clients:
            client.close()
        for thread in self._threads:
            thread.join(5)

    def _follow(self, org: str, client: Client) -> None:
        known = self.seen[org]
        while not self._stop.is_set():
            try:
                for event in client.events(from_height=len(known)):
                    if event.kind != "block":
                        continue
                    known[event.height] = time.perf_counter()
                    self.heads[org] = event.data.get("hash")
                    if self._stop.is_set():
                        return
            except (ClientError, RuntimeError):
                # The client library resumes a broken stream itself; past its
                # attempts (or once closed by stop) this starts it again, or ends.
                self._stop.wait(POLL_S)

    def committed(self, org: str, height: int, timeout: float) -> float:
        """When the peer of ``org`` committed block ``height`` (waits for it)."""
        deadline = time.monotonic() + timeout
        while height not in self.seen[org]:
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"the peer of {org} did not commit block {height} in time")
            time.sleep(POLL_S)
        return self.seen[org][height]


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


@dataclass(frozen=True)
class PhaseFigures:
    """What one load gave."""

    transactions: int
    seconds: float
    tx_per_s: float
    """Committed on every peer, per second (first call due to the last commit)."""
    by_peer: dict[str, float]
    """Committed tx/s on each peer."""
    p50_ms: float
    """Client latency: signing to receipt."""
    p99_ms: float
    every_peer_p50_ms: float
    """Signing to the commit on the last peer."""
    every_peer_p99_ms: float
    failures: int
    invalid: int
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds each process (or kind of process) used during the load:
    ``peer:<org>``, ``nats``, ``clients`` and ``bench`` (this process)."""
    window_s: float = 0.0
    """Wall seconds over which ``cpu_s`` was counted."""


def _phase_figures(
    samples: list[list[Any]], failures: int, start: float, watch: HeightWatch
) -> PhaseFigures:
    if not samples:
        raise BenchmarkFailed(f"no transaction committed ({failures} failed)")
    heights = sorted({int(s[2]) for s in samples})
    last = heights[-1]
    at: dict[str, dict[int, float]] = {}
    for org in watch.urls:
        at[org] = {h: watch.committed(org, h, PHASE_TIMEOUT_S) for h in heights}
    everywhere = {h: max(at[org][h] for org in at) for h in heights}
    seconds = everywhere[last] - start
    by_peer = {org: round(len(samples) / (at[org][last] - start), 1) for org in at}
    client = [float(s[1]) - float(s[0]) for s in samples]
    every = [everywhere[int(s[2])] - float(s[0]) for s in samples]
    return PhaseFigures(
        transactions=len(samples),
        seconds=round(seconds, 3),
        tx_per_s=round(len(samples) / seconds, 1),
        by_peer=by_peer,
        p50_ms=round(1000 * statistics.median(client), 1),
        p99_ms=round(1000 * _percentile(client, 0.99), 1),
        every_peer_p50_ms=round(1000 * statistics.median(every), 1),
        every_peer_p99_ms=round(1000 * _percentile(every, 0.99), 1),
        failures=failures,
        invalid=sum(s[3] != "VALID" for s in samples),
    )


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user and system, its reaped children's included) process ``pid``
    has used so far; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # Fields 14-17 of proc(5): utime, stime, cutime, cstime; [0] here is field 3.
    return sum(int(v) for v in fields[11:15]) / _CLOCK_TICKS


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Deployment:
    """The consortium and the client processes of one run (a context manager)."""

    def __init__(
        self, base: Path, *, peers: int, clients: int, profile: Path | None, say: Say
    ) -> None:
        self.base, self.say, self.profile = base, say, profile
        self.plans = DEMO_ORGS[:peers]
        self.clients = clients
        self.cluster: NatsCluster | None = None
        self.peer_procs: list[subprocess.Popen[bytes]] = []
        self.urls: dict[str, str] = {}
        self.links: list[Connection] = []
        self.client_procs: list[BaseProcess] = []
        self.watch: HeightWatch | None = None

    def __enter__(self) -> Deployment:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        base = self.base
        self.say(f"founding a consortium of {len(self.plans)} organisations")
        folders = found_consortium(base / "peers", plans=self.plans, contracts=CONTRACTS)
        self.passphrase = secrets.token_urlsafe(16)
        keys = self._client_keys(folders)
        self.cluster = NatsCluster(base / "nats", sync_always=True).start()
        ports = free_ports(len(self.plans))
        logs = base / "logs"
        logs.mkdir()
        self.say(f"starting {len(self.plans)} peer processes over {self.cluster.size} NATS servers")
        for plan, port in zip(self.plans, ports, strict=True):
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            if self.profile is not None:
                env[PROFILE_ENV] = str(self.profile / f"{plan.id}.json")
            with (logs / f"{plan.id}.log").open("ab") as log:
                self.peer_procs.append(
                    subprocess.Popen(  # noqa: S603 - our own interpreter and module
                        [
                            sys.executable,
                            "-m",
                            "healthledger.cli.bench_clients_node",
                            str(folders[plan.id]),
                            str(port),
                            ",".join(self.cluster.urls),
                        ],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                        env=env,
                    )
                )
            self.urls[plan.id] = f"http://127.0.0.1:{port}"
        self._await_peers(logs)
        readers = {
            org: Identity.load(str(keys[org]), passphrase=self.passphrase) for org in self.urls
        }
        self.watch = HeightWatch(dict(self.urls), readers).start()
        self.say(f"starting {self.clients} client processes")
        spawn = multiprocessing.get_context("spawn")
        orgs = list(self.urls)
        for i in range(self.clients):
            org = orgs[i % len(orgs)]
            ours, theirs = spawn.Pipe()
            job = ClientJob(i, self.urls[org], str(keys[org]), self.passphrase)
            child = spawn.Process(target=run_client, args=(theirs, job), daemon=True)
            child.start()
            theirs.close()
            self.links.append(ours)
            self.client_procs.append(child)
        for link in self.links:
            process_answer(link, "ready", sender=CLIENT, timeout=READY_TIMEOUT_S)

    def _client_keys(self, folders: dict[str, Path]) -> dict[str, Path]:
        """Each organisation admin's key and certificate as an integrating system holds
        them: one encrypted PKCS#8 file (the certificate after the key)."""
        out = self.base / "clients"
        out.mkdir()
        files = {}
        for org, folder in folders.items():
            entry = Keystore.load(folder / KEYSTORE_FILE).get(f"{org}/admin")
            if entry is None:
                raise BenchmarkFailed(f"the keystore of {org} holds no admin")
            files[org] = out / f"{org}.key.pem"
            files[org].write_bytes(
                encrypt_key(entry.key, self.passphrase) + entry.cert.pem.encode("ascii")
            )
        return files

    def _await_peers(self, logs: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        with httpx.Client(timeout=2.0) as http:
            for (org, url), proc in zip(self.urls.items(), self.peer_procs, strict=True):
                while True:
                    if proc.poll() is not None:
                        tail = (logs / f"{org}.log").read_text(errors="replace")[-400:]
                        raise BenchmarkFailed(f"the peer of {org} ended: {tail}")
                    try:
                        if http.get(f"{url}/api/v1/status").json().get("accepting_writes"):
                            break
                    except (httpx.HTTPError, ValueError):
                        pass
                    if time.monotonic() > deadline:
                        raise BenchmarkFailed(f"the peer of {org} did not take writes in time")
                    time.sleep(0.1)

    def run(
        self, name: str, count: int, *, concurrency: int = 0, rate: float = 0.0, batch: int = 1
    ) -> PhaseFigures:
        """One load of ``count`` calls shared among the clients (see :class:`Phase`)."""
        assert self.watch is not None
        n = len(self.links)
        cpu_before = self.cpu_times()
        start = time.perf_counter() + 0.2
        for i, link in enumerate(self.links):
            share = count // n + (1 if i < count % n else 0)
            phase = Phase(
                name,
                share,
                start,
                concurrency,
                rate / n if rate else 0.0,
                i / rate if rate else 0.0,
                batch,
            )
            link.send(("phase", phase))
        samples: list[list[Any]] = []
        failures: list[str] = []
        for link in self.links:
            got, failed = process_answer(link, "done", sender=CLIENT, timeout=PHASE_TIMEOUT_S)
            samples.extend(got)
            failures.extend(failed)
        if failures:
            self.say(f"{len(failures)} call(s) failed, e.g. {failures[0]}")
        figures = _phase_figures(samples, len(failures), start, self.watch)
        used = self.cpu_times()
        cpu = {who: round(used[who] - cpu_before[who], 3) for who in used}
        return replace(figures, cpu_s=cpu, window_s=round(time.perf_counter() - start, 3))

    def cpu_times(self) -> dict[str, float]:
        """CPU seconds used so far by each peer, the NATS servers, the clients and
        this process (what is counted of a load, apart from other work on the machine)."""
        times = {
            f"peer:{org}": process_cpu_s(proc.pid)
            for org, proc in zip(self.urls, self.peer_procs, strict=True)
        }
        cluster = self.cluster
        pids = [] if cluster is None else [cluster.pid(i) for i in range(cluster.size)]
        times["nats"] = sum(process_cpu_s(pid) for pid in pids if pid is not None)
        times["clients"] = sum(
            process_cpu_s(child.pid) for child in self.client_procs if child.pid is not None
        )
        own = os.times()
        times["bench"] = own.user + own.system
        return times

    def identical_heads(self) -> bool:
        """True if every peer reports the same head block."""
        assert self.watch is not None
        time.sleep(3 * POLL_S)
        return len(set(self.watch.heads.values())) == 1 and None not in self.watch.heads.values()

    def close(self) -> None:
        """Stop the clients, the peers (SIGTERM: a profiling peer writes its figures)
        and the NATS servers."""
        for link in self.links:
            with contextlib.suppress(OSError):
                link.send(("stop",))
        for child in self.client_procs:
            child.join(10)
            if child.is_alive():
                child.kill()
                child.join(5)
        for link in self.links:
            link.close()
        if self.watch is not None:
            self.watch.stop()
        for proc in self.peer_procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.peer_procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.cluster is not None:
            self.cluster.stop()


def clients_benchmark(
    tx: int,
    *,
    clients: int,
    concurrency: int = 16,
    batch: int = CLIENT_BATCH,
    peers: int = 3,
    paced_tx: int | None = None,
    paced: bool = True,
    in_process: bool = True,
    profile: Path | None = None,
    status: Say | None = None,
) -> dict[str, Any]:
    """The figures of ``bench network --clients N`` (see the module docstring): ``tx``
    calls at the peak, ``paced_tx`` (default ``tx``) at each paced load; each client
    keeps ``concurrency`` calls in flight at the peak, in requests of up to ``batch``
    calls (1: one call per endorse and submit, as ``Client.send``). ``paced=False``
    measures the peak alone, ``in_process=False`` leaves out the in-process path."""
    if not 1 <= peers <= len(DEMO_ORGS):
        raise BenchmarkFailed(f"--peers must be between 1 and {len(DEMO_ORGS)} with --clients")
    say = status or (lambda _: None)
    figures: dict[str, Any] = {
        "benchmark": "network over HTTP, client library",
        "clients": clients,
        "calls_in_flight_per_client": concurrency,
        "calls_per_request": batch,
        "peers": peers,
        "peer_processes": True,
        "nats_servers": 3,
        "sync_interval": "always",
        "signing": "in each client, timed",
    }
    with (
        tempfile.TemporaryDirectory(prefix="hl-bench-clients-") as tmp,
        Deployment(Path(tmp), peers=peers, clients=clients, profile=profile, say=say) as deployment,
    ):
        say(f"peak: {tx:,} calls, {concurrency} in flight per client, {batch} a request")
        peak = deployment.run("peak", tx, concurrency=concurrency, batch=batch)
        _add(figures, "peak", peak)
        for share in PACED if paced else ():
            rate = max(1.0, round(share * peak.tx_per_s, 1))
            label = f"paced_{round(share * 100)}pct"
            say(f"{label}: {rate:g} tx/s offered")
            steady = deployment.run(
                label, paced_tx or tx, concurrency=concurrency, rate=rate, batch=batch
            )
            figures[f"{label}_offered_tx_per_s"] = rate
            _add(figures, label, steady)
        figures["identical_heads"] = deployment.identical_heads()
    if in_process:
        say("the in-process submit path, same transactions")
        inner = network_benchmark(tx, peers=peers, status=say)
        figures["in_process_tx_per_s"] = inner.tx_per_s
        figures["in_process_p99_ms"] = inner.p99_ms
        figures["ratio_to_in_process"] = round(figures["peak_tx_per_s"] / inner.tx_per_s, 3)
    return figures


def _add(figures: dict[str, Any], label: str, phase: PhaseFigures) -> None:
    figures[f"{label}_transactions"] = phase.transactions
    figures[f"{label}_tx_per_s"] = phase.tx_per_s
    figures[f"{label}_tx_per_s_by_peer"] = ", ".join(
        f"{org} {rate:g}" for org, rate in phase.by_peer.items()
    )
    figures[f"{label}_p50_ms"] = phase.p50_ms
    figures[f"{label}_p99_ms"] = phase.p99_ms
    figures[f"{label}_every_peer_p50_ms"] = phase.every_peer_p50_ms
    figures[f"{label}_every_peer_p99_ms"] = phase.every_peer_p99_ms
    figures[f"{label}_failures"] = phase.failures
    figures[f"{label}_invalid"] = phase.invalid
    figures.update(cpu_figures(label, phase))


def cpu_figures(label: str, phase: PhaseFigures) -> dict[str, Any]:
    """What the load cost in CPU: milliseconds per committed transaction over every
    process of the run and by kind of process, and each peer's share of a core."""
    if not phase.cpu_s or phase.window_s <= 0:
        return {}
    tx = phase.transactions
    peers = {
        who.removeprefix("peer:"): s for who, s in phase.cpu_s.items() if who.startswith("peer:")
    }
    mean_peer = sum(peers.values()) / len(peers)
    return {
        f"{label}_cpu_ms_per_tx": round(1000 * sum(phase.cpu_s.values()) / tx, 3),
        f"{label}_peers_cpu_ms_per_tx": round(1000 * sum(peers.values()) / tx, 3),
        f"{label}_per_peer_cpu_ms_per_tx": round(1000 * mean_peer / tx, 3),
        f"{label}_per_peer_cpu_cores": round(mean_peer / phase.window_s, 3),
        f"{label}_nats_cpu_ms_per_tx": round(1000 * phase.cpu_s["nats"] / tx, 3),
        f"{label}_clients_cpu_ms_per_tx": round(1000 * phase.cpu_s["clients"] / tx, 3),
        f"{label}_bench_cpu_ms_per_tx": round(1000 * phase.cpu_s["bench"] / tx, 3),
        f"{label}_cpu_cores_by_peer": ", ".join(
            f"{org} {s / phase.window_s:.2f}" for org, s in peers.items()
        ),
    }


def profile_summary(folder: Path, top: int = 15) -> dict[str, Any]:
    """The peers' sampled profiles (``--profile``): per peer, the share of samples in
    which each function was running, busiest first."""
    out: dict[str, Any] = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        samples = max(1, int(data["samples"]))
        out[path.stem] = [(name, round(n / samples, 3)) for name, n in data["running"][:top]]
    return out
