"""The health code's appeals in the console (``/credentials/healthcode/appeals``): a
hospital's doctor or nurse files an appeal for a patient by their pseudonymous id and
coded grounds; a CDC epidemiologist decides each appeal waiting (upheld, or overturned
with a coded reason), the decision and any colour change recorded on chain."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from healthledger.appkit.readable import someone
from healthledger.apps import PageKit, Written
from healthledger.apps.credentials import healthcode_service as service
from healthledger.node.seam import AppNode

FILING_ROLES = ("doctor", "nurse")
DECIDING_ROLES = ("epidemiologist",)


def healthcode_appeal_pages(node: AppNode, kit: PageKit) -> APIRouter:
    """The appeal pages (prefix ``/healthcode/appeals``)."""
    router = APIRouter(prefix="/healthcode/appeals", include_in_schema=False)

    def page(request: Request, written: Written | None, what: str) -> HTMLResponse:
        person = kit.person(request)
        appeals = [a for _, a in node.range("appeal/", ns=service.NAMESPACE)]
        appeals.sort(key=lambda a: int(a["filed_at"]), reverse=True)
        waiting = [a for a in appeals if a["status"] == "filed"]
        decided = [a for a in appeals if a["status"] != "filed"][:30]
        board = service.board(node)
        by_version = sorted(board.rule_titles().items(), key=lambda kv: _version(kv[0][0]))
        clauses = {clause: title for (_, clause), title in by_version}  # the newest title wins
        regions = {a["region"]: board.region_name(a["region"]) for a in waiting + decided}
        signers = {filer(a) for a in waiting} | {a["decided_by"] for a in decided}
        people = {who: _someone(node, who) for who in signers}
        return kit.render(
            request, "credentials/healthcode_appeals.html",
            status=written.refusal.status if written and written.refusal else 200,
            written=written, what=what, waiting=waiting, decided=decided,
            files=person.kind == "hospital" and person.role in FILING_ROLES,
            decides=person.kind == "cdc" and person.role in DECIDING_ROLES,
            grounds=service.GROUNDS, reasons=service.REASONS, clauses=clauses,
            regions=regions, people=people, filer=filer,
        )  # fmt: skip

    @router.get("", response_class=HTMLResponse)
    async def appeals(request: Request) -> HTMLResponse:
        """Appeals waiting and decided; the caller's forms."""
        return page(request, None, "")

    @router.post("", response_class=HTMLResponse)
    async def file(request: Request) -> HTMLResponse:
        """File an appeal for a patient (a hospital's doctor or nurse)."""
        form = await request.form()
        kit.check_csrf(request, str(form.get("csrf", "")))
        args = {"pid": str(form.get("pid", "")).strip(), "grounds": str(form.get("grounds", ""))}
        written = await kit.write(request, service.NAMESPACE, "file_appeal", args)
        return page(request, written, "Appeal filed: the CDC decides it")

    @router.post("/{appeal_id}", response_class=HTMLResponse)
    async def decide(request: Request, appeal_id: str) -> HTMLResponse:
        """Decide an appeal (a CDC epidemiologist)."""
        form = await request.form()
        kit.check_csrf(request, str(form.get("csrf", "")))
        ruling = str(form.get("ruling", ""))
        reason = "rules-applied-correctly" if ruling == "upheld" else str(form.get("reason", ""))
        args: dict[str, Any] = {"appeal_id": appeal_id, "ruling": ruling, "reason": reason}
        written = await kit.write(request, service.NAMESPACE, "decide_appeal", args)
        return page(request, written, f"Appeal {ruling}")

    return router


def filer(appeal: dict[str, Any]) -> str:
    """Who filed ``appeal``: the filer's identity, or the filing organisation alone for an
    appeal filed before the contract recorded the identity."""
    return str(appeal.get("filer") or appeal["filed_by"])


def _someone(node: AppNode, who: str) -> str:
    """An identity (who filed or decided) or an organisation (who filed an older appeal)
    named as people read it: the organisation's name and the role where this node
    knows it."""
    org, _, name = who.partition("/")
    record = node.organisation(org)
    org_name = str(record.get("name") or org) if record else None
    return someone(who, role=node.role_of(who) if name else None, org_name=org_name)


def _version(text: str) -> list[int]:
    return [int(part) for part in text.split(".") if part.isdigit()]
