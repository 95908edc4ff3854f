"""A node holding many transactions: disk bytes per transaction, start time, memory,
and the proof, trace and dashboard latencies at that size (issue 16, item 6).

The ledger is built through the real commit path, pre-endorsed in bulk as ``bench
commit`` does: supply custody lifecycles (commission, ship, receive, dispense of one
pack each, the supply contract's ``capture``, each step signed by its actor) in blocks
of ``--block`` transactions, and one epidemic ``report_cases`` transaction of
``REPORTS_PER_TX`` case reports (personal data salted into the hospital's vault) per
wave. A wave sends the commissions of one cohort of packs, the shipments of the cohort
``LAG`` waves older, and so on; a wave is endorsed while the one before it commits.
Every build ends with every pack dispensed, and ``build.json`` beside the data folder
records where it stopped, so a later run grows the same ledger (10^5, then 10^6, ...).

Each size is measured in fresh child processes, with the ledger's files evicted from
the page cache first (``cold``, posix_fadvise; where the kernel keeps them anyway the
figure is warmer than a reboot) and again right after (``warm``).

With ``--store postgresql`` the ledger is in a PostgreSQL database instead of the data
folder's ``ledger.sqlite`` (the folder keeps the keystore, vaults and read models): in
the bounded run a throw-away PostgreSQL 15 server started here, as
``benchmarks/store_backends.py`` starts one (restarted, its files evicted, before the
cold child); with ``--dir``, ``--store URL`` names an existing empty database, which
``node.json`` then records, so later runs grow it (the server's caches are left as they
are). Disk is ``pg_database_size`` (tables, indexes, compressed block bodies; the
server's write-ahead log apart) plus the data folder's files; the start checks the
server and the most recent blocks instead of SQLite's quick check (``start_checks`` in
the output says what); the server's resident memory is measured from /proc beside the
node's. Its JSON carries ``"store": "postgresql"``.

Usage:
  python benchmarks/scale.py 3000 --block 100 --samples 100 --json    (bounded: a temporary ledger)
  python benchmarks/scale.py --dir DIR 100000 1000000 [--json]
  python benchmarks/scale.py --store postgresql 3000 --block 100 --samples 100 --json
  python benchmarks/scale.py --dir DIR --store postgresql://USER@/DB?host=/run/postgresql 100000
  nice -n 19 python benchmarks/scale.py --dir /var/tmp/hl-scale 10000000
  python benchmarks/scale.py --measure-child DIR      (internal: one measurement)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_all
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import postgres_processes as processes

from healthledger.apps.epidemic.contract import Epidemic
from healthledger.apps.epidemic.dashboard import Dashboard, Scope, state_prefix
from healthledger.apps.epidemic.dates import day_of_ms, iso
from healthledger.apps.epidemic.readmodel import CaseReadModel, snapshot_folder
from healthledger.apps.epidemic.simulate import person, places_of, setup_demo, staff_of
from healthledger.apps.epidemic.snapshot import (
    SNAPSHOT_COST_RATIO,
    SNAPSHOT_EVERY_TX,
    SNAPSHOT_FILE,
)
from healthledger.apps.supply.contract import SupplyContract
from healthledger.apps.supply.dashboards import unit_trace
from healthledger.apps.supply.lifecycle_bench import (
    GTIN,
    lifecycle_calls,
    lifecycle_plans,
    pharmacist,
    serial_of,
    set_up,
)
from healthledger.apps.supply.service import CONTRACT
from healthledger.apps.supply.verification import PublicLedger
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.ledger.errors import StorageError
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.ledger.store import is_postgres_location, open_store
from healthledger.ledger.transaction import Transaction, ValidationCode
from healthledger.node.embedded import LEDGER_FILE, EmbeddedNode
from healthledger.node.parts import STORE_KEY, DataDirError, node_info
from healthledger.node.peer import Receipt
from healthledger.node.seam import AppNode
from healthledger.node.selfcheck import STARTUP_BLOCKS, check_recent

if TYPE_CHECKING:
    from tests.support.postgres import PostgresServer

CONTRACTS = (*SYSTEM_CONTRACTS, SupplyContract, Epidemic)
PHARMACISTS = 8
"""Pharmacists of the pharmacy organisation, each with its own key, taking turns."""
LAG = 2
"""Waves between two steps of one cohort: a wave is endorsed while the one before commits."""
REPORTS_PER_TX = 20
CHUNK_COHORTS = 40
"""Cohorts built between two saves of the build's state (80,000 transactions at 500)."""
STATE_FILE = "build.json"
NODE_FOLDER = "node"
GUANGDONG = "44"
POSTGRESQL = "postgresql"
START_CHECKS = (
    "the server durable (fsync and synchronous_commit on) and UTF8, the format version, "
    f"the head block read, the {STARTUP_BLOCKS} most recent blocks re-derived and the block "
    "of the latest signed checkpoint compared; no page is read to check it (the server "
    "checks its own pages, data checksums, as it reads them)"
)
"""What a node's start checks of a PostgreSQL ledger, where SQLite's runs its quick check."""


