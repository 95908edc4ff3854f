"""The CDC's vaccination-coverage page (``/credentials/coverage``): filters for the
vaccine, the region and the day, and per region the share of the population with a
complete primary series, a dose due and a dose overdue, worst gaps first. The same
figure is JSON at ``/api/v1/credentials/coverage`` (coverage_routes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from healthledger.apps import HomePanel, Link, PageKit, Person
from healthledger.apps.credentials import coverage
from healthledger.apps.credentials.schedules import SCHEDULES
from healthledger.contracts.errors import AccessDenied
from healthledger.node.seam import AppNode

DAY_MS = 86_400_000


def coverage_pages(node: AppNode, kit: PageKit) -> APIRouter:
    """The coverage page (``/coverage``)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/coverage", response_class=HTMLResponse)
    async def page(
        request: Request, vaccine: str = "", region: str = "", as_of: str = ""
    ) -> HTMLResponse:
        """Coverage and its gaps by region, as the logged-in CDC or commission sees it."""
        person = kit.person(request)
        if not coverage.may_see(person.kind):
            raise AccessDenied(
                "Vaccination coverage by region is for a CDC or the health commission; you "
                f"are a {person.role} of {person.org_name}"
            )
        doses: list[dict[str, Any]] = []
        args: dict[str, Any] = {"kind": "vaccination", "limit": coverage.DOSES_PAGE, "count": False}
        while True:  # every page of the doses the person sees
            page = await kit.ask(request, "epidemic", "list_observations", args)
            doses += page["observations"]
            if not page["next"]:
                break
            args["after"] = str(page["next"])
        reference = await kit.ask(request, "epidemic", "reference", {})
        today = node.clock() // DAY_MS
        values = {"vaccine": vaccine, "region": region, "as_of": as_of}
        try:
            filters = coverage.check_filters(
                **values, today=today, regions=(str(r["code"]) for r in reference["regions"])
            )
        except coverage.CoverageFilterError as exc:
            errors = {e["field"]: e["message"] for e in exc.errors}
            figure, status = None, 422
        else:
            errors, status = {}, 200
            figure = coverage.coverage(doses, reference, filters)
            values = {"vaccine": filters.vaccine, "region": filters.region,
                      "as_of": coverage.iso(filters.as_of)}  # fmt: skip
        return kit.render(
            request, "credentials/coverage.html", status=status, figure=figure,
            values=values, errors=errors, today=coverage.iso(today),
            vaccines=[(s.id, s.name) for s in SCHEDULES],
            regions=[("", "The whole province"), *coverage.region_options(reference)],
            api_identity=person.identity,
        )  # fmt: skip

    return router


def coverage_panels(node: AppNode, person: Person) -> Sequence[HomePanel]:
    """A CDC's or the commission's home: where vaccination coverage falls short."""
    if not coverage.may_see(person.kind):
        return ()
    return (
        HomePanel(
            "Vaccination coverage",
            summary="Who has a complete series, a dose due or a dose overdue, by region, "
            "against each region's population: where reminders and outreach are needed.",
            actions=(
                Link("/credentials/coverage", "Coverage gaps by region", "COVID-19 by default"),
                Link("/credentials/coverage?vaccine=influenza", "Influenza this season"),
            ),
            order=45,
        ),
    )
