"""The supply benchmark runs end to end at toy size (no timing asserted); the trace's
temperature chart (a Vega-Lite specification)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from healthledger.appkit.charts import Spec
from healthledger.apps.supply.cli import build_cli
from healthledger.apps.supply.temperature_chart import Reading, temperature_chart


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


VACCINE = {"temp_min_dc": 20, "temp_max_dc": 80}
"""A product kept between 2.0 and 8.0 °C."""
NOON = 1_796_990_400_000
"""2026-12-11 12:00 UTC, 20:00 in the consortium's zone."""


def _layers(spec: Spec) -> tuple[Spec, Spec]:
    band, readings = spec["layer"]
    return band, readings


def test_chart_marks_an_excursion_in_red_against_the_storage_band() -> None:
    spec = temperature_chart(
        [Reading(NOON, 40, 60, "ship", "Plant"), Reading(NOON + 3_600_000, 45, 95, "observe")],
        VACCINE,
    )
    band, readings = _layers(spec)
    assert band["mark"]["type"] == "rect" and band["data"]["values"] == [
        {"low": 2.0, "high": 8.0, "range": "2.0 °C to 8.0 °C"}
    ]
    rows = readings["data"]["values"]
    assert [(r["min"], r["max"], r["state"]) for r in rows] == [
        (4.0, 6.0, "within the storage range"),
        (4.5, 9.5, "outside the storage range"),
    ]
    colour = readings["encoding"]["color"]["scale"]
    red = dict(zip(colour["domain"], colour["range"], strict=True))["outside the storage range"]
    assert red == "#c0392b"
    assert rows[1]["reading"] == "4.5 °C to 9.5 °C"
    assert rows[0]["when"] == "2026-12-11 20:00 CST (UTC+08:00)"
    x = readings["encoding"]["x"]
    assert x["title"] == "Time of the reading, CST (UTC+08:00)" and x["scale"]["type"] == "utc"
    assert rows[0]["t"] == NOON + 8 * 3_600_000  # local wall-clock time on a UTC scale
    assert readings["encoding"]["y"]["title"] == "Temperature (°C)"
    assert readings["encoding"]["y"]["axis"]["format"] == ".1f"


def test_chart_of_nothing_says_so_and_one_reading_without_a_range_is_drawn() -> None:
    nothing = temperature_chart([], VACCINE)
    assert nothing["mark"]["type"] == "text"
    assert nothing["data"]["values"] == [
        {"message": "No temperature readings on this unit's journey"}
    ]
    one = temperature_chart([Reading(NOON, 30, 30)], None)
    (readings,) = one["layer"]
    assert readings["data"]["values"][0]["state"] == "storage range unknown"
    low, high = readings["encoding"]["x"]["scale"]["domain"]
    assert low < readings["data"]["values"][0]["t"] < high
