"""What the supply console pages show: a unit's timeline and temperature chart, the
recall dashboard. Plain data for the templates; the SVG chart is drawn here, inline
(the console is served offline: no scripts, no external assets)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from healthledger.apps.supply.verification import PublicLedger, outside, today_of

RECALL_BUCKETS = ("located", "returned", "destroyed", "missing")
"""How a recalled unit stands: held somewhere in the chain (located), back with its
maker (returned), destroyed or decommissioned, or out of reach (dispensed)."""


def when(at_ms: Any) -> str:
    """A ledger timestamp as ``YYYY-MM-DD HH:MM UTC``."""
    if not isinstance(at_ms, int):
        return ""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=at_ms)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class ChartBox:
    """The drawing area of the temperature chart, in SVG user units."""

    width: int = 640
    height: int = 220
    margin: int = 40


def temperature_svg(
    points: list[tuple[int, int, int]], low_dc: int | None, high_dc: int | None
) -> str:
    """An inline SVG chart: per event (ms, min, max tenths of a degree) a bar from min
    to max, the storage range as a shaded band; empty string when there is nothing."""
    if not points:
        return ""
    box = ChartBox()
    values = [v for _, lo, hi in points for v in (lo, hi)]
    values += [v for v in (low_dc, high_dc) if v is not None]
    top, bottom = max(values) + 10, min(values) - 10
    first, last = points[0][0], points[-1][0]
    span = max(last - first, 1)
    plot_w, plot_h = box.width - 2 * box.margin, box.height - 2 * box.margin

    def x(at: int) -> float:
        if len(points) == 1:
            return box.margin + plot_w / 2
        return box.margin + (at - first) / span * plot_w

    def y(dc: int) -> float:
        return box.margin + (top - dc) / (top - bottom) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {box.width} {box.height}" '
        f'role="img" aria-label="Temperature readings" class="temperature-chart" '
        f'data-testid="temperature-chart" width="{box.width}" height="{box.height}">',
        f'<rect x="0" y="0" width="{box.width}" height="{box.height}" fill="#fff"/>',
    ]
    if low_dc is not None and high_dc is not None:
        parts.append(
            f'<rect class="storage-range" x="{box.margin}" y="{y(high_dc):.1f}" '
            f'width="{plot_w}" height="{y(low_dc) - y(high_dc):.1f}" fill="#d8f0dc"/>'
        )
        for label, dc in (("max", high_dc), ("min", low_dc)):
            parts.append(
                f'<text x="4" y="{y(dc) + 4:.1f}" font-size="11">{label} {dc / 10:.1f}</text>'
            )
    path = []
    for at, lo, hi in points:
        out = low_dc is not None and high_dc is not None and (lo < low_dc or hi > high_dc)
        colour = "#c0392b" if out else "#2c6fbb"
        cx = x(at)
        parts.append(
            f'<line class="reading{" excursion" if out else ""}" x1="{cx:.1f}" '
            f'y1="{y(hi):.1f}" x2="{cx:.1f}" y2="{y(lo):.1f}" stroke="{colour}" '
            f'stroke-width="6" stroke-linecap="round"><title>{escape(when(at))}: '
            f"{lo / 10:.1f} to {hi / 10:.1f} °C</title></line>"
        )
        path.append(f"{cx:.1f},{y((lo + hi) // 2):.1f}")
    if len(path) > 1:
        parts.append(
            f'<polyline points="{" ".join(path)}" fill="none" stroke="#555" '
            'stroke-dasharray="3 3"/>'
        )
    parts.append(
        f'<text x="{box.margin}" y="{box.height - 8}" font-size="11">{escape(when(first))}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def unit_trace(ledger: PublicLedger, unit: str) -> dict[str, Any] | None:
    """A unit's record, how it stands (status, state, recall), its timeline with names
    and excursions against its product's range, and the temperature chart of its journey."""
    record = ledger.get(f"unit/{unit}")
    if record is None:
        return None
    product = ledger.get(f"product/{record['gtin']}") if record.get("gtin") else None
    trail = ledger.trail(unit)
    timeline = [
        {
            **entry,
            "when": when(entry.get("at")),
            "org_name": ledger.org_name(entry.get("org")),
            "place_name": ledger.place_name(entry.get("location")),
            "destination_name": ledger.place_name(entry.get("destination")),
            "excursion": product is not None
            and outside(entry.get("temperature_range_dc"), product),
            "temperature": (
                None
                if not entry.get("temperature_range_dc")
                else f"{entry['temperature_range_dc'][0] / 10:.1f} to "
                f"{entry['temperature_range_dc'][1] / 10:.1f} °C"
            ),
        }
        for entry in trail
    ]
    points = [
        (int(e["at"]), int(e["temperature_range_dc"][0]), int(e["temperature_range_dc"][1]))
        for e in trail
        if e.get("temperature_range_dc")
    ]
    chart = temperature_svg(
        points,
        None if product is None else int(product["temp_min_dc"]),
        None if product is None else int(product["temp_max_dc"]),
    )
    return {
        "unit": record,
        **ledger.standing(record, today=today_of(ledger.node)),
        "product": product,
        "maker_name": ledger.org_name(record.get("maker")),
        "custodian_name": ledger.org_name(record.get("custodian")),
        "place_name": ledger.place_name(record.get("location")),
        "destination_name": ledger.place_name(record.get("destination")),
        "timeline": timeline,
        "chart": chart,
    }


def _recall_bucket(record: dict[str, Any]) -> str:
    status = record.get("status")
    if status in ("destroyed", "decommissioned"):
        return "destroyed"
    if status in ("dispensed", "administered", "consumed"):
        return "missing"
    if record.get("custodian") == record.get("maker") and status == "active":
        return "returned"
    return "located"


def recall_dashboard(ledger: PublicLedger) -> list[dict[str, Any]]:
    """Every recall with its units counted as located, returned, destroyed or missing."""
    recalls = []
    for key, recall in ledger.range("recall/"):
        gtin, lot = recall["gtin"], recall["lot"]
        if recall.get("units"):
            units = [ledger.get(f"unit/{u}") for u in recall["units"]]
        else:
            units = [r for _, r in ledger.range(f"unit/01/{gtin}/21/") if r.get("lot") == lot]
        records = [u for u in units if u is not None]
        counts = Counter(_recall_bucket(r) for r in records)
        product = ledger.get(f"product/{gtin}")
        recalls.append(
            {
                "id": key.removeprefix("recall/"),
                "gtin": gtin,
                "lot": lot,
                "product": None if product is None else product["name"],
                "reason": recall["reason"],
                "by": recall["by"],
                "by_name": ledger.org_name(str(recall["by"]).split("/", 1)[0]),
                "at": (ledger.recorded_at(key) or (None, None))[0],
                "total": len(records),
                "counts": {b: counts.get(b, 0) for b in RECALL_BUCKETS},
                "units": [
                    {
                        "unit": r["unit"],
                        "bucket": _recall_bucket(r),
                        "custodian": r.get("custodian"),
                        "location": r.get("location"),
                        "status": r.get("status"),
                    }
                    for r in records
                ],
            }
        )
    return recalls
