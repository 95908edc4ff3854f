"""Lab results and vaccinations newest recorded first: an index in state beside
``lab/<lab_id>`` and ``vaccination/<vaccination_id>``, so that a page of the records a
caller may see (``reads.observations``) reads the index entries it lists and a few
more, however many records the ledger holds.

Index keys::

    recent/<kind>/org/<reporter_org>/<age>/<id>   {region, reporter_org}
    recent/<kind>/region/<region>/<age>/<id>      {region, reporter_org}

``<kind>`` is ``lab`` or ``vaccination``, ``<id>`` the record's id and ``<age>``
``AGE_BASE - reported_at`` in ``AGE_DIGITS`` digits: a range comes in ascending key
order, so newest recorded first, then by id, the order of ``list_observations``. Both
entries are written with the record, in the same transaction.

A hospital sees its own records (``visibility.Viewer.sees``): its organisation's range.
A CDC or commission sees the records of the regions its area and its grants contain:
the range of each such region code, found in the region table as it stands when the
page is read (the way ``visibility.region_contains`` walks it), so a record is indexed
under its own code only and a change of the table changes what is listed exactly as it
changes what is seen. The ranges are merged, each read in chunks that start small.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from operator import itemgetter
from typing import Any

from healthledger.apps.epidemic.schemas import ObservationKind
from healthledger.apps.epidemic.status_index import scan
from healthledger.apps.epidemic.visibility import MAX_DEPTH, Viewer
from healthledger.contracts.context import MAX_RANGE, Context

AGE_DIGITS = 16
AGE_BASE = 10**AGE_DIGITS - 1
"""The newest time an entry can carry (ms since the epoch): ``reported_at`` is below."""
FIRST_READ = 64
"""How many entries the first read of a range asks for at most (each next read asks
for twice as many), so that a page merged from many regions reads few of each."""

Position = tuple[int, str]
"""Where a record sits in a list: minus its ``reported_at``, then its id (a page's
``next`` is ``<sort value>:<id>``)."""


def _age(reported_at: int) -> str:
    return f"{AGE_BASE - reported_at:0{AGE_DIGITS}d}"


def record_entries(
    ctx: Context, kind: ObservationKind, observation_id: str, record: Mapping[str, Any]
) -> None:
    """Write the index entries of ``record`` (just recorded as ``observation_id``)."""
    found = {"region": record["region"], "reporter_org": record["reporter_org"]}
    place = f"{_age(int(record['reported_at']))}/{observation_id}"
    ctx.put(f"recent/{kind}/org/{found['reporter_org']}/{place}", found)
    ctx.put(f"recent/{kind}/region/{found['region']}/{place}", found)


def _position(place: str) -> Position:
    age, _, observation_id = place.partition("/")
    return int(age) - AGE_BASE, observation_id


def _seen_codes(ctx: Context, viewer: Viewer) -> list[str]:
    """The region codes whose records a CDC or commission ``viewer`` sees: its areas and
    every code of the region table inside one (``visibility.region_contains``, on the
    table read once)."""
    areas = {viewer.region, *viewer.granted} if viewer.region else set(viewer.granted)
    parents = {
        key.split("/", 1)[1]: region.get("parent") if isinstance(region, dict) else None
        for key, region in scan(ctx, "region/")
    }

    def inside(code: str) -> bool:
        current: str | None = code
        for _ in range(MAX_DEPTH):
            if current is None:
                return False
            if current in areas:
                return True
            current = parents.get(current)
        return False

    return sorted(code for code in {*parents, *areas} if code is not None and inside(code))


def _ranges(ctx: Context, viewer: Viewer, kind: ObservationKind) -> list[str]:
    """The prefixes of the index ranges holding every record of ``kind`` ``viewer`` sees."""
    if viewer.kind is None:
        return []
    if viewer.kind == "hospital":
        return [f"recent/{kind}/org/{viewer.org}/"]
    return [f"recent/{kind}/region/{code}/" for code in _seen_codes(ctx, viewer)]


def _after(cursor: Position | None) -> str | None:
    """The place (``<age>/<id>``) the entries listed follow ("" from the first); None
    if no entry can follow ``cursor``."""
    if cursor is None or -cursor[0] > AGE_BASE:
        return ""
    if cursor[0] > 0:
        return None
    return f"{_age(-cursor[0])}/{cursor[1]}"


def _newest(ctx: Context, prefix: str, after: str, first: int) -> Iterator[tuple[str, Any]]:
    """``(place, entry)`` of the range ``prefix`` that follow ``after``, in key order,
    read ``first`` at a time, then twice as many each time."""
    start, end, size = prefix + after, prefix[:-1] + "0", first
    while True:
        chunk = ctx.range(start, end, limit=size)
        for key, value in chunk:
            if key != start:  # the cursor's own entry, or the last of the chunk before
                yield key[len(prefix) :], value
        if len(chunk) < size:
            return
        start, size = chunk[-1][0], min(2 * size, MAX_RANGE)


def page(
    ctx: Context, viewer: Viewer, kind: ObservationKind, cursor: Position | None, limit: int
) -> tuple[list[Position], bool]:
    """The positions of the ``limit`` records of ``kind`` that ``viewer`` sees following
    ``cursor`` (from the first if None), newest recorded first, and whether more follow:
    about as many index entries are read as are listed."""
    after = _after(cursor)
    if after is None:
        return [], False
    first = min(limit + 1, FIRST_READ)
    ranges = [_newest(ctx, prefix, after, first) for prefix in _ranges(ctx, viewer, kind)]
    listed: list[Position] = []
    for place, found in heapq.merge(*ranges, key=itemgetter(0)):
        if viewer.sees(ctx, found):
            if len(listed) == limit:
                return listed, True
            listed.append(_position(place))
    return listed, False


def count(
    ctx: Context, viewer: Viewer, kind: ObservationKind, cursor: Position | None
) -> tuple[int, int]:
    """How many records of ``kind`` ``viewer`` sees, and how many of them come up to
    ``cursor`` included (none if None): every index entry in view is read."""
    total = before = 0
    for prefix in _ranges(ctx, viewer, kind):
        for key, found in scan(ctx, prefix):
            if viewer.sees(ctx, found):
                total += 1
                if cursor is not None and _position(key[len(prefix) :]) <= cursor:
                    before += 1
    return total, before
