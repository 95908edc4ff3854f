"""The dashboard's charts as Vega-Lite specifications, built from the figures the page
and the API serve (``Dashboard.figures``), in the console's chart look
(``healthledger.appkit.charts``). One specification per chart serves both the live page
(drawn in the browser by Vega-Embed) and the PNG export (``png.py``): dated axes,
both scales titled where two are drawn, a tooltip on every mark."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from healthledger.appkit.charts import Spec, Width, chart, empty
from healthledger.apps.epidemic.filters import DISEASE_NAMES

BLUE, DARK, RED, PURPLE = "#3b7dd8", "#1d4f91", "#c0392b", "#8e44ad"
NONE = "#eceff3"
"""A district without cases: grey, apart from the colour scale."""
DATE_FORMAT = "%-d %b"
"""Axis labels: ``3 Nov``; tooltips carry the full ISO date."""


def _date_axis(title: str, days: int = 8) -> Spec:
    """A time axis of whole days (no tick twice on one day when ``days`` are few)."""
    return {
        "field": "date",
        "type": "temporal",
        "timeUnit": "utcyearmonthdate",
        "title": title,
        "axis": {
            "format": DATE_FORMAT,
            "labelAngle": 0,
            "labelOverlap": True,
            "tickCount": {"interval": "day", "step": max(1, days // 8)},
        },
    }


def _day(title: str) -> Spec:
    """The date in a tooltip, in full."""
    return {
        "field": "date",
        "type": "temporal",
        "timeUnit": "utcyearmonthdate",
        "format": "%Y-%m-%d",
        "title": title,
    }


def curve(figures: Mapping[str, Any], width: Width = "container") -> Spec:
    """Daily cases by onset date (bars, left scale) and cumulative cases (line, right)."""
    title = "Epidemic curve"
    points: Sequence[Mapping[str, Any]] = figures["curve"]
    if not any(p["count"] for p in points):
        return empty(title, figures["subtitle"], width, "No cases reported in this view")
    tooltip = [
        _day("Onset date"),
        {"field": "count", "type": "quantitative", "title": "Cases that day"},
        {"field": "cumulative", "type": "quantitative", "title": "Cumulative cases"},
    ]
    return chart(
        title,
        figures["subtitle"],
        width,
        {
            "data": {"values": [dict(p) for p in points]},
            "encoding": {"x": _date_axis("Onset date", len(points))},
            "layer": [
                {
                    "mark": {"type": "bar", "color": BLUE, "tooltip": True},
                    "encoding": {
                        "y": {
                            "field": "count",
                            "type": "quantitative",
                            "title": "Cases per day (bars)",
                            "axis": {"titleColor": BLUE, "tickMinStep": 1},
                        },
                        "tooltip": tooltip,
                    },
                },
                {
                    "mark": {"type": "line", "color": RED, "strokeWidth": 2.5},
                    "encoding": {
                        "x": {**_date_axis("Onset date", len(points)), "bandPosition": 0.5},
                        "y": {
                            "field": "cumulative",
                            "type": "quantitative",
                            "title": "Cumulative cases (line)",
                            "axis": {"titleColor": RED, "orient": "right"},
                        },
                        "tooltip": tooltip,
                    },
                },
            ],
            "resolve": {"scale": {"y": "independent"}},
        },
    )


def rt(figures: Mapping[str, Any], width: Width = "container") -> Spec:
    """Rt over time with its 95 % credible band, the nowcast-corrected Rt beside it,
    and the threshold Rt = 1."""
    title = "Reproduction number Rt"
    rows = [{**e, "series": "latest window"} for e in figures["rt"]]
    nowcast = figures.get("nowcast") or {}
    rows += [{**e, "series": "nowcast-corrected"} for e in nowcast.get("rt", [])]
    if not rows:
        return empty(title, figures["subtitle"], width, "Too few cases to estimate Rt")
    colour = {
        "field": "series",
        "type": "nominal",
        "title": "Rt",
        "scale": {"domain": ["latest window", "nowcast-corrected"], "range": [DARK, PURPLE]},
    }
    tooltip = [
        _day("Window ending"),
        {"field": "series", "title": "Estimate"},
        {"field": "mean", "type": "quantitative", "title": "Rt", "format": ".2f"},
        {"field": "lower", "type": "quantitative", "title": "95% CrI from", "format": ".2f"},
        {"field": "upper", "type": "quantitative", "title": "95% CrI to", "format": ".2f"},
    ]
    return chart(
        title,
        figures["subtitle"],
        width,
        {
            "layer": [
                {
                    "data": {"values": rows},
                    "mark": {"type": "area", "opacity": 0.18},
                    "encoding": {
                        "x": _date_axis("End of the 7-day window", len(figures["rt"])),
                        "y": {"field": "lower", "type": "quantitative", "title": "Rt"},
                        "y2": {"field": "upper"},
                        "color": colour,
                    },
                },
                {
                    "data": {"values": rows},
                    "mark": {"type": "line", "strokeWidth": 2.5, "point": True},
                    "encoding": {
                        "x": _date_axis("End of the 7-day window", len(figures["rt"])),
                        "y": {"field": "mean", "type": "quantitative", "title": "Rt"},
                        "color": colour,
                        "tooltip": tooltip,
                    },
                },
                {
                    "data": {"values": [{"threshold": 1}]},
                    "mark": {"type": "rule", "color": RED, "strokeDash": [4, 3]},
                    "encoding": {
                        "y": {"field": "threshold", "type": "quantitative"},
                        "tooltip": {"value": "Rt = 1: above it, cases grow"},
                    },
                },
            ],
        },
    )


def positivity(figures: Mapping[str, Any], width: Width = "container") -> Spec:
    """Lab tests per specimen day (bars, left scale) and the 7-day share positive
    (line, right scale 0-100 %), broken where the minimum denominator is not met."""
    title = "Test positivity"
    days: Sequence[Mapping[str, Any]] = figures["positivity"]
    if not any(d["tests"] for d in days):
        return empty(title, figures["subtitle"], width, "No lab results in this view")
    tooltip = [
        _day("Specimen date"),
        {"field": "tests", "type": "quantitative", "title": "Tests that day"},
        {"field": "positive", "type": "quantitative", "title": "Positive that day"},
        {"field": "window_tests", "type": "quantitative", "title": "Tests in 7 days"},
        {"field": "pct", "type": "quantitative", "title": "Positive in 7 days (%)"},
    ]
    return chart(
        title,
        figures["subtitle"],
        width,
        {
            "data": {"values": [dict(d) for d in days]},
            "encoding": {"x": _date_axis("Specimen date", len(days))},
            "layer": [
                {
                    "mark": {"type": "bar", "color": "#a9c4ec"},
                    "encoding": {
                        "y": {
                            "field": "tests",
                            "type": "quantitative",
                            "title": "Lab tests per day (bars)",
                            "axis": {"titleColor": BLUE, "tickMinStep": 1},
                        },
                        "tooltip": tooltip,
                    },
                },
                {
                    "transform": [{"filter": "datum.pct != null"}],
                    "mark": {"type": "line", "color": RED, "strokeWidth": 2.5, "point": True},
                    "encoding": {
                        "x": {**_date_axis("Specimen date", len(days)), "bandPosition": 0.5},
                        "y": {
                            "field": "pct",
                            "type": "quantitative",
                            "title": "Share positive, 7 days (%, line)",
                            "scale": {"domain": [0, 100]},
                            "axis": {"titleColor": RED, "orient": "right"},
                        },
                        "detail": {"field": "segment", "type": "nominal"},
                        "tooltip": tooltip,
                    },
                },
            ],
            "resolve": {"scale": {"y": "independent"}},
        },
    )


def count_steps(top: int, *, most: int = 6) -> list[int]:
    """Whole-number legend steps from 0 to at most ``top`` cases (at least 1), no more
    than ``most`` of them, a round step apart (1, 2, 5, 10, 20, 50, ...): never fractions
    rounded into repeated labels (a maximum of 1 once read "0 1 1")."""
    top = max(top, 1)
    step, scale = 1, 1
    while top // step + 1 > most:
        for factor in (2, 5, 10):
            step = factor * scale
            if top // step + 1 <= most:
                break
        scale *= 10
    return list(range(0, top + 1, step))


def choropleth(
    figures: Mapping[str, Any],
    boundaries: Spec,
    *,
    cities: Spec | None = None,
    width: Width = "container",
) -> Spec:
    """Cases per district as a choropleth over the districts' boundaries, with a colour
    legend; ``boundaries`` (and ``cities``, outlines drawn over them) are Vega-Lite
    data (inline values or a URL) of GeoJSON features carrying ``properties.code``."""
    title = "Cases by district"
    values: Sequence[Mapping[str, Any]] = figures["map"]
    if not values:
        return empty(title, figures["subtitle"], width, "No districts in this view")
    top = max(v["count"] for v in values)
    layers: list[Spec] = [
        {
            "data": boundaries,
            "transform": [
                {
                    "lookup": "properties.code",
                    "from": {
                        "data": {"values": [dict(v) for v in values]},
                        "key": "code",
                        "fields": ["name", "count"],
                    },
                },
                {"filter": "datum.name != null"},
            ],
            "mark": {"type": "geoshape", "stroke": "white", "strokeWidth": 0.6},
            "encoding": {
                "color": {
                    "condition": {"test": "datum.count == 0", "value": NONE},
                    "field": "count",
                    "type": "quantitative",
                    "title": "Cases",
                    "scale": {"scheme": "orangered", "domain": [0, max(top, 1)]},
                    "legend": {
                        "orient": "right",
                        "gradientLength": 180,
                        "format": "d",
                        "values": count_steps(top),
                    },
                },
                "tooltip": [
                    {"field": "name", "title": "District"},
                    {"field": "properties.code", "title": "Code"},
                    {"field": "count", "type": "quantitative", "title": "Cases"},
                ],
            },
        }
    ]
    if cities is not None:
        layers.append(
            {
                "data": cities,
                "mark": {"type": "geoshape", "filled": False, "stroke": "#333", "strokeWidth": 1},
            }
        )
    return chart(
        title,
        figures["subtitle"],
        width,
        {"projection": {"type": "mercator"}, "layer": layers},
        height=420,
    )


def public_release(
    rows: Sequence[Mapping[str, Any]], *, date: str, suppress_below: int, width: Width = "container"
) -> Spec:
    """The public release: released (noisy) cases per city, a bar per disease; counts
    suppressed below ``suppress_below`` are left out and said so in the subtitle."""
    title = f"Cases per city up to {date}"
    shown = [
        {**r, "disease_name": DISEASE_NAMES.get(str(r["disease"]), r["disease"])}
        for r in rows
        if r["count"] is not None
    ]
    subtitle = f"With noise (differential privacy); counts under {suppress_below} not drawn"
    if not shown:
        return empty(title, subtitle, width, "Every count is suppressed or zero")
    return chart(
        title,
        subtitle,
        width,
        {
            "data": {"values": shown},
            "mark": {"type": "bar", "tooltip": True},
            "encoding": {
                "y": {
                    "field": "name",
                    "type": "nominal",
                    "title": "City",
                    "sort": {"field": "region"},
                },
                "yOffset": {"field": "disease_name", "type": "nominal"},
                "x": {"field": "count", "type": "quantitative", "title": "Cases (with noise)"},
                "color": {"field": "disease_name", "type": "nominal", "title": "Disease"},
                "tooltip": [
                    {"field": "name", "title": "City"},
                    {"field": "region", "title": "Code"},
                    {"field": "disease_name", "title": "Disease"},
                    {"field": "count", "type": "quantitative", "title": "Cases (with noise)"},
                ],
            },
        },
        height={"step": 22},
    )
