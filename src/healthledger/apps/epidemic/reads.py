"""The epidemic contract's queries of cases, lab results and vaccinations: what a caller
may see of them, by the rules of cases (``visibility.Viewer``). Cases are listed and
queued through the index of cases by status (``status_index``), and lab results and
vaccinations are paged through their index newest first (``recent_index``), so every
record counts, however many there are, and a page reads about what it lists."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from healthledger.apps.epidemic import recent_index, status_index
from healthledger.apps.epidemic.schemas import ObservationKind
from healthledger.apps.epidemic.visibility import Viewer
from healthledger.contracts.context import Context
from healthledger.contracts.errors import AccessDenied, InvalidArguments

MAX_ASKED = 1000
"""How many lab results or vaccinations ``by_id`` reads in one call."""
MAX_LISTED = 10_000
"""How many records ``cases``, ``queue`` and ``observations`` return at most in one
call."""


def _viewer(ctx: Context) -> Viewer:
    viewer = Viewer.of(ctx)
    if viewer.aggregates_only:
        raise AccessDenied(f"{ctx.caller.id} may see aggregates only")
    return viewer


def _prefix(kind: ObservationKind) -> str:
    return "lab/" if kind == "lab" else "vaccination/"


def case(ctx: Context, case_id: str) -> dict[str, Any]:
    """Case ``case_id`` with the links to other cases the caller may see;
    AccessDenied if the caller may not see it (or it is not recorded)."""
    viewer = Viewer.of(ctx)
    record = ctx.get(f"case/{case_id}")
    if record is None or not viewer.sees(ctx, record):
        raise AccessDenied(f"no case {case_id} visible to {ctx.caller.id}")
    links = []
    for key, link in ctx.range(f"link/{case_id}/", f"link/{case_id}0"):
        other = ctx.get(f"case/{key.rsplit('/', 1)[1]}")
        if other is not None and viewer.sees(ctx, other):
            links.append(link)
    return {**record, "links": links}


def _seen(
    ctx: Context, viewer: Viewer, statuses: Iterable[str], disease: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(case_id, index entry)`` of every case in ``statuses`` (of ``disease`` if
    given) that ``viewer`` may see: the filters apply to every case, before any limit."""
    for status in statuses:
        for case_id, found in status_index.entries(ctx, status):
            if (not disease or found["disease"] == disease) and viewer.sees(ctx, found):
                yield case_id, found


