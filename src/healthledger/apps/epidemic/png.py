"""The dashboard's figures as PNG images, drawn with Pillow from the same figures the
page shows (``Dashboard.figures``): epidemic curve, Rt with its credible band, test
positivity and the bubble map. Each image carries its title and the scope in its
PNG text chunks as well as on the image."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

WIDTH, HEIGHT = 960, 420
LEFT, RIGHT, TOP, BOTTOM = 64, 64, 48, 48
BLUE = (59, 125, 216)
DARK = (29, 79, 145)
RED = (192, 57, 43)
GREY = (136, 136, 136)
BAND = (190, 212, 242)
PURPLE = (142, 68, 173)


class Canvas:
    """A plot area with axes, title and scales, mapping data to pixels."""

    def __init__(self, title: str, *, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.image = Image.new("RGB", (width, height), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.font = ImageFont.load_default(size=13)
        self.small = ImageFont.load_default(size=11)
        self.width, self.height = width, height
        self.draw.text((LEFT, 14), title, fill="black", font=self.font)

    def axes(self, top: float, label: str, first: str, last: str) -> None:
        """Axes from zero to ``top`` with the first and last dates below."""
        base = self.height - BOTTOM
        self.draw.line([(LEFT, TOP), (LEFT, base), (self.width - RIGHT, base)], fill=GREY)
        self.draw.text((8, TOP - 18), label, fill="black", font=self.small)
        self.draw.text((LEFT - 8, base), "0", fill="black", font=self.small, anchor="rm")
        self.draw.text((LEFT - 8, TOP + 8), f"{top:g}", fill="black", font=self.small, anchor="rm")
        self.draw.text((LEFT, base + 8), first, fill="black", font=self.small)
        self.draw.text(
            (self.width - RIGHT, base + 8), last, fill="black", font=self.small, anchor="ra"
        )

    def x(self, index: float, count: int) -> float:
        """The x of slot ``index`` of ``count`` (its left edge)."""
        return LEFT + (self.width - LEFT - RIGHT) * index / max(count, 1)

    def y(self, value: float, top: float) -> float:
        """The y of ``value`` on a scale from 0 to ``top``."""
        base = self.height - BOTTOM
        return base - (base - TOP) * min(max(value, 0.0), top) / max(top, 1e-9)

    def png(self, title: str, scope: str) -> bytes:
        """The image as PNG bytes, with title and scope as text chunks."""
        info = PngInfo()
        info.add_text("Title", title)
        info.add_text("Description", f"healthledger epidemic dashboard; scope: {scope}")
        out = io.BytesIO()
        self.image.save(out, format="PNG", pnginfo=info)
        return out.getvalue()


def _empty(title: str, scope: str, message: str) -> bytes:
    canvas = Canvas(title)
    canvas.draw.text((LEFT, HEIGHT / 2), message, fill="black", font=canvas.font)
    return canvas.png(title, scope)


def curve_png(figures: dict[str, Any]) -> bytes:
    """Daily cases by onset date (bars) and cumulative cases (line, right scale)."""
    title = f"Epidemic curve: {figures['disease'] or 'no disease'} ({figures['scope']})"
    curve: Sequence[dict[str, Any]] = figures["curve"]
    if not curve:
        return _empty(title, figures["scope"], "No cases")
    canvas = Canvas(title)
    top = max(1, max(p["count"] for p in curve))
    total = max(1, curve[-1]["cumulative"])
    canvas.axes(top, "cases/day", curve[0]["date"], curve[-1]["date"])
    base = HEIGHT - BOTTOM
    points = []
    for i, point in enumerate(curve):
        x0, x1 = canvas.x(i, len(curve)), canvas.x(i + 1, len(curve)) - 1
        canvas.draw.rectangle([(x0, canvas.y(point["count"], top)), (max(x0, x1), base)], fill=BLUE)
        points.append(((x0 + x1) / 2, canvas.y(point["cumulative"], total)))
    if len(points) > 1:
        canvas.draw.line(points, fill=RED, width=2)
    canvas.draw.text((WIDTH - RIGHT + 4, TOP), f"{total}", fill=RED, font=canvas.small)
    return canvas.png(title, figures["scope"])


def rt_png(figures: dict[str, Any]) -> bytes:
    """Rt's mean over its 95% credible band, with the line Rt = 1, and the
    nowcast-corrected Rt's mean (purple) where both are estimated."""
    title = f"Reproduction number Rt: {figures['disease'] or 'no disease'} ({figures['scope']})"
    rt: Sequence[dict[str, Any]] = figures["rt"]
    if not rt:
        return _empty(title, figures["scope"], "Too few cases to estimate Rt")
    canvas = Canvas(title)
    top = max(2.0, max(e["upper"] for e in rt))
    canvas.axes(round(top, 1), "Rt", rt[0]["date"], rt[-1]["date"])
    n = len(rt)
    upper = [(canvas.x(i + 0.5, n), canvas.y(e["upper"], top)) for i, e in enumerate(rt)]
    lower = [(canvas.x(i + 0.5, n), canvas.y(e["lower"], top)) for i, e in enumerate(rt)]
    canvas.draw.polygon(upper + lower[::-1], fill=BAND)
    one = canvas.y(1.0, top)
    canvas.draw.line([(LEFT, one), (WIDTH - RIGHT, one)], fill=RED, width=1)
    mean = [(canvas.x(i + 0.5, n), canvas.y(e["mean"], top)) for i, e in enumerate(rt)]
    if len(mean) > 1:
        canvas.draw.line(mean, fill=DARK, width=2)
    slot = {e["day"]: i for i, e in enumerate(rt)}
    corrected = [
        (canvas.x(slot[e["day"]] + 0.5, n), canvas.y(e["mean"], top))
        for e in (figures["nowcast"] or {}).get("rt", [])
        if e["day"] in slot
    ]
    if len(corrected) > 1:
        canvas.draw.line(corrected, fill=PURPLE, width=2)
    return canvas.png(title, figures["scope"])


