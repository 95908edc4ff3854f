"""``healthledger bench network --clients N``: a consortium as deployed (three real NATS
servers, a peer process per organisation serving the API) written to over HTTP by N
client processes through the client library, then the in-process path for the ratio.
A tiny load: the figures are printed and well-formed; nothing is asserted on time."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from healthledger.cli.main import app

pytestmark = pytest.mark.slow


def test_bench_network_with_two_clients_prints_its_figures() -> None:
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "network",
            "--clients",
            "2",
            "--tx",
            "16",
            "--paced-tx",
            "6",
            "--concurrency",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["clients"] == 2
    assert figures["peers"] == 3
    assert figures["peak_transactions"] == 16
    for label in ("paced_50pct", "paced_80pct"):
        assert figures[f"{label}_transactions"] == 6
        assert figures[f"{label}_offered_tx_per_s"] > 0
        assert figures[f"{label}_p50_ms"] <= figures[f"{label}_p99_ms"]
        # Seen committed on every peer (through their event streams, which can tell of
        # a block before the writer's HTTP answer arrives: no order between the two).
        assert 0 < figures[f"{label}_every_peer_p50_ms"] <= figures[f"{label}_every_peer_p99_ms"]
    for label in ("peak", "paced_50pct", "paced_80pct"):
        assert figures[f"{label}_failures"] == 0
        assert figures[f"{label}_invalid"] == 0
        assert figures[f"{label}_tx_per_s"] > 0
        # Every peer committed every transaction of the load.
        assert len(figures[f"{label}_tx_per_s_by_peer"].split(", ")) == 3
        # CPU counted per process: every peer, NATS and the clients worked for it.
        assert len(figures[f"{label}_cpu_cores_by_peer"].split(", ")) == 3
        for who in ("per_peer", "nats", "clients"):
            assert figures[f"{label}_{who}_cpu_ms_per_tx"] > 0
        assert figures[f"{label}_cpu_ms_per_tx"] >= figures[f"{label}_peers_cpu_ms_per_tx"]
    assert figures["identical_heads"] is True
    assert figures["in_process_tx_per_s"] > 0
    assert figures["ratio_to_in_process"] == pytest.approx(
        figures["peak_tx_per_s"] / figures["in_process_tx_per_s"], abs=0.001
    )


def test_bench_network_clients_refuses_more_peers_than_organisations() -> None:
    result = CliRunner().invoke(app, ["bench", "network", "--clients", "2", "--peers", "11"])
    assert result.exit_code != 0
    assert "--peers must be between 1 and 10" in result.output
    assert "Traceback" not in result.output