def _records(ctx: Context, case_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The case records of ``case_ids`` (each written with its index entry), in order."""
    found = []
    for case_id in case_ids:
        record = ctx.get(f"case/{case_id}")
        if isinstance(record, dict):
            found.append(record)
    return found


def _limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LISTED:
        raise InvalidArguments(
            f"limit {limit}: from 1 to {MAX_LISTED}",
            [{"field": "limit", "message": f"from 1 to {MAX_LISTED}"}],
        )


def cases(ctx: Context, *, disease: str, status: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` cases the caller may see, of ``disease`` and ``status`` if given,
    in case id order."""
    viewer = _viewer(ctx)
    _limit(limit)
    statuses = (status,) if status else status_index.STATUSES
    found = sorted(case_id for case_id, _ in _seen(ctx, viewer, statuses, disease))
    return _records(ctx, found[:limit])


def _sort_key(order: str, case_id: str, found: dict[str, Any]) -> tuple[int, str]:
    if order == "oldest-reported":
        return int(found["reported_at"]), case_id
    if order == "newest-reported":
        return -int(found["reported_at"]), case_id
    return -int(found.get("reviewed_at", 0)), case_id


def _cursor(after: str, listed: str) -> tuple[int, str] | None:
    """The position ``after`` names (``<sort value>:<id>``, a page's ``next``) in what
    is ``listed`` (a word for the refusal)."""
    if not after:
        return None
    value, _, found_id = after.partition(":")
    if not found_id or not value.lstrip("-").isdigit():
        raise InvalidArguments(
            f"after {after!r} is not a position in the {listed} (a page's 'next')",
            [{"field": "after", "message": "a page's 'next', as it was given"}],
        )
    return int(value), found_id


def _page(
    ordered: list[tuple[int, str]], after: str, limit: int, listed: str
) -> tuple[list[tuple[int, str]], dict[str, Any]]:
    """The ``limit`` positions of sorted ``ordered`` that follow ``after`` (from the
    first if empty) and where the page sits: ``total``, ``offset`` (how many come
    before it) and ``next`` (the position to ask after for the page that follows; empty
    after the last). An item is on one page only, whatever changes between pages,
    since a position is a sort value and an id."""
    cursor = _cursor(after, listed)
    offset = 0 if cursor is None else bisect.bisect_right(ordered, cursor)
    page = ordered[offset : offset + limit]
    more = offset + limit < len(ordered)
    place = {
        "total": len(ordered),
        "offset": offset,
        "next": f"{page[-1][0]}:{page[-1][1]}" if page and more else "",
    }
    return page, place


def queue(
    ctx: Context, statuses: Sequence[str], order: str, *, limit: int, after: str, disease: str
) -> dict[str, Any]:
    """The page of ``limit`` cases the caller may see in ``statuses`` that follows the
    position ``after`` in ``order`` (from the first if empty): ``cases`` and where the
    page sits (``_page``). A case is on one page only, whatever is reviewed between
    pages."""
    viewer = _viewer(ctx)
    _limit(limit)
    ordered = sorted(
        _sort_key(order, case_id, found)
        for case_id, found in _seen(ctx, viewer, dict.fromkeys(statuses), disease)
    )
    page, place = _page(ordered, after, limit, "queue")
    return {"cases": _records(ctx, (case_id for _, case_id in page)), **place}


def counts(ctx: Context, *, disease: str) -> dict[str, int]:
    """How many cases the caller may see in each status, of ``disease`` if given."""
    viewer = _viewer(ctx)
    return {
        status: sum(1 for _ in _seen(ctx, viewer, (status,), disease))
        for status in status_index.STATUSES
    }


def observations(
    ctx: Context, kind: ObservationKind, *, limit: int, after: str, count: bool = True
) -> dict[str, Any]:
    """The page of ``limit`` records of ``kind`` the caller may see that follows the
    position ``after``, newest recorded first (by the time of the transaction that
    recorded it, then id): ``observations`` and where the page sits, as for the case
    queue (``_page``), with ``total`` and ``offset`` None unless ``count``. The page is
    read from the index of records newest first (``recent_index``): its entries and a
    few more, however many records there are; counting reads every entry in view."""
    viewer, prefix = _viewer(ctx), _prefix(kind)
    _limit(limit)
    cursor = _cursor(after, "list")
    listed, more = recent_index.page(ctx, viewer, kind, cursor, limit)
    found = [ctx.get(f"{prefix}{observation_id}") for _, observation_id in listed]
    total, offset = recent_index.count(ctx, viewer, kind, cursor) if count else (None, None)
    return {
        "observations": [record for record in found if record is not None],
        "total": total,
        "offset": offset,
        "next": f"{listed[-1][0]}:{listed[-1][1]}" if listed and more else "",
    }


def by_id(ctx: Context, kind: ObservationKind, ids: list[str]) -> list[dict[str, Any] | None]:
    """The records ``ids`` of ``kind``, in order, each read by its key: the record if
    the caller may see it, None if it is not recorded or not visible to the caller."""
    viewer, prefix = _viewer(ctx), _prefix(kind)
    if len(ids) > MAX_ASKED:
        raise InvalidArguments(
            f"{len(ids)} ids asked at once; at most {MAX_ASKED}",
            [{"field": "ids", "message": f"at most {MAX_ASKED} ids"}],
        )
    found: list[dict[str, Any] | None] = []
    for observation_id in ids:
        record = ctx.get(f"{prefix}{observation_id}") if observation_id else None
        found.append(record if record is not None and viewer.sees(ctx, record) else None)
    return found
