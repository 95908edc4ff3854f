"""Charts for every application: Vega-Lite specifications with the console's look,
the JavaScript that draws them in the page, and their PNG rendering.

One specification per chart serves both the live page (drawn in the browser by
Vega-Embed, from the JavaScript vl-convert bundles, served by the console at
``/charts.js``) and the PNG export (rendered offline by vl-convert): one charting
library everywhere.

Vega-Lite through vl-convert rather than ECharts: vl-convert renders PNG and SVG
without a browser and ships the Vega, Vega-Lite and Vega-Embed JavaScript inside the
wheel, so the console stays offline; ECharts needs a browser (or a headless one) to
render an image.
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import threading
from pathlib import Path
from typing import Any

import vl_convert
from PIL import Image
from PIL.PngImagePlugin import PngInfo

VEGA_LITE = "6.1"
"""The Vega-Lite version vl-convert compiles with (browser bundle and PNG alike)."""
FONT = "Noto Sans CJK SC, Noto Sans, DejaVu Sans, sans-serif"
"""Region names are Chinese: a CJK face first (``make font-deps`` installs it)."""
HEIGHT = 260
SCRIPT_PATH = "/charts.js"
"""Where the console serves the bundle (a page loads it with a ``<script>`` tag)."""

Spec = dict[str, Any]
Width = int | str
"""Pixels, or ``"container"`` on the page (the chart fills its box, phone to desk)."""

CONFIG: Spec = {
    "font": FONT,
    "title": {"fontSize": 16, "subtitleFontSize": 13, "anchor": "start", "subtitleColor": "#444"},
    "axis": {"labelFontSize": 12, "titleFontSize": 13, "titleFontWeight": "normal"},
    "legend": {"labelFontSize": 12, "titleFontSize": 13, "orient": "bottom"},
    "view": {"stroke": None},
}


def chart(title: str, subtitle: str, width: Width, body: Spec, height: int | Spec = HEIGHT) -> Spec:
    """A Vega-Lite specification titled ``title`` over ``subtitle``, in the console's
    look, its ``body`` (data, marks, encodings, layers) spread in."""
    return {
        "$schema": f"https://vega.github.io/schema/vega-lite/v{VEGA_LITE}.json",
        "title": {"text": title, "subtitle": subtitle},
        "width": width,
        "height": height,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "config": CONFIG,
        **body,
    }


def empty(title: str, subtitle: str, width: Width, message: str) -> Spec:
    """A chart with nothing to draw: its title and ``message`` in words."""
    return chart(
        title,
        subtitle,
        width,
        {
            "data": {"values": [{"message": message}]},
            "mark": {"type": "text", "fontSize": 16, "color": "#555"},
            "encoding": {"text": {"field": "message"}},
        },
        height=120,
    )


SCALE = 2.0
"""PNG images are drawn at twice their CSS size, for sharp print."""


def render_png(spec: Spec, *, title: str, description: str) -> bytes:
    """``spec`` as PNG bytes (with the CJK font ``make font-deps`` installs), carrying
    ``title`` and ``description`` in its PNG text chunks as well as on the image."""
    drawn = vl_convert.vegalite_to_png(spec, scale=SCALE, vl_version=VEGA_LITE)
    image = Image.open(io.BytesIO(drawn))
    info = PngInfo()
    info.add_text("Title", title)
    info.add_text("Description", description)
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


SNIPPET = "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"
"""What the bundle exports to the page (vl-convert's names)."""


DRAW = """
/* healthledger: draw each [data-chart] box under root from the Vega-Lite specification
   in the JSON script the box names (pages call drawCharts(document) after their boxes). */
window.drawCharts = (root) => {
  for (const box of root.querySelectorAll("[data-chart]")) {
    const spec = JSON.parse(document.getElementById(box.dataset.chart).textContent);
    vegaEmbed(box, spec, {renderer: "svg", actions: false}).catch((error) => {
      box.textContent = "This chart could not be drawn: " + error.message;
    });
  }
};
"""
"""Appended to the bundle as served (not to its cached file): the one way pages draw."""


class ChartScript:
    """Vega, Vega-Lite and Vega-Embed as one script, taken from the vl-convert wheel so
    that pages need no network. Bundling takes a few seconds: it is done on first use
    and kept in the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``,
    ``healthledger/``) for every later process, or in ``folder`` where the cache cannot
    be written. Safe to share between threads."""

    def __init__(self, folder: Path) -> None:
        version = importlib.metadata.version("vl-convert-python")
        name = f"vega-bundle-{version}-vl{VEGA_LITE}.js"
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        self._paths = (cache / "healthledger" / name, folder / name)
        self._lock = threading.Lock()
        self._text: str | None = None

    def text(self) -> str:
        """The bundle's source."""
        with self._lock:
            if self._text is None:
                self._text = (self._read() or self._make()) + DRAW
            return self._text

    def _read(self) -> str | None:
        for path in self._paths:
            if path.is_file():
                return path.read_text(encoding="utf-8")
        return None

    def _make(self) -> str:
        text = str(vl_convert.javascript_bundle(SNIPPET, vl_version=VEGA_LITE))
        for path in self._paths:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(f".{os.getpid()}.partial")
                partial.write_text(text, encoding="utf-8")
                partial.replace(path)
                break
            except OSError:
                continue  # a read-only cache: the next folder
        return text
