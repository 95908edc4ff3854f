"""benchmarks/report.py's table: given figures, one Markdown table and the same in JSON,
with each goal judged (the benchmarks themselves are not run here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "report.py"


@pytest.fixture(scope="module")
def report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmark_report", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_table_in_markdown_and_json_with_goals_judged(report: ModuleType) -> None:
    machine = report.Machine(
        cpu="Test CPU", cores=2, ram_gib=8.0, python="3.11.7",
        load_start=(1.5, 1.0, 0.5), load_end=(2.0, 1.25, 0.75), started="2026-12-07 18:00 UTC",
        seconds=600.0,
    )  # fmt: skip
    figures = [
        report.Figure("lifecycle-vs-evm", "1 tx per block", 1200.0, "tx/s", "EVM 100.0 tx/s",
                      12.0, report.Goal(">= 10 x EVM", at_least=10.0)),
        report.Figure("verify", "audit tx/s", 500.0, "tx/s", "ceiling 1,000 tx/s", 0.5,
                      report.Goal(">= 0.8 x ceiling", at_least=0.8)),
        report.Figure("credentials", "dcc p99", 1.5, "ms",
                      goal=report.Goal("<= 2 ms", at_most=2.0)),
        report.Figure("proof", "proof p99", 0.09, "ms"),
        report.Figure("powercut.py", "—", None, note="skipped: needs /dev/fuse"),
    ]  # fmt: skip
    markdown, document = report.build_table(machine, figures, command="python benchmarks/report.py")

    lines = markdown.splitlines()
    assert "`python benchmarks/report.py`" in lines[0] and "Test CPU, 2 cores, 8.0 GiB" in lines[0]
    assert "load average 1.50, 1.00, 0.50 at the start, 2.00, 1.25, 0.75 at the end" in lines[0]
    rows = [line for line in lines if line.startswith("| ")][1:]
    assert len(rows) == len(figures)
    assert rows[0].endswith("| 12.00 | >= 10 x EVM | met |") and "1,200 tx/s" in rows[0]
    assert rows[1].endswith("| 0.50 | >= 0.8 x ceiling | **not met** |")
    assert rows[2].endswith("| <= 2 ms | met |")
    assert rows[3].endswith("| — | — | — |")
    assert "skipped: needs /dev/fuse" in rows[4]

    again = json.loads(json.dumps(document))
    assert again["machine"]["load_start"] == [1.5, 1.0, 0.5]
    assert [f["met"] for f in again["figures"]] == [True, False, True, None, None]
    assert again["figures"][0]["ratio"] == 12.0
    assert again["figures"][0]["goal"] == {
        "text": ">= 10 x EVM", "at_least": 10.0, "at_most": None, "value_at_least": None
    }  # fmt: skip


def test_credentials_issuance_is_judged_against_its_rate(report: ModuleType) -> None:
    found = {
        "cores": 2, "issuance_committed_per_s": 520.4, "issuance_committed_per_s_range": "4-6",
        "issuance_goal_per_s": 500, "issuance_signing_ceiling_per_s": 17000,
        "ratio_committed_to_signing_ceiling": 0.031, "machine_es256_sign_per_s": 26000,
        "issuance_batch_per_s": 520.4, "issuance_batch_per_tx": 100, "issuance_rounds": 3,
        "issuance_per_tx_per_s": 200.0, "dcc_verify_cpu_p99_ms": 0.9,
    }  # fmt: skip
    rows = report._credentials(found)
    assert rows[0].value == 520.4 and rows[0].ratio == 0.031 and rows[0].met is True
    assert "signing ceiling 17,000/s" in rows[0].baseline
    assert [r.name for r in rows].count("issuance_batch_per_s") == 0
    assert report._credentials({**found, "issuance_committed_per_s": 499.0})[0].met is False
    judged = {r.name: r.met for r in rows[1:]}
    assert judged == {"issuance_signing_ceiling_per_s": None, "machine_es256_sign_per_s": None,
                      "issuance_per_tx_per_s": None, "dcc_verify_cpu_p99_ms": True}  # fmt: skip


def test_lifecycle_goal_is_judged_on_the_pipelined_client_and_waiting_is_shown(
    report: ModuleType,
) -> None:
    evm = {"tx_per_s_single": 10.0, "tx_per_s_batched": 50.0}
    evm |= {f"{k}_incl_signing": v / 2 for k, v in evm.items()}
    ours = {
        "tx_per_s_single_pipelined": 120.0,
        "tx_per_s_batched_pipelined": 400.0,
        "tx_per_s_single": 70.0,
        "tx_per_s_batched": 300.0,
        "disk_syncs_per_s": 136.0,
    }
    ours |= {f"{k}_incl_signing": v / 2 for k, v in list(ours.items()) if k != "disk_syncs_per_s"}
    found = {"healthledger": ours, "evm": evm}
    for key, value in list(ours.items()):
        if key.startswith("tx_per_s_"):
            mode = key.removeprefix("tx_per_s_")
            found[f"ratio_{mode}"] = value / evm[key.replace("_pipelined", "")]
    rows = report._lifecycle(found)
    judged = [row for row in rows if row.goal is not None]
    assert [row.name for row in judged] == [
        "custody lifecycle, 1 tx per block, durable, client sends while earlier blocks "
        "commit, node side",
        "custody lifecycle, 100 tx per block, durable, client sends while earlier blocks "
        "commit, node side",
    ]
    assert [row.met for row in judged] == [True, False]  # 12x and 8x the EVM
    waiting = [row for row in rows if "client waits for each commit, node side" in row.name]
    assert [(row.ratio, row.met) for row in waiting] == [(7.0, None), (6.0, None)]


def test_figures_are_read_from_json_lines_and_indented_json(report: ModuleType) -> None:
    assert report.last_json('status\n{"a": 1}\n') == {"a": 1}
    assert report.last_json('x\n{\n "a": {"b": 2}\n}\n') == {"a": {"b": 2}}
    assert report.last_json("no figures\n") is None
    parse = report.parse_lines({"crashes": r"(\d+) crashes"})
    assert parse("fuzz: 3,000 inputs run over 9 decoders in 60 s: 0 crashes, 0 hangs") == {
        "crashes": 0.0
    }


def test_a_benchmark_that_runs_over_is_interrupted_so_its_clean_up_runs(
    report: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A timed-out benchmark gets SIGINT first: its own clean-up (which stops the peers
    and NATS servers it started in sessions of their own) runs before the report goes on."""
    cleaned = tmp_path / "cleaned"
    child = (
        "import pathlib, time\n"
        "try:\n"
        "    print('started', flush=True); time.sleep(60)\n"
        "finally:\n"
        f"    pathlib.Path({str(cleaned)!r}).write_text('stopped')\n"
    )
    monkeypatch.setattr(report, "STOP_GRACE_S", 30.0)
    assert report._run_bounded([sys.executable, "-c", child], timeout_s=5.0) is None
    assert cleaned.read_text() == "stopped"
    finished = report._run_bounded([sys.executable, "-c", "print('figures')"], timeout_s=30.0)
    assert finished is not None and finished.returncode == 0
    assert finished.stdout == "figures\n"
