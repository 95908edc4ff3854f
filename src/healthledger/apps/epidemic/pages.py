"""Console pages of the epidemic application (mounted at ``/epidemic``): the live
monitoring dashboard for reporting and reviewing institutions, its exports (PNG
figures, CSV line list, CSV/JSON aggregates) and the public statistics.

While the console is served, the early-warning scan follows the chain
(:class:`~healthledger.apps.epidemic.warning.LiveWarning`) if this node holds the key
of a CDC epidemiologist (demo custody), and public releases are recorded on chain by
that identity."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from healthledger.apps import PageKit
from healthledger.apps.epidemic import charts, geo, png
from healthledger.apps.epidemic.dashboard import Scope, scope_of
from healthledger.apps.epidemic.dates import day_of_ms, iso
from healthledger.apps.epidemic.disclosure import PublicStatistics, Release
from healthledger.apps.epidemic.filters import DISEASE_NAMES, UnknownFilter
from healthledger.apps.epidemic.readmodel import LINE_LIST_COLUMNS
from healthledger.apps.epidemic.releases import ChainReleases, release_inputs
from healthledger.apps.epidemic.reporting_pages import build_reporting_pages
from healthledger.apps.epidemic.review_pages import build_review_pages
from healthledger.apps.epidemic.workers import shared_dashboard
from healthledger.node.seam import AppNode

TEMPLATES = Path(__file__).resolve().parent / "templates"
PUBLIC_PAGES = ("/epidemic/public", "/epidemic/public.csv", "/epidemic/public.json")
COVERAGE_COLUMNS = (
    "code",
    "name",
    "population",
    "source",
    "vaccinated",
    "coverage_pct",
    "linked_supply_doses",
)


def _csv(rows: list[dict[str, Any]], columns: Sequence[str], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


NO_RELEASE = (
    "no public release is recorded on chain yet: a CDC's node publishes one a day, and "
    "a node that cannot record one never serves noise of its own"
)
_TITLES = {
    "validation-error": "Invalid request",
    "no-release": "No public release yet",
    "access-denied": "Access denied",
    "not-found": "Not found",
}


def _problem(request: Request, status: int, slug: str, detail: str) -> JSONResponse:
    """RFC 9457 problem details of a download (the platform documents each type under
    ``/api/v1/problems/``): a download never answers with a page or a bare message."""
    return JSONResponse(
        {
            "type": f"/api/v1/problems/{slug}",
            "title": _TITLES[slug],
            "status": status,
            "detail": detail,
            "instance": request.url.path,
        },
        status_code=status,
        media_type="application/problem+json",
    )


def _no_release(request: Request) -> JSONResponse:
    """Nothing to serve yet."""
    return _problem(request, 404, "no-release", NO_RELEASE)


def _aggregates_only(request: Request) -> JSONResponse:
    """The viewer's organisation sees public aggregates only."""
    return _problem(
        request,
        403,
        "access-denied",
        "your organisation neither reports nor reviews cases: public aggregates only",
    )


# How the downloads are documented in the OpenAPI document (the pages are not in it).
# The API documents every error body as problem details, and 500 and 503 everywhere.
_Responses = dict[int | str, dict[str, Any]]
_LOGIN: _Responses = {303: {"description": "Not logged in: to the login page (``Location``)"}}
_SCOPED: _Responses = {
    **_LOGIN,
    403: {"description": "The organisation sees public aggregates only"},
}
_FILTERED: _Responses = {
    **_SCOPED,
    422: {"description": "An unknown disease or region, or a region outside the viewer's scope"},
}
_NO_RELEASE: _Responses = {404: {"description": "No public release is recorded on chain yet"}}


def _download(media_type: str, schema: dict[str, Any]) -> _Responses:
    return {200: {"description": "The download", "content": {media_type: {"schema": schema}}}}


_CSV = _download("text/csv", {"type": "string"})
_PNG = _download("image/png", {"type": "string", "format": "binary"})
_JSON = _download("application/json", {"type": "object"})


def _cities(text: str) -> tuple[str, ...]:
    """City prefixes from a path segment; anything else in it is ignored."""
    return tuple(c for c in text.split(",")[:64] if len(c) == 4 and c.isdigit())


