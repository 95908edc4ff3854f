"""Inline SVG charts for the dashboard (no scripts, no external assets: the console
runs offline). Each returns markup with a <title> per mark, for tooltips and screen
readers, and data-* attributes that tests read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 640, 220, 36


def _svg(label: str, body: list[str], *, width: int = WIDTH, height: int = HEIGHT) -> Markup:
    # Safe: every string from the chain (region names and codes) is escaped where it is
    # put in ``body``; the rest is numbers and ISO dates computed here.
    return Markup(  # noqa: S704
        f'<svg viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(body)
        + "</svg>"
    )


def _axis(top: float, label: str) -> list[str]:
    base = HEIGHT - PAD
    return [
        f'<line x1="{PAD}" y1="{base}" x2="{WIDTH - PAD}" y2="{base}" stroke="#888"/>',
        f'<line x1="{PAD}" y1="{PAD / 2}" x2="{PAD}" y2="{base}" stroke="#888"/>',
        f'<text x="2" y="{PAD / 2 - 6}" font-size="10">{escape(label)}</text>',
        f'<text x="{PAD - 4}" y="{base}" font-size="10" text-anchor="end">0</text>',
        f'<text x="{PAD - 4}" y="{PAD / 2 + 14}" font-size="10" text-anchor="end">{top:g}</text>',
    ]


def epidemic_curve(curve: Sequence[dict[str, Any]]) -> Markup:
    """Daily cases by onset date as bars, cumulative cases as a line (right scale)."""
    if not curve:
        return _svg("No cases", ['<text x="20" y="40">No cases</text>'])
    top = max(1, max(p["count"] for p in curve))
    total = max(1, curve[-1]["cumulative"])
    span = (WIDTH - 2 * PAD) / len(curve)
    base = HEIGHT - PAD
    height = base - PAD / 2
    body = _axis(top, "cases/day")
    points = []
    for i, point in enumerate(curve):
        h = height * point["count"] / top
        x = PAD + i * span
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{base - h:.1f}" width="{max(span - 1, 1):.1f}" '
            f'height="{h:.1f}" fill="#3b7dd8" data-date="{point["date"]}" '
            f'data-count="{point["count"]}"><title>{point["date"]}: {point["count"]} cases'
            "</title></rect>"
        )
        points.append(f"{x + span / 2:.1f},{base - height * point['cumulative'] / total:.1f}")
    body.append(
        f'<polyline class="cumulative" points="{" ".join(points)}" fill="none" '
        f'stroke="#c0392b" stroke-width="2"><title>cumulative: {curve[-1]["cumulative"]}'
        "</title></polyline>"
    )
    body.append(
        f'<text x="{WIDTH - PAD + 2}" y="{PAD / 2 + 4}" font-size="10" fill="#c0392b">'
        f"{total}</text>"
    )
    body.append(
        f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="10">{curve[0]["date"]}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="10" text-anchor="end">'
        f"{curve[-1]['date']}</text>"
    )
    return _svg("Epidemic curve by onset date, with cumulative cases", body)


def rt_chart(
    rt: Sequence[dict[str, Any]],
    first_day: int,
    last_day: int,
    nowcast: Sequence[dict[str, Any]] = (),
) -> Markup:
    """Rt's mean as a line over its 95% credible band, with the threshold Rt = 1, and
    the nowcast-corrected Rt's mean (dotted) when there is one."""
    if not rt:
        return _svg("Rt: too few cases to estimate", ['<text x="20" y="40">Too few cases</text>'])
    top = max(2.0, max(e["upper"] for e in rt))
    span = max(1, last_day - first_day)
    base = HEIGHT - PAD
    height = base - PAD / 2

    def x(day: int) -> float:
        return float(PAD + (WIDTH - 2 * PAD) * (day - first_day) / span)

    def y(value: float) -> float:
        return float(base - height * min(value, top) / top)

    upper = [f"{x(e['day']):.1f},{y(e['upper']):.1f}" for e in rt]
    lower = [f"{x(e['day']):.1f},{y(e['lower']):.1f}" for e in reversed(rt)]
    mean = [f"{x(e['day']):.1f},{y(e['mean']):.1f}" for e in rt]
    body = _axis(round(top, 1), "Rt")
    body.append(
        f'<polygon class="band" points="{" ".join(upper + lower)}" fill="#3b7dd8" '
        'fill-opacity="0.25"><title>95% credible interval</title></polygon>'
    )
    body.append(
        f'<line x1="{PAD}" y1="{y(1):.1f}" x2="{WIDTH - PAD}" y2="{y(1):.1f}" stroke="#c0392b" '
        'stroke-dasharray="4 3"><title>Rt = 1</title></line>'
    )
    body.append(
        f'<polyline class="rt" points="{" ".join(mean)}" fill="none" stroke="#1d4f91" '
        'stroke-width="2"/>'
    )
    for e in rt:
        body.append(
            f'<circle cx="{x(e["day"]):.1f}" cy="{y(e["mean"]):.1f}" r="2" fill="#1d4f91">'
            f"<title>{e['date']}: Rt {e['mean']:.2f} ({e['lower']:.2f}-{e['upper']:.2f})"
            "</title></circle>"
        )
    if nowcast:
        corrected = " ".join(f"{x(e['day']):.1f},{y(e['mean']):.1f}" for e in nowcast)
        body.append(
            f'<polyline class="rt-nowcast" points="{corrected}" fill="none" stroke="#8e44ad" '
            'stroke-width="2" stroke-dasharray="2 2"><title>Rt, nowcast-corrected</title>'
            "</polyline>"
        )
    return _svg("Reproduction number Rt with its 95% credible interval", body)


