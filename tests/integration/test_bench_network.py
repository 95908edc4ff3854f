"""``healthledger bench network --json`` runs a real three-server cluster and three peers
and reports its figures as one JSON object on the last line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from healthledger.cli.main import app

pytestmark = pytest.mark.slow

KEYS = {"tx_per_s", "p50_ms", "p99_ms", "peers", "identical"}


def test_bench_network_reports_identical_chains_as_json() -> None:
    result = CliRunner().invoke(app, ["bench", "network", "--tx", "50", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures.keys() >= KEYS
    assert figures["identical"] is True
    assert figures["peers"] == 3
    assert figures["transactions"] == 50
    assert figures["invalid"] == 0
