"""The charting JavaScript the dashboard loads (Vega, Vega-Lite and Vega-Embed), taken
from the vl-convert wheel, so that the page needs no network. Bundling takes a few
seconds: it is done once per process and kept in the application's folder for the
next start."""

from __future__ import annotations

import importlib.metadata
import threading
from pathlib import Path

import vl_convert

from healthledger.apps.epidemic.charts import VEGA_LITE

SNIPPET = "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"
"""What the bundle exports to the page (vl-convert's names)."""


class ChartScript:
    """The bundle, made on first use; safe to share between threads."""

    def __init__(self, folder: Path) -> None:
        version = importlib.metadata.version("vl-convert-python")
        self._path = folder / f"vega-bundle-{version}-vl{VEGA_LITE}.js"
        self._lock = threading.Lock()
        self._text: str | None = None

    def text(self) -> str:
        """The bundle's source."""
        with self._lock:
            if self._text is None:
                if self._path.is_file():
                    self._text = self._path.read_text(encoding="utf-8")
                else:
                    self._text = str(vl_convert.javascript_bundle(SNIPPET, vl_version=VEGA_LITE))
                    self._path.parent.mkdir(parents=True, exist_ok=True)
                    partial = self._path.with_suffix(".partial")
                    partial.write_text(self._text, encoding="utf-8")
                    partial.replace(self._path)
            return self._text
