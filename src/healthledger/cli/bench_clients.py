"""``healthledger bench network --clients N``: a consortium as deployed, driven over
HTTP by N client processes through the client library.

The consortium is started as ``network up`` starts one: a three-server NATS JetStream
cluster (fsync before every ack) and one peer process per organisation, each with its
own folder and keys, serving the platform's API (``bench_clients_node``). Each client
process (``bench_clients_worker``) holds an organisation admin's identity in an
encrypted PKCS#8 key file and writes ``bench.put`` calls through its organisation's
peer: signed in the client, endorsed, checked, submitted, receipt awaited. A thread
here polls every peer's status to learn when each block committed on each peer.

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
from dataclasses import dataclass, field
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
"""How often every peer's height is read (the commit times' resolution)."""
CLIENT_BATCH = 8
"""Calls a client sends in one request by default (through the batch routes)."""
PACED = (0.5, 0.8)
"""The paced loads, as shares of the measured peak."""

Say = Callable[[str], None]


@dataclass
class HeightWatch:
    """When each peer was first seen at each height (polling ``/api/v1/status``)."""

    urls: dict[str, str]
    seen: dict[str, dict[int, float]] = field(default_factory=dict)
    heads: dict[str, str | None] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> HeightWatch:
        """Begin polling."""
        self.seen = {org: {} for org in self.urls}
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _poll(self) -> None:
        with httpx.Client(timeout=5.0) as http:
            while not self._stop.is_set():
                for org, url in self.urls.items():
                    try:
                        body = http.get(f"{url}/api/v1/status").json()
                        height = int(body["height"])
                    except (httpx.HTTPError, ValueError, KeyError, TypeError):
                        continue
                    now = time.perf_counter()
                    known = self.seen[org]
                    for h in range(max(known, default=-1) + 1, height):
                        known[h] = now
                    self.heads[org] = body.get("head_hash")
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
        self.watch = HeightWatch(dict(self.urls)).start()
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
        return _phase_figures(samples, len(failures), start, self.watch)

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
    in_process: bool = True,
    profile: Path | None = None,
    status: Say | None = None,
) -> dict[str, Any]:
    """The figures of ``bench network --clients N`` (see the module docstring): ``tx``
    calls at the peak, ``paced_tx`` (default ``tx``) at each paced load; each client
    keeps ``concurrency`` calls in flight at the peak, in requests of up to ``batch``
    calls (1: one call per endorse and submit, as ``Client.send``)."""
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
        for share in PACED:
            rate = max(1.0, round(share * peak.tx_per_s, 1))
            label = f"paced_{round(share * 100)}pct"
            say(f"{label}: {rate:g} tx/s offered")
            paced = deployment.run(
                label, paced_tx or tx, concurrency=concurrency, rate=rate, batch=batch
            )
            figures[f"{label}_offered_tx_per_s"] = rate
            _add(figures, label, paced)
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


def profile_summary(folder: Path, top: int = 15) -> dict[str, Any]:
    """The peers' sampled profiles (``--profile``): per peer, the share of samples in
    which each function was running, busiest first."""
    out: dict[str, Any] = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        samples = max(1, int(data["samples"]))
        out[path.stem] = [(name, round(n / samples, 3)) for name, n in data["running"][:top]]
    return out
