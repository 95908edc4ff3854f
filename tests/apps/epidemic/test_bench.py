"""``healthledger epidemic bench`` at tiny sizes: it runs and prints its figures (the
figures themselves are for people to read, never asserted)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from healthledger.apps.epidemic.cli import build_cli

KEYS = {
    "benchmark",
    "reports",
    "clients",
    "ingest_s",
    "ingest_reports_per_s",
    "batch_size",
    "batched_reports",
    "batched_ingest_s",
    "batched_reports_per_s",
    "aggregate_rows",
    "aggregate_synthetic_rows",
    "aggregate_goal_rows",
    "aggregate_at_goal",
    "aggregate_fill_s",
    "dashboard_samples",
    "dashboard_p50_ms",
    "dashboard_p99_ms",
    "counts_samples",
    "counts_p50_ms",
    "counts_p99_ms",
    "catch_up_events",
    "catch_up_events_per_s",
    "freshness_samples",
    "freshness_p50_ms",
    "freshness_p99_ms",
    "machine",
}


def test_bench_prints_one_json_object_with_every_figure() -> None:
    args = ["bench", "--reports", "20", "--batch-size", "8", "--aggregate-rows", "500"]
    args += ["--samples", "8"]
    result = CliRunner().invoke(build_cli(), [*args, "--freshness-samples", "3", "--json"])

    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert set(figures) == KEYS
    assert figures["benchmark"] == "epidemic"
    assert figures["reports"] == 20
    assert figures["aggregate_rows"] == 500
    assert figures["batch_size"] == 8 and figures["batched_reports"] == 20
    assert figures["aggregate_synthetic_rows"] == 500 - 43
    assert figures["aggregate_at_goal"] is False
    assert figures["dashboard_samples"] == 8
    assert figures["freshness_samples"] == 3
