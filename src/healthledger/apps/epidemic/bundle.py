"""The charting JavaScript the dashboard loads (Vega, Vega-Lite and Vega-Embed), taken
from the vl-convert wheel, so that the page needs no network. Bundling takes a few
seconds: it is done once and kept in the user's cache folder (``$XDG_CACHE_HOME`` or
``~/.cache``, ``healthledger/``) for every later process, or in the application's
folder where the cache cannot be written."""

from __future__ import annotations

import importlib.metadata
import os
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
        name = f"vega-bundle-{version}-vl{VEGA_LITE}.js"
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        self._paths = (cache / "healthledger" / name, folder / name)
        self._lock = threading.Lock()
        self._text: str | None = None

    def text(self) -> str:
        """The bundle's source."""
        with self._lock:
            if self._text is None:
                self._text = self._read() or self._make()
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
