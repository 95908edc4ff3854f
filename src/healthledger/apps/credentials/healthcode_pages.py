"""The health code's console pages (mounted under ``/credentials``), public: the count of
colour changes by rule clause, district and day with the appeals, and the holder's
phone-sized page (demo: choose a simulated person) with the colour, why, and a QR code
renewed every minute. Every figure is also JSON under ``/api/v1/credentials/healthcode``."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from healthledger.apps import PageKit
from healthledger.apps.credentials import healthcode_board_view as view
from healthledger.apps.credentials import healthcode_service as service
from healthledger.apps.credentials.healthcode_routes import PID
from healthledger.node.seam import AppNode, NodeError

TEMPLATES = Path(__file__).resolve().parent / "templates"
PUBLIC_PAGES = (
    "/credentials/healthcode",
    "/credentials/healthcode/changes.csv",
    "/credentials/healthcode/holder",
    "/credentials/healthcode/holder/{pid}",
)
FACT_NAMES = {
    "case": "Confirmed case, diagnosed",
    "lab": "Test result of",
    "dose": "Vaccination of",
    "contact": "Close-contact notice of",
}


def healthcode_pages(node: AppNode, kit: PageKit) -> APIRouter:
    """The health code's pages (prefix ``/healthcode``)."""
    router = APIRouter(prefix="/healthcode")

    @router.get("", response_class=HTMLResponse, include_in_schema=False)
    def public(request: Request) -> HTMLResponse:
        summary = service.board(node).summary()
        regions, clauses = view.choices(summary)
        wanted, errors = view.parse_filter(request.query_params, regions=regions, clauses=clauses)
        shown = view.overview(summary, wanted)
        peak = max((d["red"] + d["yellow"] + d["green"] for d in shown["days"]), default=1)
        return kit.render(
            request, "credentials/healthcode_public.html", status=400 if errors else 200,
            summary=summary, shown=shown, wanted=wanted, errors=errors, regions=regions,
            clauses=clauses, all_days=[d["day"] for d in summary["days"]],
            rules=service.rules(node), day_peak=max(peak, 1), far_above=view.FAR_ABOVE,
            far_above_min=view.FAR_ABOVE_MIN,
        )  # fmt: skip

    @router.get("/changes.csv", include_in_schema=False)
    def changes_csv(request: Request) -> Response:
        summary = service.board(node).summary()
        regions, clauses = view.choices(summary)
        wanted, errors = view.parse_filter(request.query_params, regions=regions, clauses=clauses)
        if errors:
            return PlainTextResponse(" ".join(errors), status_code=400)
        return Response(
            view.as_csv(summary, wanted), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="healthcode-changes.csv"'},
        )  # fmt: skip

    @router.get("/holder", response_class=HTMLResponse, include_in_schema=False)
    def holders(request: Request) -> HTMLResponse:
        return kit.render(
            request, "credentials/healthcode_holders.html", people=service.holders(node)
        )

    @router.get("/holder/{pid}", response_class=HTMLResponse, include_in_schema=False)
    def holder(request: Request, pid: str) -> HTMLResponse:
        code = service.holder_view(node, pid) if re.match(PID, pid) else None
        if code is None:
            return kit.render(
                request, "credentials/healthcode_holders.html", status=404,
                people=service.holders(node), missing=pid,
            )  # fmt: skip
        try:
            qr, problem = service.fresh_qr(node, pid), ""
        except NodeError as exc:
            qr, problem = None, f"No QR code: {exc}"
        return kit.render(
            request, "credentials/healthcode_holder.html", code=code, qr=qr,
            qr_problem=problem, fact_names=FACT_NAMES,
        )  # fmt: skip

    return router
