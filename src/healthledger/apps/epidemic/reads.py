"""The epidemic contract's queries of cases, lab results and vaccinations: what a caller
may see of them, by the rules of cases (``visibility.Viewer``)."""

from __future__ import annotations

from typing import Any

from healthledger.apps.epidemic.schemas import ObservationKind
from healthledger.apps.epidemic.visibility import Viewer
from healthledger.contracts.context import Context
from healthledger.contracts.errors import AccessDenied, InvalidArguments

MAX_ASKED = 1000
"""How many lab results or vaccinations ``by_id`` reads in one call."""


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


def cases(ctx: Context, *, disease: str, status: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` cases the caller may see, of ``disease`` and ``status`` if given."""
    viewer = _viewer(ctx)
    out = []
    for _, record in ctx.range("case/", "case0", limit=10_000):
        if disease and record["disease"] != disease:
            continue
        if status and record["status"] != status:
            continue
        if viewer.sees(ctx, record):
            out.append(record)
            if len(out) >= limit:
                break
    return out


def visible(ctx: Context, kind: ObservationKind, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` of the caller's visible records of ``kind``, in key order."""
    viewer, prefix = _viewer(ctx), _prefix(kind)
    out = []
    for _, record in ctx.range(prefix, prefix[:-1] + "0", limit=10_000):
        if viewer.sees(ctx, record):
            out.append(record)
            if len(out) >= limit:
                break
    return out


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
