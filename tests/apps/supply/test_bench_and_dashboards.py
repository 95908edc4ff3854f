"""The supply benchmark runs end to end at toy size (no timing asserted); the trace chart."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from healthledger.apps.supply.cli import build_cli
from healthledger.apps.supply.dashboards import temperature_svg


def test_bench_prints_json_figures() -> None:
    result = CliRunner().invoke(
        build_cli(),
        [
            "bench",
            "--events",
            "20",
            "--per-document",
            "10",
            "--store-events",
            "200",
            "--samples",
            "10",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["benchmark"] == "supply"
    assert figures["events"] == 20 and figures["store_events"] == 200
    assert figures["trace_samples"] == figures["verify_samples"] == 10
    assert figures["ingest_events_per_s"] > 0


def test_chart_marks_excursions_inside_a_storage_band() -> None:
    svg = temperature_svg([(0, 40, 60), (3_600_000, 70, 95)], 20, 80)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('class="reading"') == 1 and svg.count('class="reading excursion"') == 1
    assert 'class="storage-range"' in svg
    assert "<script" not in svg and "href" not in svg


def test_chart_of_nothing_is_empty_and_one_point_is_drawn() -> None:
    assert temperature_svg([], 20, 80) == ""
    assert 'class="reading"' in temperature_svg([(5, 30, 30)], None, None)