def _features(found: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(
        {"type": "FeatureCollection", "features": found},
        headers={"Cache-Control": "public, max-age=86400"},
    )


def _member_name(node: AppNode, org: str | None) -> str | None:
    """A member organisation's registered name (its id if it has none), or None."""
    if not org:
        return None
    record = node.organisation(org)
    return str(record.get("name") or org) if record else org


def build_pages(node: AppNode, kit: PageKit) -> APIRouter:
    """The dashboard page, its live panel and its figures as JSON."""
    # Reads only: the day's release is recorded by the epidemic.public-release worker.
    releases = ChainReleases(node, None)
    router = APIRouter()
    router.include_router(build_reporting_pages(node, kit))
    router.include_router(build_review_pages(node, kit))
    dashboard = shared_dashboard(node)
    public = PublicStatistics(releases)

    def release() -> Release | None:
        names, _ = release_inputs(node)
        return public.served(day_of_ms(node.clock()), names)

    def scoped(request: Request) -> Scope | None:
        return scope_of(node, kit.require_identity(request))

    def context(scope: Scope, disease: str, region: str) -> dict[str, Any]:
        """The page's figures and the charts drawn from them; a refused filter gives
        the refusal and the choices the viewer has instead (``f`` unfiltered)."""
        try:
            figures = dashboard.figures(scope, disease=disease or None, region=region or None)
        except UnknownFilter as exc:
            return {"f": dashboard.figures(scope), "refusal": str(exc), "specs": {}}
        cities = ",".join(geo.cities_of(row["code"] for row in figures["map"]))
        geojson = {"type": "json", "property": "features"}
        outlines = len(cities.split(",")) > 1
        return {
            "f": figures,
            "refusal": None,
            "specs": {
                "curve": charts.curve(figures),
                "rt": charts.rt(figures),
                "positivity": charts.positivity(figures),
                "map": charts.choropleth(
                    figures,
                    {"url": f"/epidemic/boundaries/{cities}.json", "format": geojson},
                    cities={"url": f"/epidemic/outlines/{cities}.json", "format": geojson}
                    if outlines
                    else None,
                ),
            },
        }

    def shown(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
        status = 200 if context["refusal"] is None else 422
        return kit.render(request, template, status=status, names=DISEASE_NAMES, **context)

    @router.get("", response_class=HTMLResponse, include_in_schema=False)
    def dashboard_page(request: Request, disease: str = "", region: str = "") -> HTMLResponse:
        """The monitoring dashboard, limited to the viewer's scope; updates live."""
        scope = scoped(request)
        if scope is None:
            return kit.render(request, "epidemic/dashboard.html", status=403, f=None)
        return shown(request, "epidemic/dashboard.html", context(scope, disease[:32], region[:6]))

    @router.get("/panel", response_class=HTMLResponse, include_in_schema=False)
    def panel(request: Request, disease: str = "", region: str = "") -> HTMLResponse:
        """The dashboard's figures as an HTML fragment (what the live page swaps in)."""
        scope = scoped(request)
        if scope is None:
            return HTMLResponse("", status_code=403)
        return shown(request, "epidemic/panel.html", context(scope, disease[:32], region[:6]))

    @router.get("/figures.json", responses=_FILTERED)
    def figures_json(request: Request, disease: str = "", region: str = "") -> JSONResponse:
        """The dashboard's numbers as JSON (the same the page draws)."""
        scope = scoped(request)
        if scope is None:
            return _aggregates_only(request)
        try:
            figures = dashboard.figures(scope, disease=disease or None, region=region or None)
        except UnknownFilter as exc:
            return _problem(request, 422, "validation-error", str(exc))
        return JSONResponse(figures)

    @router.get(
        "/figures/{name}.png",
        response_class=Response,
        responses={**_PNG, **_FILTERED, 404: {"description": "No such figure"}},
    )
    def figure_png(request: Request, name: str, disease: str = "", region: str = "") -> Response:
        """One dashboard figure (curve, rt, positivity, map) as a PNG image, drawn from
        the numbers the page shows, in the viewer's scope."""
        scope = scoped(request)
        draw = png.FIGURES.get(name)
        if draw is None:
            known = ", ".join(sorted(png.FIGURES))
            return _problem(request, 404, "not-found", f"no figure {name!r}: one of {known}")
        if scope is None:
            return _aggregates_only(request)
        try:
            figures = dashboard.figures(scope, disease=disease or None, region=region or None)
        except UnknownFilter as exc:
            return _problem(request, 422, "validation-error", str(exc))
        stamp = f"{figures['disease'] or 'none'}-{iso(figures['today'])}"
        return Response(
            draw(figures),
            media_type="image/png",
            headers={"Content-Disposition": f'attachment; filename="epidemic-{name}-{stamp}.png"'},
        )

    @router.get("/boundaries/{cities}.json", include_in_schema=False)
    def boundaries(cities: str) -> JSONResponse:
        """The districts' boundaries of these cities (``4401,4403``), GeoJSON."""
        return _features(geo.districts(_cities(cities)))

    @router.get("/outlines/{cities}.json", include_in_schema=False)
    def outlines(cities: str) -> JSONResponse:
        """The outlines of these cities, GeoJSON (none for one city)."""
        return _features(geo.outlines(_cities(cities)))

    @router.get("/coverage.csv", response_class=Response, responses={**_CSV, **_FILTERED})
    def coverage_csv(request: Request, disease: str = "") -> Response:
        """Vaccination coverage per city in the viewer's scope, with population sources."""
        scope = scoped(request)
        if scope is None:
            return _aggregates_only(request)
        try:
            figures = dashboard.figures(scope, disease=disease or None)
        except UnknownFilter as exc:
            return _problem(request, 422, "validation-error", str(exc))
        return _csv(figures["coverage"], COVERAGE_COLUMNS, "epidemic-coverage.csv")

    @router.get("/public", response_class=HTMLResponse, include_in_schema=False)
    def public_page(request: Request) -> HTMLResponse:
        """Public: today's differentially private case counts per city and disease, and
        the privacy budget spent by every release so far."""
        today = release()
        date = None if today is None else iso(today.day)
        return kit.render(
            request,
            "epidemic/public.html",
            release=today,
            date=date,
            spent=releases.spent(),
            disease_names=DISEASE_NAMES,
            recorded_by=_member_name(node, None if today is None else today.recorded_by),
            spec=None
            if today is None
            else charts.public_release(
                today.rows, date=str(date), suppress_below=today.suppress_below
            ),
        )

    @router.get("/public.json", responses=_NO_RELEASE)
    def public_json(request: Request) -> JSONResponse:
        """Public: today's release as JSON, with the total ε spent so far."""
        today = release()
        if today is None:
            return _no_release(request)
        spent = releases.spent()
        return JSONResponse(
            {
                **today.to_json(),
                "releases_on_chain": spent.releases,
                "epsilon_spent": spent.epsilon,
            }
        )

    @router.get("/public.csv", response_class=Response, responses={**_CSV, **_NO_RELEASE})
    def public_csv(request: Request) -> Response:
        """Public: today's release as CSV (suppressed counts empty)."""
        today = release()
        if today is None:
            return _no_release(request)
        rows = [{**r, "epsilon": today.epsilon, "date": iso(today.day)} for r in today.rows]
        columns = ("date", "region", "name", "disease", "count", "epsilon")
        return _csv(rows, columns, f"epidemic-public-{iso(today.day)}.csv")

    @router.get(
        "/aggregates.{fmt}",
        response_class=Response,
        responses={
            200: {
                "description": "The counts (``fmt`` csv or json)",
                "content": {**_CSV[200]["content"], **_JSON[200]["content"]},
            },
            **_SCOPED,
            404: {"description": "No such format"},
        },
    )
    def aggregates(request: Request, fmt: str) -> Response:
        """Exact counts by region, disease and onset date in the viewer's scope."""
        scope = scoped(request)
        if fmt not in ("csv", "json"):
            return _problem(request, 404, "not-found", f"no format {fmt!r}: csv or json")
        if scope is None:
            return _aggregates_only(request)
        rows = dashboard.aggregates(scope)
        if fmt == "json":
            return JSONResponse({"scope": scope.label, "rows": rows})
        return _csv(rows, ("disease", "region", "onset", "count"), "epidemic-aggregates.csv")

    @router.get("/linelist.csv", response_class=Response, responses={**_CSV, **_SCOPED})
    def line_list(request: Request) -> Response:
        """The line list of the cases the viewer may see (pseudonymous: no personal data,
        no patient id), for reporting and reviewing institutions only."""
        scope = scoped(request)
        if scope is None:
            return _aggregates_only(request)
        return _csv(dashboard.line_list(scope), LINE_LIST_COLUMNS, "epidemic-line-list.csv")

    return router
