"""The cold-chain chart of a unit's journey as a Vega-Lite specification, in the
console's chart look (``healthledger.appkit.charts``, the library every page draws
with): the product's storage range as a shaded band, each reading (the lowest and
highest temperature an event reported) as a bar from its minimum to its maximum,
excursions in red, the time axis in the consortium's local time with its zone named.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from healthledger.appkit.charts import Spec, Width, chart, empty
from healthledger.appkit.readable import CONSORTIUM_ZONE, celsius, when

TITLE = "Temperatures on the way"
BLUE, RED, BAND = "#2c6fbb", "#c0392b", "#d8f0dc"
WITHIN, OUTSIDE = "within the storage range", "outside the storage range"
NO_RANGE = "storage range unknown"
_PAD_MS = 30 * 60 * 1000
"""Room either side of the readings on the time axis (one reading is not a point)."""


@dataclass(frozen=True)
class Reading:
    """What one event reported of the temperature: when, where and its range."""

    at_ms: int
    """Ledger time of the event, Unix milliseconds."""
    low_dc: int
    """Lowest temperature reported, tenths of a degree Celsius."""
    high_dc: int
    """Highest temperature reported, tenths of a degree Celsius."""
    what: str = ""
    """The event, in words (``shipped``)."""
    where: str = ""
    """The place, by name."""


def _zone_name(at_ms: int, zone: dt.tzinfo) -> str:
    """The zone as ``readable.when`` writes it after the time: ``CST (UTC+08:00)``."""
    return when(at_ms, zone).split(" ", 2)[2]


def _local_ms(at_ms: int, zone: dt.tzinfo) -> int:
    """``at_ms`` moved by the zone's offset: drawn on a UTC scale, the axis reads the
    local wall-clock time whatever zone the browser (or the PNG renderer) is in."""
    moment = dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC)
    offset = moment.astimezone(zone).utcoffset() or dt.timedelta(0)
    return at_ms + int(offset.total_seconds() * 1000)


def _degrees(tenths: int) -> float:
    return round(tenths / 10, 1)


def temperature_chart(
    readings: Sequence[Reading],
    storage: Mapping[str, Any] | None,
    *,
    width: Width = "container",
    zone: dt.tzinfo = CONSORTIUM_ZONE,
    range_note: str | None = None,
) -> Spec:
    """The chart of ``readings`` against the ``storage`` range of the product
    (``temp_min_dc``, ``temp_max_dc``; None when the product is unknown). ``range_note``
    says whose range it is, or why there is none, where that is not the unit's own
    product's (a case holds packs of products)."""
    low = None if storage is None else int(storage["temp_min_dc"])
    high = None if storage is None else int(storage["temp_max_dc"])
    if low is not None and high is not None:
        shown = f"Shaded: the storage range, {celsius(low)} to {celsius(high)}"
        shown += f". {range_note}" if range_note else ""
    else:
        shown = range_note or "The product's storage range is not known"
    if not readings:
        return empty(TITLE, shown, width, "No temperature readings on this unit's journey")
    ordered = sorted(readings, key=lambda r: r.at_ms)
    zone_name = _zone_name(ordered[0].at_ms, zone)
    rows = []
    for r in ordered:
        if low is None or high is None:
            state = NO_RANGE
        else:
            state = OUTSIDE if r.low_dc < low or r.high_dc > high else WITHIN
        rows.append(
            {
                "t": _local_ms(r.at_ms, zone),
                "when": when(r.at_ms, zone),
                "min": _degrees(r.low_dc),
                "max": _degrees(r.high_dc),
                "reading": f"{celsius(r.low_dc)} to {celsius(r.high_dc)}",
                "state": state,
                "what": r.what,
                "where": r.where,
            }
        )
    degrees = [r.low_dc for r in ordered] + [r.high_dc for r in ordered]
    degrees += [d for d in (low, high) if d is not None]
    first, last = _local_ms(ordered[0].at_ms, zone), _local_ms(ordered[-1].at_ms, zone)
    pad = max((last - first) // 20, _PAD_MS)
    x = {
        "field": "t",
        "type": "temporal",
        "title": f"Time of the reading, {zone_name}",
        "scale": {"type": "utc", "domain": [first - pad, last + pad]},
        "axis": {
            # two lines (time over day) keep labels apart on a phone
            "labelExpr": "[utcFormat(datum.value, '%H:%M'), utcFormat(datum.value, '%-d %b')]",
            "labelAngle": 0,
            "labelOverlap": "greedy",
            "labelSeparation": 6,
            "tickCount": 4,
            "grid": False,
        },
    }
    y_scale = {"domain": [_degrees(min(degrees)) - 1, _degrees(max(degrees)) + 1], "zero": False}
    y = {
        "type": "quantitative",
        "title": "Temperature (°C)",
        "scale": y_scale,
        "axis": {"format": ".1f"},
    }
    layers: list[Spec] = []
    if low is not None and high is not None:
        layers.append(
            {
                "data": {
                    "values": [
                        {
                            "low": _degrees(low),
                            "high": _degrees(high),
                            "range": f"{celsius(low)} to {celsius(high)}",
                        }
                    ]
                },
                "mark": {"type": "rect", "color": BAND, "opacity": 0.9},
                "encoding": {
                    "y": {**y, "field": "low"},
                    "y2": {"field": "high"},
                    "tooltip": [{"field": "range", "title": "Storage range"}],
                },
            }
        )
    states = [WITHIN, OUTSIDE] if low is not None else [NO_RANGE]
    layers.append(
        {
            "data": {"values": rows},
            "mark": {"type": "rule", "strokeWidth": 9, "strokeCap": "round"},
            "encoding": {
                "x": x,
                "y": {**y, "field": "min"},
                "y2": {"field": "max"},
                "color": {
                    "field": "state",
                    "type": "nominal",
                    "title": "Reading (lowest to highest)",
                    "scale": {"domain": states, "range": [BLUE, RED][: len(states)]},
                    "legend": {
                        "orient": "bottom",
                        "direction": "vertical",
                        "symbolType": "stroke",
                        "symbolStrokeWidth": 8,
                    },
                },
                "tooltip": [
                    {"field": "when", "title": "When"},
                    {"field": "reading", "title": "Temperature"},
                    {"field": "state", "title": "Reading"},
                    {"field": "what", "title": "Event"},
                    {"field": "where", "title": "Where"},
                ],
            },
        }
    )
    return chart(TITLE, shown, width, {"layer": layers}, height=240)