def store_url(root: Path) -> str | None:
    """The PostgreSQL URL of the ledger under ``root``, None for the folder's SQLite file."""
    if not (Path(root) / NODE_FOLDER / "node.json").exists():
        return None
    found = node_info(Path(root) / NODE_FOLDER).get(STORE_KEY)
    return str(found) if found else None


def supply_app(node: EmbeddedNode) -> AppNode:
    """The node as the supply application sees it."""
    return AppNode(node, name="supply", namespaces=(SupplyContract.name,))


def epidemic_app(node: EmbeddedNode) -> AppNode:
    """The node as the epidemic application sees it."""
    return AppNode(node, name="epidemic", namespaces=(Epidemic.name,))


def unit_of(index: int) -> str:
    """Pack ``index``'s unit id (GTIN and serial)."""
    return f"01/{GTIN}/21/{serial_of(index)}"


@dataclass
class BuildState:
    """Where a build stopped (``build.json``): every pack below ``packs`` is dispensed."""

    packs: int = 0
    reports: int = 0
    build_seconds: float = 0.0

    def save(self, root: Path) -> None:
        """Write it beside the data folder."""
        (root / STATE_FILE).write_text(json.dumps(self.__dict__, indent=1))

    @classmethod
    def load(cls, root: Path) -> BuildState:
        """Read it (a new state where there is none)."""
        path = root / STATE_FILE
        return cls(**json.loads(path.read_text())) if path.exists() else cls()


class LedgerBuilder:
    """Grows the ledger under ``root`` to a number of transactions."""

    def __init__(
        self, root: Path, *, block_txs: int = 500, seed: int = 16, store: str | None = None
    ) -> None:
        """``store``: the ``postgresql://`` URL of an empty database to found the ledger
        in (a ledger already under ``root`` stays where its node.json says)."""
        self.root = Path(root)
        self.block_txs = block_txs
        self.data = self.root / NODE_FOLDER
        self.state = BuildState.load(self.root)
        self.rng = random.Random(seed + self.state.packs)
        self.invalid = 0
        self._calls: dict[int, list[tuple[str, dict[str, Any]]]] = {}
        if (self.data / "node.json").exists():
            self.node = EmbeddedNode(
                self.data,
                contracts=CONTRACTS,
                max_block_tx=block_txs,
                synchronous="NORMAL",
                store=store,
            ).start()
        else:
            if store is not None:
                from healthledger.ledger.postgres_setup import check_unused

                check_unused(store)
            self.node = EmbeddedNode.create(
                self.data,
                contracts=CONTRACTS,
                plans=lifecycle_plans(PHARMACISTS),
                max_block_tx=block_txs,
                synchronous="NORMAL",
                store=store,
            ).start()
            set_up(supply_app(self.node))
            setup_demo(epidemic_app(self.node))
        epidemic = epidemic_app(self.node)
        orgs = state_prefix(epidemic, "org/")
        hospitals = sorted(k.split("/", 1)[1] for k, v in orgs.items() if v["kind"] == "hospital")
        self.districts = places_of(state_prefix(epidemic, "region/"))
        self.staff = [s for h, found in staff_of(epidemic, hospitals).items() for s in found]
        self.today = day_of_ms(self.node.clock())

    def transactions(self) -> int:
        """Transactions the ledger holds (its global log's size)."""
        head = self.node.peer.store.head()
        return 0 if head is None else head.log_size

    def close(self) -> None:
        """Stop the node."""
        self.node.stop()

    def grow(self, target: int, *, say: Callable[[str], None] = print) -> BuildState:
        """Add cohorts of packs (and epidemic reports) until the ledger holds at least
        ``target`` transactions, saving the state after every ``CHUNK_COHORTS`` cohorts
        (each chunk ends with every pack dispensed), so an interrupted build resumes."""
        per_cohort = 4 * self.block_txs + 1
        while (missing := target - self.transactions()) > 0:
            cohorts = min(CHUNK_COHORTS, math.ceil(missing / per_cohort))
            started = time.perf_counter()
            self._chunk(cohorts, say)
            self.state.packs += cohorts * self.block_txs
            self.state.build_seconds += time.perf_counter() - started
            self.state.save(self.root)
            say(f"{self.transactions():,} transactions, {self.state.build_seconds:.0f} s")
        return self.state

    def _chunk(self, cohorts: int, say: Callable[[str], None]) -> None:
        first = self.state.packs
        pending: deque[list[Future[Receipt]]] = deque()
        waves = cohorts + 3 * LAG
        for wave in range(waves):
            while len(pending) >= LAG:
                self._settle(pending.popleft())
            txs = [
                self._endorse(first + (wave - step * LAG) * self.block_txs + i, step)
                for step in range(4)
                if 0 <= wave - step * LAG < cohorts
                for i in range(self.block_txs)
            ]
            if wave < cohorts:
                txs.append(self._reports())
            pending.append(self.node.peer.submit_many(txs, precheck=False))
        while pending:
            self._settle(pending.popleft())
        if self.invalid:
            raise RuntimeError(f"{self.invalid} transactions committed invalid: broken build")

    def _settle(self, futures: list[Future[Receipt]]) -> None:
        wait_all(futures)
        self.invalid += sum(1 for f in futures if f.result().code is not ValidationCode.VALID)

    def _endorse(self, pack: int, step: int) -> Transaction:
        # A pack's four calls are made together (each hashes its event), kept until used.
        calls = self._calls.pop(pack, None) or lifecycle_calls(pack)
        if step < 3:
            self._calls[pack] = calls
        identity, args = calls[step]
        if step >= 2:
            identity = pharmacist(pack % PHARMACISTS)
        return self.node.peer.endorse(self.node.propose(identity, CONTRACT, "capture", args))

    def _reports(self) -> Transaction:
        """One hospital's upload of ``REPORTS_PER_TX`` case reports of synthetic people."""
        rng = self.rng
        identity, role = rng.choice(self.staff)
        reports, patients = [], []
        for _ in range(REPORTS_PER_TX):
            region = rng.choice(self.districts)
            onset = self.today - rng.randint(1, 30)
            reports.append(
                {
                    "disease": "J10.1",
                    "classification": "confirmed" if role == "lab" else "suspected",
                    "onset_date": iso(onset),
                    "diagnosis_date": min(self.today, onset + rng.randint(0, 3)),
                    "region": region,
                }
            )
            patients.append(person(self.state.reports, region, rng))
            self.state.reports += 1
        salted = self.node.keystore.with_salt({"patients": patients})
        proposal = self.node.propose(
            identity, "epidemic", "report_cases", {"reports": reports}, transient=salted
        )
        return self.node.peer.endorse(proposal, transient=salted)


