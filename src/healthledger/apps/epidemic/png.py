"""The dashboard's figures as PNG images: the same Vega-Lite specifications the page
draws (``charts.py``), rendered offline by vl-convert (``healthledger.appkit.charts``)
with the CJK font that ``make font-deps`` installs (region names are Chinese). Each
image carries its title and what it shows in its PNG text chunks as well as on the
image."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from healthledger.appkit.charts import Spec, render_png
from healthledger.apps.epidemic import charts, geo

WIDTH = 880
"""Pixels of the plot area's box; the image is drawn at twice that for sharp print."""


def _export(name: str, spec: Spec, figures: Mapping[str, Any]) -> bytes:
    return render_png(
        spec,
        title=f"{name}: {figures['subtitle']}",
        description=f"healthledger epidemic dashboard; {figures['subtitle']}; scope: "
        f"{figures['scope']}; day {figures['today']}",
    )


def curve_png(figures: Mapping[str, Any]) -> bytes:
    """The epidemic curve."""
    return _export("Epidemic curve", charts.curve(figures, WIDTH), figures)


def rt_png(figures: Mapping[str, Any]) -> bytes:
    """Rt, latest window and nowcast-corrected."""
    return _export("Reproduction number Rt", charts.rt(figures, WIDTH), figures)


def positivity_png(figures: Mapping[str, Any]) -> bytes:
    """Tests and the 7-day share positive."""
    return _export("Test positivity", charts.positivity(figures, WIDTH), figures)


def map_png(figures: Mapping[str, Any]) -> bytes:
    """The choropleth of cases by district, boundaries inline."""
    cities = geo.cities_of(row["code"] for row in figures["map"])
    outlines = geo.outlines(cities)
    spec = charts.choropleth(
        figures,
        {"values": geo.districts(cities)},
        cities={"values": outlines} if outlines else None,
        width=WIDTH,
    )
    return _export("Cases by district", spec, figures)


FIGURES: dict[str, Callable[[Mapping[str, Any]], bytes]] = {
    "curve": curve_png,
    "rt": rt_png,
    "positivity": positivity_png,
    "map": map_png,
}
"""The dashboard figures that export as PNG, by name."""
