"""benchmarks/scale.py at a tiny size: its builder grows a ledger through the commit
path, a second run grows the same ledger, the ledger audits clean, and every figure
the script prints is there (no timing is asserted); the same with the ledger in a
PostgreSQL database, its disk figure from the database."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from healthledger.ledger.audit import audit_store
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.node.embedded import LEDGER_FILE
from healthledger.node.endorsers import new_validator
from tests.support.postgres import postgres_server

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmark_scale", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_builder_grows_a_ledger_that_verifies_and_is_measured(tmp_path: Path) -> None:
    scale = _script()
    builder = scale.LedgerBuilder(tmp_path, block_txs=25)
    try:
        first = builder.grow(120, say=lambda _m: None).packs
        grown = builder.grow(250, say=lambda _m: None)
        size = builder.transactions()
    finally:
        builder.close()
    assert 0 < first < grown.packs and grown.reports > 0 and size >= 250
    assert scale.BuildState.load(tmp_path) == grown

    report = audit_store(tmp_path / "node" / LEDGER_FILE, validator=new_validator())
    assert report.transactions == size and set(report.codes) == {"VALID"}

    readmodel = scale.replay_figures(tmp_path)
    assert readmodel["cases"] == grown.reports and readmodel["snapshot_bytes"] > 0
    assert readmodel["replay_events"] > 0 and readmodel["tail_bound_ms"] > 0
    figures = scale.disk_figures(tmp_path)
    assert figures["transactions"] == size and figures["disk_bytes_per_tx"] > 0
    assert "ledger.sqlite" in figures["disk_files"]
    assert "apps/epidemic/readmodel/cases.duckdb" in figures["disk_files"]
    figures["readmodel"] = readmodel
    run = scale.measure_in_process(tmp_path, samples=5, repeat=2)
    assert 0 < run["start_s_least"] <= run["start_s"]
    assert 0 < run["dashboard_first_ms_least"] <= run["dashboard_first_ms"]
    assert run["start_read_bytes"] > 0 and run["dashboard_first_read_bytes"] > 0
    assert run["start_cpu_s"] > 0 and run["dashboard_first_cpu_ms"] > 0
    for what in ("proof", "trace", "dashboard"):
        assert set(run[what]) == {"p50_ms", "p99_ms"}
    assert run["after_reads"]["peak_rss_mib"] >= run["after_start"]["rss_mib"] > 0
    assert run["dashboard_cases"] == grown.reports
    # Every node here stopped cleanly: the start trusted the file, the dashboard
    # started from the snapshot written at the head.
    assert run["start_read_every_page"] is False
    assert run["dashboard_from_snapshot_at"] == size_blocks(tmp_path) - 1
    figures["cold"] = figures["warm"] = {**run, "process_s": 1.0}
    table = scale.table([figures])
    assert f"{size:,} tx" in table and len(table.splitlines()) == 2 + len(scale.ROWS)
    tenfold = {**figures, "transactions": 10 * size, "disk_bytes": 10 * figures["disk_bytes"]}
    fits = scale.growth([figures, tenfold])
    assert fits["disk_bytes"]["exponent"] == 1.0 and fits["proof_p50_ms"]["exponent"] == 0.0
    # Ten times the transactions, the same bytes read at start: the start's time at
    # 10^7 is the time measured; the first call's extra cost adds the tail bound.
    assert fits["start_read_bytes"]["exponent"] == 0.0
    assert fits["start_s_by_work"]["at_10e7"] == run["start_s_least"]
    worst = fits["dashboard_first_extra_worst_ms"]
    assert worst["at_10e7"] >= worst["plus_ms"] == readmodel["tail_bound_ms"]
    assert "start_s_by_work" in scale.fit_table(fits)


def test_a_ledger_in_postgresql_is_built_and_measured(tmp_path: Path) -> None:
    scale = _script()
    server = postgres_server()
    url = server.create_database()
    builder = scale.LedgerBuilder(tmp_path, block_txs=25, store=url)
    try:
        grown = builder.grow(120, say=lambda _m: None)
        size = builder.transactions()
    finally:
        builder.close()
    assert scale.store_url(tmp_path) == url and size >= 120 and grown.reports > 0
    assert not (tmp_path / "node" / LEDGER_FILE).exists()
    report = audit_store(url, validator=new_validator())
    assert report.transactions == size and set(report.codes) == {"VALID"}

    readmodel = scale.replay_figures(tmp_path)
    assert readmodel["cases"] == grown.reports
    figures = scale.disk_figures(tmp_path)
    assert figures["store"] == "postgresql" and figures["transactions"] == size
    # Disk is the database's size (more than a new, empty one's) and the folder's files.
    (empty,) = server.execute(server.create_database(), "SELECT pg_database_size('template1')")
    assert figures["database_bytes"] > figures["database_empty_bytes"] == empty[0]
    assert figures["database_bytes_per_tx"] == round(figures["database_bytes"] / size, 1)
    assert figures["disk_bytes"] == figures["database_bytes"] + sum(figures["disk_files"].values())
    assert figures["disk_bytes_per_tx"] > figures["database_bytes_per_tx"] > 0
    assert "keystore.json" in figures["disk_files"] and LEDGER_FILE not in figures["disk_files"]
    figures["readmodel"] = readmodel

    run = scale.measure_in_process(tmp_path, samples=5, repeat=2)
    assert 0 < run["start_s_least"] <= run["start_s"]
    assert 0 < run["dashboard_first_ms_least"] <= run["dashboard_first_ms"]
    for what in ("proof", "trace", "dashboard"):
        assert 0 < run[what]["p50_ms"] <= run[what]["p99_ms"]
    assert run["after_reads"]["peak_rss_mib"] >= run["after_start"]["rss_mib"] > 0
    # The server serving the node: its shared memory and the node's backends.
    assert run["server_rss_mib"] > 1
    assert run["start_read_every_page"] is None and run["dashboard_cases"] == grown.reports
    figures["start_check_s_warm"] = scale.start_check_seconds(url)
    assert figures["start_check_s_warm"] > 0
    figures["start_checks"] = scale.START_CHECKS
    figures["cold"] = figures["warm"] = {**run, "process_s": 1.0}
    table = scale.table([figures])
    assert len(table.splitlines()) == 2 + len(scale.POSTGRES_ROWS)
    assert "pg_database_size" in table and "quick check" not in table
    assert f"| {figures['database_bytes_per_tx']:,.0f} (" in table
    tenfold = {
        **figures,
        "transactions": 10 * size,
        "database_bytes": 10 * figures["database_bytes"],
    }
    fits = scale.growth([figures, tenfold])
    assert fits["database_bytes"]["exponent"] == 1.0
    assert fits["server_rss_mib_after_reads"]["exponent"] == 0.0

    # As the script measures: a cold child after the server restarted, a warm one.
    measured = scale.measure(tmp_path, samples=5, server=server)
    assert measured["store"] == "postgresql" and measured["cold_server"].startswith("restarted")
    assert measured["database_bytes"] >= figures["database_bytes"]
    assert "quick_check_s_warm" not in measured and measured["start_check_s_warm"] > 0
    for run in ("cold", "warm"):
        assert measured[run]["server_rss_mib"] > 1 and measured[run]["start_s"] > 0
        assert measured[run]["after_start"]["rss_mib"] > 0
        assert measured[run]["proof"]["p50_ms"] > 0 and measured[run]["trace"]["p50_ms"] > 0
    assert measured["warm"]["dashboard_from_snapshot_at"] is not None
    assert len(scale.table([measured]).splitlines()) == 2 + len(scale.POSTGRES_ROWS)


def size_blocks(root: Path) -> int:
    """Blocks of the ledger under ``root``."""
    store = SqliteStore(root / "node" / LEDGER_FILE)
    try:
        return store.height()
    finally:
        store.close()
