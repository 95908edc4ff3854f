"""The coverage figure's API, ``GET /api/v1/credentials/coverage``: what the CDC's
coverage page shows, from the same functions (coverage.py), as the demo identity named
(demo custody, like the epidemic dashboard's figures). A filter that is not usable is a
422 problem naming it; an identity whose organisation does not oversee regions a 403."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError

from healthledger.apps.credentials import coverage
from healthledger.apps.credentials.schedules import BY_ID
from healthledger.contracts.errors import AccessDenied
from healthledger.node.seam import AppNode

IDENTITY = r"^[a-z0-9][a-z0-9-]{0,62}/[a-z0-9][a-z0-9._-]{0,62}$"
_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "The node holds no key for the identity, or its organisation is not "
        "a CDC or the commission"
    },
    422: {"description": "An unknown vaccine or region, or a date that is not a past day"},
}


def filter_problem(exc: coverage.CoverageFilterError) -> RequestValidationError:
    """The filters' problems as the API reports a bad query parameter (a 422)."""
    return RequestValidationError(
        [{"loc": ("query", e["field"]), "msg": e["message"], "type": "value_error"}
         for e in exc.errors]
    )  # fmt: skip


def overseer(node: AppNode, identity: str) -> None:
    """AccessDenied unless the node holds ``identity``'s key and its organisation is a
    CDC or the commission."""
    if not node.holds(identity):
        raise AccessDenied(f"this node holds no key for {identity!r} (demo custody)")
    org = node.organisation(identity.split("/", 1)[0])
    if not coverage.may_see(str((org or {}).get("kind", ""))):
        raise AccessDenied("vaccination coverage by region is for a CDC or the commission")


def coverage_router(node: AppNode) -> APIRouter:
    """The coverage route (``/coverage``)."""
    router = APIRouter(tags=["vaccination coverage"])

    @router.get("/coverage", summary="Vaccination coverage and its gaps by region",
                responses=_ERRORS)  # fmt: skip
    def figure(
        identity: Annotated[str, Query(pattern=IDENTITY, description="The demo identity "
                                       "(``org/name``) of a CDC or the commission.")],
        vaccine: Annotated[str, Query(max_length=32, description="A schedule: "
                                      + ", ".join(BY_ID) + "; default covid-19.")] = "",
        region: Annotated[str, Query(max_length=12, description="A GB/T 2260 code whose "
                                     "parts are shown; default the province.")] = "",
        as_of: Annotated[str, Query(max_length=10, description="YYYY-MM-DD, a past day; "
                                    "default today.")] = "",
    ) -> dict[str, Any]:  # fmt: skip
        """Per region: population (with its source), people who started the vaccine's
        series, completed its primary series, have a dose due and have one overdue on
        ``as_of``, each also as a percentage of the population; the schedule's version
        and source."""
        overseer(node, identity)
        doses, reference = coverage.inputs(node, identity)
        try:
            filters = coverage.check_filters(
                vaccine=vaccine, region=region, as_of=as_of,
                today=node.clock() // 86_400_000,
                regions=(str(r["code"]) for r in reference.get("regions", [])),
            )  # fmt: skip
        except coverage.CoverageFilterError as exc:
            raise filter_problem(exc) from None
        return coverage.coverage(doses, reference, filters)

    return router