def _read_bytes() -> int:
    """Bytes this process has read so far (``rchar``: every read call, from the page
    cache or the disk): the work a step does, free of the machine's load."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _rss_mib() -> dict[str, float]:
    """Resident memory now and at its peak (VmHWM), MiB."""
    return {
        "rss_mib": round(_status_kib("VmRSS") / 1024, 1),
        "peak_rss_mib": round(_status_kib("VmHWM") / 1024, 1),
    }


def server_rss_mib(url: str) -> float | None:
    """Resident memory of the PostgreSQL server of ``url``, MiB, shared memory counted
    once, as ``benchmarks/store_backends.py`` measures it; None where its processes are
    not this machine's."""
    master = processes.postmaster_of(url)
    return None if master is None else round(processes.server_rss_mib(master), 1)


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return {"p50_ms": round(statistics.median(ordered), 3), "p99_ms": round(p99, 3)}


def _timed(call: Any, arguments: list[Any]) -> list[float]:
    found = []
    for argument in arguments:
        started = time.perf_counter()
        call(argument)
        found.append((time.perf_counter() - started) * 1000)
    return found


def measure_in_process(
    root: Path, *, samples: int = 300, seed: int = 7, repeat: int = 1
) -> dict[str, Any]:
    """Open the ledger under ``root`` as a node does, then time reads: what a child
    process of :func:`measure` reports. With ``repeat`` > 1 the node's start and the
    dashboard's first call (a new dashboard from the snapshot) are timed that many
    times, the least kept beside the first (on a shared machine others only add)."""
    data = Path(root) / NODE_FOLDER
    state = BuildState.load(Path(root))
    read_before, cpu_before = _read_bytes(), time.process_time()
    started = time.perf_counter()
    node = EmbeddedNode(data, contracts=CONTRACTS).start()
    head = node.peer.store.head()
    start_s = time.perf_counter() - started
    start_read, start_cpu = _read_bytes() - read_before, time.process_time() - cpu_before
    after_start = _rss_mib()
    pages_checked = getattr(node.peer.store, "pages_checked", None)
    try:
        if head is None:
            raise RuntimeError(f"{data} holds no block")
        rng = random.Random(seed)
        store = node.peer.store
        tx_ids = [store.tx_at_log_index(rng.randrange(head.log_size)).tx_id for _ in range(samples)]
        proof_ms = _timed(node.peer.inclusion_proof, tx_ids)
        ledger = PublicLedger(supply_app(node))
        units = [unit_of(rng.randrange(state.packs)) for _ in range(samples)] if state.packs else []
        traces = [unit_trace(ledger, unit) for unit in units[:3]]
        if any(t is None or len(t["timeline"]) != 4 for t in traces):
            raise RuntimeError("a built pack has no four-step trail: broken ledger")
        trace_ms = _timed(lambda unit: unit_trace(ledger, unit), units)
        scope = Scope(label="Guangdong", region_prefix=GUANGDONG)
        read_before, cpu_before = _read_bytes(), time.process_time()
        started = time.perf_counter()
        # The first call as a restarted node's dashboard makes it: its read model
        # starts from the snapshot (if it checks out) and replays the blocks after it.
        dashboard = Dashboard(epidemic_app(node), snapshot_every=0)
        first = dashboard.figures(scope)
        first_ms = (time.perf_counter() - started) * 1000
        first_read, first_cpu = _read_bytes() - read_before, time.process_time() - cpu_before
        started_from = dashboard.started_from
        dashboard_ms = _timed(lambda _: dashboard.figures(scope), list(range(max(1, samples // 6))))
        dashboard.close()
        firsts = [first_ms, *_timed(lambda _: _first_call(node, scope), list(range(repeat - 1)))]
        url = store_url(Path(root))
        # The server as it serves this node (its connections open), after the reads.
        server_rss = None if url is None else server_rss_mib(url)
    finally:
        node.stop()
    starts = [start_s, *_timed(lambda _: _restart(data), list(range(repeat - 1)))]
    found = {
        "start_s": round(start_s, 3),
        "start_s_least": round(min([starts[0], *(ms / 1000 for ms in starts[1:])]), 3),
        "start_read_every_page": pages_checked,
        "start_read_bytes": start_read,
        "start_cpu_s": round(start_cpu, 3),
        "after_start": after_start,
        "after_reads": _rss_mib(),
        "proof": _percentiles(proof_ms),
        "trace": _percentiles(trace_ms) if trace_ms else None,
        "dashboard_first_ms": round(first_ms, 1),
        "dashboard_first_ms_least": round(min(firsts), 1),
        "dashboard_from_snapshot_at": started_from,
        "dashboard_first_read_bytes": first_read,
        "dashboard_first_cpu_ms": round(first_cpu * 1000, 1),
        "dashboard": _percentiles(dashboard_ms),
        "dashboard_cases": first["total"],
    }
    if url is not None:
        found["server_rss_mib"] = server_rss
    return found


def _first_call(node: EmbeddedNode, scope: Scope) -> None:
    dashboard = Dashboard(epidemic_app(node), snapshot_every=0)
    try:
        dashboard.figures(scope)
    finally:
        dashboard.close()


def _restart(data: Path) -> None:
    EmbeddedNode(data, contracts=CONTRACTS).start().stop()


def evict(folder: Path) -> None:
    """Ask the kernel to drop ``folder``'s files from the page cache (clean pages only)."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _child(root: Path, samples: int, repeat: int = 1) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure-child", str(root),
         "--samples", str(samples), "--repeat", str(repeat)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"measuring {root} failed: {done.stderr.strip()[-2000:]}")
    found: dict[str, Any] = json.loads(done.stdout)
    found["process_s"] = round(time.perf_counter() - started, 3)
    return found


def disk_figures(root: Path) -> dict[str, Any]:
    """Size of the ledger under ``root``: transactions, blocks, and the bytes of every
    file of its data folder (in total, per transaction, per file)."""
    data = Path(root) / NODE_FOLDER
    url = store_url(Path(root))
    store = SqliteStore(data / LEDGER_FILE) if url is None else open_store(url)
    try:
        tip = store.head()
        if tip is None:
            raise RuntimeError(f"{data} holds no block")
        transactions, blocks = tip.log_size, tip.height + 1
    finally:
        store.close()
    # Listed after the store is closed: closing folds its write-ahead log in.
    files = [p for p in data.rglob("*") if p.is_file()]
    disk = sum(p.stat().st_size for p in files)
    state = BuildState.load(Path(root))
    database: dict[str, Any] = {}
    if url is not None:
        size, empty = database_bytes(url)
        disk += size
        database = {
            "store": POSTGRESQL,
            "database_bytes": size,
            "database_bytes_per_tx": round(size / transactions, 1),
            "database_empty_bytes": empty,
        }
    return {
        **database,
        "transactions": transactions,
        "blocks": blocks,
        "packs": state.packs,
        "reports": state.reports,
        "build_s": round(state.build_seconds, 1),
        "disk_bytes": disk,
        "disk_bytes_per_tx": round(disk / transactions, 1),
        "disk_files": {str(p.relative_to(data)): p.stat().st_size for p in files},
    }


def database_bytes(url: str) -> tuple[int, int]:
    """``pg_database_size`` of the database of ``url``, and of ``template1`` (what a new
    database starts from: the part of the first that is no transaction's)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute(
            "SELECT pg_database_size(current_database()), pg_database_size('template1')"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def replay_figures(root: Path) -> dict[str, Any]:
    """The read model's cost at this size, in this process: replaying the whole chain
    (what a node's first dashboard call cost before snapshots, and still costs with
    no snapshot or a refused one), and writing the snapshot a running node's
    dashboard keeps, left in place for the measurements that follow."""
    node = EmbeddedNode(Path(root) / NODE_FOLDER, contracts=CONTRACTS)
    try:
        app = epidemic_app(node)
        full = CaseReadModel(app)
        try:
            started = time.perf_counter()
            events = full.catch_up()
            replay_s = time.perf_counter() - started
            cases = full.size()
        finally:
            full.close()
        # As the running node's dashboard: from its last snapshot, then the tail.
        kept = CaseReadModel(app, snapshots=snapshot_folder(app))
        try:
            kept.catch_up()
            started = time.perf_counter()
            if kept.save_snapshot() is None:
                raise RuntimeError("no snapshot written: the read model applied no block")
            write_s = time.perf_counter() - started
        finally:
            kept.close()
        transactions = node.peer.store.head().log_size  # type: ignore[union-attr]
    finally:
        node.stop()
    per_tx_ms = replay_s * 1000 / transactions
    return {
        "replay_s": round(replay_s, 3),
        "replay_events": events,
        "replay_ms_per_tx": round(per_tx_ms, 4),
        "cases": cases,
        "snapshot_write_s": round(write_s, 3),
        "snapshot_bytes": (snapshot_folder(app) / SNAPSHOT_FILE).stat().st_size,
        "tail_bound_ms": round(
            min(per_tx_ms * SNAPSHOT_EVERY_TX, SNAPSHOT_COST_RATIO * write_s * 1000), 1
        ),
    }


def measure(
    root: Path, *, samples: int = 300, server: PostgresServer | None = None
) -> dict[str, Any]:
    """Every figure of the ledger under ``root``: disk, the read model's replay and
    snapshot, and a cold and a warm child (each a node's start and first reads).
    ``server``: the throw-away PostgreSQL server holding the ledger, restarted and its
    files evicted before the cold child."""
    readmodel = replay_figures(root)
    figures = disk_figures(root)
    figures["readmodel"] = readmodel
    evict(Path(root) / NODE_FOLDER)
    url = store_url(Path(root))
    if url is not None:
        figures["start_checks"] = START_CHECKS
        figures["cold_server"] = "as found" if server is None else "restarted, files evicted"
        if server is not None:
            restart_cold(server)
    figures["cold"] = _child(root, samples)
    figures["warm"] = _child(root, samples, REPEAT)
    if url is None:
        figures["quick_check_s_warm"] = quick_check_seconds(Path(root) / NODE_FOLDER / LEDGER_FILE)
    else:
        figures["start_check_s_warm"] = start_check_seconds(url)
    return figures


def restart_cold(server: PostgresServer) -> None:
    """Stop the throw-away server (its shared buffers go), drop its files from the page
    cache, start it again."""
    from tests.support.postgres import PG_BIN

    server._run(PG_BIN / "pg_ctl", "-D", server.data, "-m", "fast", "-w", "stop")
    evict(server.data)
    server.start()


def start_check_seconds(url: str) -> float:
    """How long a node's start checks of the PostgreSQL ledger at ``url`` take (opening
    the store, which checks the server, the format and the head, then re-deriving the
    most recent blocks): what replaces SQLite's quick check."""
    started = time.perf_counter()
    store = open_store(url, startup_check=True)
    try:
        check_recent(store)
        return round(time.perf_counter() - started, 3)
    finally:
        store.close()


def quick_check_seconds(path: Path) -> float:
    """How long SQLite's quick check of the ledger file takes (part of a node's start)."""
    db = sqlite3.connect(path)
    try:
        started = time.perf_counter()
        db.execute("PRAGMA quick_check(5)").fetchall()
        return round(time.perf_counter() - started, 3)
    finally:
        db.close()


def _pair(figure: dict[str, Any], run: str, what: str) -> str:
    found = figure[run][what]
    return "-" if found is None else f"{found['p50_ms']} / {found['p99_ms']}"


Row = tuple[str, Callable[[dict[str, Any]], str]]
ROWS: tuple[Row, ...] = (
    ("disk bytes/tx", lambda f: f"{f['disk_bytes_per_tx']:,.0f}"),
    ("start s cold / warm (least of 3)", lambda f: _start(f)),
    ("start read every page (cold / warm)", lambda f: _checked(f)),
    ("start CPU s (warm)", lambda f: f"{f['warm']['start_cpu_s']:.2f}"),
    ("start MB read (warm)", lambda f: f"{f['warm']['start_read_bytes'] / 1e6:.1f}"),
    ("SQLite quick check s (after an unclean stop)", lambda f: f"{f.get('quick_check_s_warm')}"),
    ("child process s cold (import, start, reads)", lambda f: f"{f['cold']['process_s']:.1f}"),
    ("RSS MiB after start", lambda f: f"{f['warm']['after_start']['rss_mib']:.0f}"),
    ("peak RSS MiB after reads", lambda f: f"{f['cold']['after_reads']['peak_rss_mib']:.0f}"),
    ("proof p50 / p99 ms warm", lambda f: _pair(f, "warm", "proof")),
    ("proof p50 / p99 ms cold", lambda f: _pair(f, "cold", "proof")),
    ("trace p50 / p99 ms warm", lambda f: _pair(f, "warm", "trace")),
    ("trace p50 / p99 ms cold", lambda f: _pair(f, "cold", "trace")),
    ("dashboard first call ms cold / warm (least of 3)", lambda f: _first(f)),
    ("dashboard first call CPU ms (warm)", lambda f: f"{f['warm']['dashboard_first_cpu_ms']:,.0f}"),
    ("dashboard p50 / p99 ms", lambda f: _pair(f, "warm", "dashboard")),
    ("read model full replay s (no snapshot)", lambda f: f"{f['readmodel']['replay_s']:.2f}"),
    ("read model cases / snapshot MB", lambda f: _model(f)),
    ("snapshot write s", lambda f: f"{f['readmodel']['snapshot_write_s']:.3f}"),
    ("tail a restart replays, bound ms", lambda f: _tail(f)),
    ("build s (cumulative)", lambda f: f"{f['build_s']:.0f}"),
)  # fmt: skip


_SQLITE_ONLY = {
    "start read every page (cold / warm)",
    "SQLite quick check s (after an unclean stop)",
}
_POSTGRES_NAMES = {"disk bytes/tx": "disk bytes/tx (database and data folder)"}
_POSTGRES_AFTER: dict[str, tuple[Row, ...]] = {
    "disk bytes/tx": (("database bytes/tx (pg_database_size)", lambda f: _database(f)),),
    "start s cold / warm (least of 3)": (
        ("start checks s (warm): server, head, recent blocks", lambda f: _start_check(f)),
    ),
    "peak RSS MiB after reads": (
        ("server RSS MiB after reads cold / warm", lambda f: _server_rss(f)),
    ),
}  # fmt: skip
POSTGRES_ROWS: tuple[Row, ...] = tuple(
    row
    for name, cell in ROWS
    if name not in _SQLITE_ONLY
    for row in ((_POSTGRES_NAMES.get(name, name), cell), *_POSTGRES_AFTER.get(name, ()))
)
"""The rows of a ledger in PostgreSQL: the database's bytes, the start's checks instead
of SQLite's quick check, and the server's memory beside the node's."""


def _database(figure: dict[str, Any]) -> str:
    over = (figure["database_bytes"] - figure["database_empty_bytes"]) / figure["transactions"]
    return f"{figure['database_bytes_per_tx']:,.0f} ({over:,.0f} beyond an empty database)"


def _start_check(figure: dict[str, Any]) -> str:
    return f"{figure['start_check_s_warm']}"


def _server_rss(figure: dict[str, Any]) -> str:
    return " / ".join(
        "-" if figure[run].get("server_rss_mib") is None else f"{figure[run]['server_rss_mib']:.0f}"
        for run in ("cold", "warm")
    )


def _checked(figure: dict[str, Any]) -> str:
    return " / ".join(
        {True: "yes", False: "no"}.get(figure[run]["start_read_every_page"], "-")
        for run in ("cold", "warm")
    )


def _start(figure: dict[str, Any]) -> str:
    return f"{figure['cold']['start_s']:.2f} / {figure['warm']['start_s_least']:.2f}"


def _first(figure: dict[str, Any]) -> str:
    cold, warm = figure["cold"], figure["warm"]
    at = warm["dashboard_from_snapshot_at"]
    where = "no snapshot" if at is None else f"from the snapshot at block {at:,}"
    return f"{cold['dashboard_first_ms']:,.0f} / {warm['dashboard_first_ms_least']:,.0f} ({where})"


def _tail(figure: dict[str, Any]) -> str:
    return f"{figure['readmodel']['tail_bound_ms']:,.0f}"


def _model(figure: dict[str, Any]) -> str:
    model = figure["readmodel"]
    return f"{model['cases']:,} / {model['snapshot_bytes'] / 1e6:.1f}"


def table(figures: list[dict[str, Any]]) -> str:
    """The figures of each size as one Markdown table."""
    rows = POSTGRES_ROWS if figures[0].get("store") == POSTGRESQL else ROWS
    head = "| figure | " + " | ".join(f"{f['transactions']:,} tx" for f in figures) + " |"
    lines = [head, "|---|" + "---|" * len(figures)]
    lines += [f"| {name} | " + " | ".join(cell(f) for f in figures) + " |" for name, cell in rows]
    return "\n".join(lines)


GROWTH: tuple[tuple[str, Callable[[dict[str, Any]], float]], ...] = (
    ("disk_bytes", lambda f: float(f["disk_bytes"])),
    ("start_s_cold", lambda f: float(f["cold"]["start_s"])),
    ("start_s_warm", lambda f: float(f["warm"]["start_s_least"])),
    ("quick_check_s_warm", lambda f: float(f.get("quick_check_s_warm") or "nan")),
    ("rss_mib_after_start", lambda f: float(f["warm"]["after_start"]["rss_mib"])),
    ("peak_rss_mib_after_reads", lambda f: float(f["cold"]["after_reads"]["peak_rss_mib"])),
    ("proof_p50_ms", lambda f: float(f["warm"]["proof"]["p50_ms"])),
    ("trace_p50_ms", lambda f: float(f["warm"]["trace"]["p50_ms"])),
    ("dashboard_first_ms_cold", lambda f: float(f["cold"]["dashboard_first_ms"])),
    ("dashboard_first_ms", lambda f: float(f["warm"]["dashboard_first_ms_least"])),
    ("dashboard_p50_ms", lambda f: float(f["warm"]["dashboard"]["p50_ms"])),
    ("readmodel_replay_s", lambda f: float(f["readmodel"]["replay_s"])),
    ("start_read_bytes", lambda f: float(f["warm"]["start_read_bytes"])),
    ("start_cpu_s", lambda f: float(f["warm"]["start_cpu_s"])),
    ("dashboard_first_cpu_ms", lambda f: float(f["warm"]["dashboard_first_cpu_ms"])),
    ("dashboard_first_read_bytes", lambda f: float(f["warm"]["dashboard_first_read_bytes"])),
    ("snapshot_write_s", lambda f: float(f["readmodel"]["snapshot_write_s"])),
    # A ledger in PostgreSQL only (absent, so not fitted, on SQLite):
    ("database_bytes", lambda f: float(f.get("database_bytes") or "nan")),
    ("start_check_s_warm", lambda f: float(f.get("start_check_s_warm") or "nan")),
    ("server_rss_mib_after_reads", lambda f: float(f["cold"].get("server_rss_mib") or "nan")),
)
GOAL_SIZE = 10_000_000
REPEAT = 3
"""Starts and first dashboard calls timed by the warm child (the least is fitted)."""


def growth(figures: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per figure, the power law figure = a * N^b through the smallest and the largest
    size measured (b = 0: constant, 1: linear; a logarithm shows as a small b that
    falls with size), and what it gives at ``GOAL_SIZE``. Timings of small ledgers on
    a shared machine are mostly fixed cost and noise, so the start and the dashboard's
    first call are also extrapolated by their work: their least time at the largest
    size times how much more they read at ``GOAL_SIZE`` (bytes read, fitted the same
    way: a constant for a constant start), the first call's cost beyond a steady call
    plus the longest tail a restart after a crash replays."""
    if len(figures) < 2:
        return {}
    low, high = figures[0], figures[-1]
    ratio = high["transactions"] / low["transactions"]
    found = {}
    for name, value in GROWTH:
        a, b = value(low), value(high)
        if not (a > 0 and b > 0) or ratio <= 1:
            continue
        exponent = math.log(b / a) / math.log(ratio)
        at_goal = b * (GOAL_SIZE / high["transactions"]) ** exponent
        found[name] = {
            "exponent": round(exponent, 2),
            "factor": b / high["transactions"] ** exponent,
            "at_10e7": round(at_goal, 3),
        }
    warm = high["warm"]
    if "start_read_bytes" in found:
        # Time follows the work: the start's least time here, scaled by how much
        # more the start reads at 10^7 (the quick check made that linear).
        work = found["start_read_bytes"]["at_10e7"] / warm["start_read_bytes"]
        found["start_s_by_work"] = {
            **found["start_read_bytes"],
            "scale": warm["start_s_least"],
            "at_10e7": round(warm["start_s_least"] * max(1.0, work), 3),
        }
    if "dashboard_first_read_bytes" in found:
        # What the first call costs beyond any call (loading the snapshot, replaying
        # the tail), scaled by what it reads, plus the longest tail a crash leaves.
        extra = max(0.0, warm["dashboard_first_ms_least"] - warm["dashboard"]["p50_ms"])
        work = found["dashboard_first_read_bytes"]["at_10e7"] / warm["dashboard_first_read_bytes"]
        tail = float(high["readmodel"]["tail_bound_ms"])
        found["dashboard_first_extra_worst_ms"] = {
            **found["dashboard_first_read_bytes"],
            "scale": round(extra, 1),
            "at_10e7": round(extra * max(1.0, work) + tail, 1),
            "plus_ms": tail,
        }
    return found


def fit_table(fits: dict[str, dict[str, float]]) -> str:
    """The fits as a Markdown table: each figure's law and its value at 10^7."""
    lines = ["| figure | fit (N transactions) | at 10^7 |", "|---|---|---|"]
    for name, fit in fits.items():
        law = f"{fit['factor']:.3g} * N^{fit['exponent']}"
        if "scale" in fit:
            law = f"{fit['scale']:,} * ({law}) / (bytes read at the largest size)"
        if "plus_ms" in fit:
            law += f" + {fit['plus_ms']:,.0f} (tail)"
        lines.append(f"| {name} | {law} | {fit['at_10e7']:,} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Grow the ledger under ``--dir`` to each size in turn and measure it there."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, help="transactions, ascending")
    parser.add_argument(
        "--dir", type=Path, help="where the ledger is kept and grown (default: a temporary folder)"
    )
    parser.add_argument(
        "--store",
        default="sqlite",
        help="sqlite (the data folder's file, default); postgresql (without --dir: a "
        "throw-away server started here); with --dir, a postgresql:// URL of an empty database",
    )
    parser.add_argument("--block", type=int, default=500, help="transactions per block")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--measure-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_child is not None:
        found = measure_in_process(args.measure_child, samples=args.samples, repeat=args.repeat)
        print(json.dumps(found))
        return
    if not args.sizes:
        parser.error("give at least one size")
    if min(*args.sizes, args.block, args.samples) < 1:
        parser.error("sizes, --block and --samples must be positive")
    url = is_postgres_location(args.store)
    if args.store not in {"sqlite", POSTGRESQL} and not url:
        parser.error(f"--store {args.store!r}: give sqlite, postgresql or a postgresql:// URL")
    if args.dir is None and url:
        parser.error(
            "a --store URL goes with --dir; without it, --store postgresql starts a server"
        )
    if args.dir is not None and args.store == POSTGRESQL:
        parser.error("with --dir, give --store the postgresql:// URL of an empty database")
    sizes = sorted(args.sizes)
    try:
        if args.dir is not None:
            args.dir.mkdir(parents=True, exist_ok=True)
            store = args.store if url else None
            _run(args.dir, sizes, args.block, args.samples, as_json=args.json, store=store)
        elif args.store == POSTGRESQL:
            _run_on_server(sizes, args.block, args.samples, as_json=args.json)
        else:
            with tempfile.TemporaryDirectory(prefix="healthledger-scale-") as tmp:
                _run(Path(tmp), sizes, args.block, args.samples, as_json=args.json)
    except (DataDirError, StorageError) as exc:
        raise SystemExit(f"scale.py: {exc}") from None


def _run_on_server(sizes: list[int], block: int, samples: int, *, as_json: bool) -> None:
    """The bounded run with the ledger in a database of a throw-away server."""
    from tests.support.postgres import PG_BIN, PostgresServer

    if not (PG_BIN / "initdb").is_file():
        raise SystemExit("scale.py: PostgreSQL 15 is not installed: run `make pg-deps`")
    server = PostgresServer()
    try:
        url = server.create_database()
        with tempfile.TemporaryDirectory(prefix="healthledger-scale-") as tmp:
            _run(Path(tmp), sizes, block, samples, as_json=as_json, store=url, server=server)
    finally:
        server.stop()


def _run(
    root: Path,
    sizes: list[int],
    block: int,
    samples: int,
    *,
    as_json: bool,
    store: str | None = None,
    server: PostgresServer | None = None,
) -> None:
    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    figures = []
    for size in sizes:
        builder = LedgerBuilder(root, block_txs=block, store=store)
        try:
            say(f"growing {root} to {size:,} transactions")
            builder.grow(size, say=say)
        finally:
            builder.close()
        say(f"measuring at {size:,}")
        figures.append(measure(root, samples=samples, server=server))
        if not as_json:
            print(table(figures[-1:]), flush=True)
    fits = growth(figures)
    on_postgres = figures[-1].get("store") == POSTGRESQL
    if as_json:
        stored = {"store": POSTGRESQL} if on_postgres else {}
        found = {"benchmark": "scale", **stored, "sizes": figures, "growth": fits}
        print(json.dumps(found, indent=1))
        return
    if len(figures) > 1:
        print(table(figures))
        print()
        print(fit_table(fits))
    if on_postgres:
        print(f"\nLedger in PostgreSQL; a node's start checks {START_CHECKS}.")


if __name__ == "__main__":
    main()