def region_map(places: Sequence[dict[str, Any]], *, size: int = 420) -> Markup:
    """Bubbles at region centroids, area proportional to cases (equirectangular)."""
    located = [p for p in places if p["lat_e6"] is not None and p["lon_e6"] is not None]
    if not located:
        return _svg("No cases", ['<text x="20" y="40">No cases</text>'], width=size, height=size)
    lats = [p["lat_e6"] for p in located]
    lons = [p["lon_e6"] for p in located]
    margin = 300_000  # 0.3 degrees around the outermost centroids
    south, north = min(lats) - margin, max(lats) + margin
    west, east = min(lons) - margin, max(lons) + margin
    scale = (size - 20) / max(north - south, east - west)
    top = max(p["count"] for p in located)
    body = [f'<rect width="{size}" height="{size}" fill="#f4f7fb"/>']
    for place in sorted(located, key=lambda p: -p["count"]):
        cx = 10 + (place["lon_e6"] - west) * scale
        cy = 10 + (north - place["lat_e6"]) * scale
        r = 3 + 22 * (place["count"] / top) ** 0.5
        body.append(
            f'<circle class="bubble" cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="#c0392b" '
            f'fill-opacity="0.45" stroke="#922b21" data-region="{escape(place["code"])}" '
            f'data-count="{place["count"]}"><title>{escape(place["name"])} '
            f"({escape(place['code'])}): {place['count']} cases</title></circle>"
        )
    return _svg("Cases by region: bubbles at region centroids", body, width=size, height=size)


def positivity_chart(days: Sequence[dict[str, Any]]) -> Markup:
    """Tests per specimen day as bars, the share positive as a line (0-100%)."""
    if not any(d["tests"] for d in days):
        return _svg("No lab results", ['<text x="20" y="40">No lab results</text>'])
    top = max(d["tests"] for d in days)
    span = (WIDTH - 2 * PAD) / len(days)
    base = HEIGHT - PAD
    height = base - PAD / 2
    body = _axis(top, "tests/day")
    points = []
    for i, day in enumerate(days):
        h = height * day["tests"] / top
        x = PAD + i * span
        pct = "no tests" if day["pct"] is None else f"{day['pct']:g}% positive"
        body.append(
            f'<rect class="tests" x="{x:.1f}" y="{base - h:.1f}" width="{max(span - 1, 1):.1f}" '
            f'height="{h:.1f}" fill="#a9c4ec" data-date="{day["date"]}" '
            f'data-tests="{day["tests"]}" data-positive="{day["positive"]}"><title>{day["date"]}: '
            f"{day['tests']} tests, {day['positive']} positive ({pct})</title></rect>"
        )
        if day["pct"] is not None:
            points.append(f"{x + span / 2:.1f},{base - height * day['pct'] / 100:.1f}")
    body.append(
        f'<polyline class="positivity" points="{" ".join(points)}" fill="none" '
        'stroke="#c0392b" stroke-width="2"><title>share of tests positive</title></polyline>'
    )
    body.append(
        f'<text x="{WIDTH - PAD + 2}" y="{PAD / 2 + 4}" font-size="10" fill="#c0392b">100%</text>'
    )
    body.append(
        f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="10">{days[0]["date"]}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="10" text-anchor="end">'
        f"{days[-1]['date']}</text>"
    )
    return _svg("Lab tests per day by specimen date, with the share positive", body)
