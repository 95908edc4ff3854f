"""``healthledger bench e2e``, small: the installed command prints sane figures as one
JSON line (nothing is asserted on time), and benchmarks/report.py turns them into its
two rows with their goals judged."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(sys.executable).with_name("healthledger")
REPORT = Path(__file__).resolve().parents[2] / "benchmarks" / "report.py"


def test_bench_e2e_prints_sane_figures_and_report_rows() -> None:
    process = subprocess.run(
        [str(SCRIPT), "bench", "e2e", "--tx", "120", "--clients", "2", "--sequential", "20"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert process.returncode == 0, process.stderr
    assert "ratio_to_signature_ceiling" in process.stdout  # the table for a person

    process = subprocess.run(
        [str(SCRIPT), "bench", "e2e", "--tx", "120", "--sequential", "20", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stderr
    figures = json.loads(process.stdout.strip().splitlines()[-1])
    assert figures["transactions"] == 120 and figures["invalid"] == 0
    assert figures["clients"] == 2 and figures["blocks"] >= 1
    assert figures["latency_samples"] == 20
    # Every sequential write waited for its own block.
    assert figures["latency_blocks"] == 20
    for key in ("tx_per_s", "sign_per_s", "verify_per_s", "signature_ceiling_tx_per_s",
                "ratio_to_signature_ceiling", "latency_p50_ms", "fsync_per_s"):  # fmt: skip
        assert isinstance(figures[key], int | float) and figures[key] > 0, key
    assert figures["latency_p50_ms"] <= figures["latency_p99_ms"] <= figures["latency_max_ms"]
    # The ceiling follows from the rates measured in the same run.
    expected = 1 / (2 / figures["sign_per_s"] + 1 / figures["verify_per_s"])
    assert figures["signature_ceiling_tx_per_s"] == pytest.approx(expected, rel=0.01)
    assert figures["signature_cpu_us_per_tx"] < figures["cpu_us_per_tx"]
    assert 0 < figures["signature_share_of_cpu"] < 1
    # The peer checks each proposal's signature once, and not its own endorsement again.
    assert figures["peer_verifies_per_tx"] == pytest.approx(1.0, abs=0.05)

    spec = importlib.util.spec_from_file_location("benchmark_report_e2e", REPORT)
    assert spec is not None and spec.loader is not None
    report = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = report
    spec.loader.exec_module(report)
    throughput, share, p50, p99 = report._e2e(figures)
    assert throughput.value == figures["tx_per_s"]
    assert throughput.ratio == pytest.approx(figures["ratio_to_signature_ceiling"], abs=0.002)
    assert throughput.met is (throughput.ratio >= 0.6)
    assert p50.met is (figures["latency_p50_ms"] <= 5.0)
    assert p99.met is (figures["latency_p99_ms"] <= 20.0)
    assert "fsync" in p50.baseline
    assert share.value == figures["signature_share_of_cpu"] and share.goal is None
