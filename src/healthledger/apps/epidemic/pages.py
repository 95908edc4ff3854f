"""Console pages of the epidemic application (mounted at ``/epidemic``): the live
monitoring dashboard for reporting and reviewing institutions."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from healthledger.apps import PageKit
from healthledger.apps.epidemic import charts
from healthledger.apps.epidemic.dashboard import Dashboard, Scope, regions_on_chain, scope_of
from healthledger.apps.epidemic.dates import day_of_ms, iso
from healthledger.apps.epidemic.disclosure import PublicStatistics, Release
from healthledger.apps.epidemic.readmodel import LINE_LIST_COLUMNS
from healthledger.node.embedded import EmbeddedNode

TEMPLATES = Path(__file__).resolve().parent / "templates"
PUBLIC_PAGES = ("/epidemic/public", "/epidemic/public.csv", "/epidemic/public.json")


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


def build_pages(node: EmbeddedNode, kit: PageKit) -> APIRouter:
    """The dashboard page, its live panel and its figures as JSON."""
    router = APIRouter()
    dashboard = Dashboard(node)
    public = PublicStatistics()

    def release() -> Release:
        names = {code: str(r["name"]) for code, r in regions_on_chain(node).items()}
        return public.release(day_of_ms(node.clock()), dashboard.city_counts, names)

    def scoped(request: Request) -> Scope | None:
        return scope_of(node, kit.require_identity(request))

    def context(scope: Scope, disease: str, region: str) -> dict[str, Any]:
        figures = dashboard.figures(scope, disease=disease or None, region=region or None)
        first = figures["curve"][0]["day"] if figures["curve"] else figures["today"]
        return {
            "f": figures,
            "charts": {
                "curve": charts.epidemic_curve(figures["curve"]),
                "rt": charts.rt_chart(figures["rt"], first, figures["today"]),
                "map": charts.region_map(figures["places"]),
            },
        }

    @router.get("", response_class=HTMLResponse)
    def dashboard_page(request: Request, disease: str = "", region: str = "") -> HTMLResponse:
        """The monitoring dashboard, limited to the viewer's scope; updates live."""
        scope = scoped(request)
        if scope is None:
            return kit.render(request, "epidemic/dashboard.html", status=403, f=None)
        return kit.render(
            request, "epidemic/dashboard.html", **context(scope, disease[:32], region[:6])
        )

    @router.get("/panel", response_class=HTMLResponse)
    def panel(request: Request, disease: str = "", region: str = "") -> HTMLResponse:
        """The dashboard's figures as an HTML fragment (what the live page swaps in)."""
        scope = scoped(request)
        if scope is None:
            return HTMLResponse("", status_code=403)
        return kit.render(
            request, "epidemic/panel.html", **context(scope, disease[:32], region[:6])
        )

    @router.get("/figures.json")
    def figures_json(request: Request, disease: str = "", region: str = "") -> JSONResponse:
        """The dashboard's numbers as JSON (the same the page draws)."""
        scope = scoped(request)
        if scope is None:
            return JSONResponse({"detail": "aggregates only"}, status_code=403)
        return JSONResponse(
            dashboard.figures(scope, disease=disease[:32] or None, region=region[:6] or None)
        )

    @router.get("/public", response_class=HTMLResponse)
    def public_page(request: Request) -> HTMLResponse:
        """Public: today's differentially private case counts per city and disease."""
        return kit.render(
            request, "epidemic/public.html", release=release(), date=iso(release().day)
        )

    @router.get("/public.json")
    def public_json() -> JSONResponse:
        """Public: today's release as JSON."""
        return JSONResponse(release().to_json())

    @router.get("/public.csv")
    def public_csv() -> Response:
        """Public: today's release as CSV (suppressed counts empty)."""
        today = release()
        rows = [{**r, "epsilon": today.epsilon, "date": iso(today.day)} for r in today.rows]
        columns = ("date", "region", "name", "disease", "count", "epsilon")
        return _csv(rows, columns, f"epidemic-public-{iso(today.day)}.csv")

    @router.get("/aggregates.{fmt}")
    def aggregates(request: Request, fmt: str) -> Response:
        """Exact counts by region, disease and onset date in the viewer's scope."""
        scope = scoped(request)
        if scope is None or fmt not in ("csv", "json"):
            return JSONResponse({"detail": "not available"}, status_code=403)
        rows = dashboard.aggregates(scope)
        if fmt == "json":
            return JSONResponse({"scope": scope.label, "rows": rows})
        return _csv(rows, ("disease", "region", "onset", "count"), "epidemic-aggregates.csv")

    @router.get("/linelist.csv")
    def line_list(request: Request) -> Response:
        """The line list of the cases the viewer may see (pseudonymous: no personal data,
        no patient id), for reporting and reviewing institutions only."""
        scope = scoped(request)
        if scope is None:
            return JSONResponse({"detail": "aggregates only"}, status_code=403)
        return _csv(dashboard.line_list(scope), LINE_LIST_COLUMNS, "epidemic-line-list.csv")

    return router