def positivity_png(figures: dict[str, Any]) -> bytes:
    """Tests per day (bars, left scale) and the share positive (line, 0-100%)."""
    title = f"Test positivity: {figures['disease'] or 'no disease'} ({figures['scope']})"
    days: Sequence[dict[str, Any]] = figures["positivity"]
    if not any(d["tests"] for d in days):
        return _empty(title, figures["scope"], "No lab results")
    canvas = Canvas(title)
    top = max(d["tests"] for d in days)
    canvas.axes(top, "tests/day", days[0]["date"], days[-1]["date"])
    base = HEIGHT - BOTTOM
    line = []
    for i, day in enumerate(days):
        x0, x1 = canvas.x(i, len(days)), canvas.x(i + 1, len(days)) - 1
        canvas.draw.rectangle([(x0, canvas.y(day["tests"], top)), (max(x0, x1), base)], fill=BAND)
        if day["pct"] is not None:
            line.append(((x0 + x1) / 2, canvas.y(day["pct"], 100.0)))
    if len(line) > 1:
        canvas.draw.line(line, fill=RED, width=2)
    canvas.draw.text((WIDTH - RIGHT + 4, TOP), "100%", fill=RED, font=canvas.small)
    return canvas.png(title, figures["scope"])


def map_png(figures: dict[str, Any], *, size: int = 640) -> bytes:
    """Bubbles at region centroids, area proportional to cases (equirectangular)."""
    title = f"Cases by region: {figures['disease'] or 'no disease'} ({figures['scope']})"
    located = [p for p in figures["places"] if p["lat_e6"] is not None]
    if not located:
        return _empty(title, figures["scope"], "No cases")
    canvas = Canvas(title, width=size, height=size)
    margin = 300_000
    south = min(p["lat_e6"] for p in located) - margin
    north = max(p["lat_e6"] for p in located) + margin
    west = min(p["lon_e6"] for p in located) - margin
    east = max(p["lon_e6"] for p in located) + margin
    scale = (size - 2 * TOP) / max(north - south, east - west)
    top = max(p["count"] for p in located)
    for place in sorted(located, key=lambda p: -p["count"]):
        cx = TOP + (place["lon_e6"] - west) * scale
        cy = TOP + (north - place["lat_e6"]) * scale
        r = 3 + 30 * (place["count"] / top) ** 0.5
        canvas.draw.ellipse([(cx - r, cy - r), (cx + r, cy + r)], outline=RED, width=2)
    return canvas.png(title, figures["scope"])


FIGURES: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "curve": curve_png,
    "rt": rt_png,
    "positivity": positivity_png,
    "map": map_png,
}
"""The dashboard figures that export as PNG, by name."""
