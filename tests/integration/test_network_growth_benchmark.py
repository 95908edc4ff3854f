"""benchmarks/network_growth.py at a tiny load: the peak of ``bench network --clients``
at two consortium sizes, each peer committing every call, with CPU counted for each
kind of process, printed as a Markdown table and a JSON line (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "network_growth.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmark_network_growth", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_two_sizes_give_a_row_each_with_cpu_by_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    growth = _script()
    assert growth.main(["--peers", "1,2", "--tx", "12", "--concurrency", "2"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    report = json.loads(printed[-1])
    rows = report["rows"]
    assert [row["peers"] for row in rows] == [1, 2]
    for row in rows:
        assert row["failures"] == 0 and row["invalid"] == 0 and row["identical_heads"]
        assert row["tx_per_s"] > 0
        # Every peer ran and used CPU; the peers' total is the per-peer mean times peers.
        assert len(row["cpu_cores_by_peer"].split(", ")) == row["peers"]
        assert row["per_peer_cpu_ms_per_tx"] > 0 and row["clients_cpu_ms_per_tx"] > 0
        assert row["peers_cpu_ms_per_tx"] == pytest.approx(
            row["peers"] * row["per_peer_cpu_ms_per_tx"], rel=0.01, abs=0.01
        )
        assert row["cpu_ms_per_tx"] >= row["peers_cpu_ms_per_tx"] + row["clients_cpu_ms_per_tx"]
    assert rows[0]["tx_per_s_ratio"] == 1.0 and rows[0]["cpu_ms_per_tx_ratio"] == 1.0
    table = [line for line in printed if line.startswith("| ")]
    assert len(table) == 1 + len(rows) and "CPU per peer (cores)" in table[0]


def test_bad_sizes_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    growth = _script()
    for bad in ("3,x", "0", "11"):
        with pytest.raises(SystemExit) as exited:
            growth.main(["--peers", bad])
        assert exited.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
