"""``healthledger bench network --json`` runs a real three-server cluster and three peers
and reports its figures as one JSON object on the last line."""

from __future__ import annotations

import json
import multiprocessing

import pytest
from typer.testing import CliRunner

from healthledger.cli.bench_network import process_answer
from healthledger.cli.main import app
from healthledger.cli.reporting import BenchmarkFailed

pytestmark = pytest.mark.slow

KEYS = {"tx_per_s", "p50_ms", "p99_ms", "peers", "identical"}


@pytest.mark.parametrize(
    ("options", "offered", "load", "processes"),
    [
        ([], None, "open loop", True),
        (["--rate", "200", "--batch", "5"], 200.0, "paced open loop", True),
        (["--in-process", "--batch", "7"], None, "open loop", False),
    ],
)
def test_bench_network_reports_identical_chains_as_json(
    options: list[str], offered: float | None, load: str, processes: bool
) -> None:
    result = CliRunner().invoke(app, ["bench", "network", "--tx", "50", *options, "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures.keys() >= KEYS
    assert figures["identical"] is True
    assert figures["peers"] == 3
    assert figures["transactions"] == 50
    assert figures["invalid"] == 0
    assert figures["offered_tx_per_s"] == offered
    assert figures["load"].startswith(load)
    assert figures["peer_processes"] is processes


def test_bench_network_refuses_a_negative_rate() -> None:
    result = CliRunner().invoke(app, ["bench", "network", "--rate", "-5"])
    assert result.exit_code == 2
    assert "rate" in result.output


def test_a_peer_process_that_fails_or_ends_fails_the_run_with_its_reason() -> None:
    ours, theirs = multiprocessing.Pipe()
    theirs.send(("failed", "peer 1: TimeoutError: the peer did not take writes in time"))
    with pytest.raises(BenchmarkFailed, match="peer 1: TimeoutError"):
        process_answer(ours, "ready")
    theirs.send(("committed", {}))
    with pytest.raises(BenchmarkFailed, match="sent 'committed', not 'ready'"):
        process_answer(ours, "ready")
    theirs.send(("ready", 4))
    assert process_answer(ours, "ready") == [4]
    theirs.close()
    with pytest.raises(BenchmarkFailed, match="ended before 'submitted'"):
        process_answer(ours, "submitted")
