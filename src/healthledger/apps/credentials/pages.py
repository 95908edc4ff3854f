"""Console pages of the credentials application (mounted at ``/credentials``): a
hospital's "issue a certificate" form from a recorded vaccination or test result (with
the three QR codes it yields), its issued credentials with revocation, and the public
verifier page, which verifies in the browser and keeps working offline (a service
worker caches the page, its script, the trust list and the status document)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from healthledger.apps import HomePanel, Link, PageKit, Person, Refusal, Written
from healthledger.apps.credentials.facts import COVID, VACCINES, check_holder, iso_day
from healthledger.apps.credentials.qr import qr_code
from healthledger.apps.credentials.service import CONTRACT, CredentialService
from healthledger.apps.credentials.wallet import OFFER_TTL_S, make_offer
from healthledger.contracts.errors import AccessDenied, ContractError
from healthledger.node.seam import AppNode, NodeError

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
PUBLIC_PAGES = (
    "/credentials/",
    "/credentials/verify",
    "/credentials/verifier.js",
    "/credentials/sw.js",
)
ISSUING_ROLES = ("doctor", "nurse", "lab")
FORMAT_NAMES = {"dcc": "EU Digital COVID Certificate", "shc": "SMART Health Card",
                "sd-jwt-vc": "SD-JWT verifiable credential"}  # fmt: skip
STATUS_REASONS = ("issued to the wrong person", "the record was corrected", "holder's request")


def _require_issuer(person: Person) -> None:
    if person.kind not in ("hospital", "lab", "cdc") or person.role not in ISSUING_ROLES:
        raise AccessDenied(
            "Issuing health certificates is for a doctor, nurse or lab of an issuing "
            f"organisation; you are a {person.role} of {person.org_name}"
        )


def _refusal(exc: Exception) -> Written:
    errors = tuple(getattr(exc, "errors", ()) or ())
    return Written(refusal=Refusal(422, "The certificate was not issued", str(exc), errors))


def _fact_label(kind: str, fact: dict[str, Any]) -> str:
    if kind == "vaccination":
        vaccine = VACCINES.get(str(fact["vaccine"]))
        product = vaccine.product if vaccine else f"CVX {fact['vaccine']}"
        return f"Dose {fact['dose_number']} of {product}, given {iso_day(int(fact['day']))}"
    return f"{fact['result'].capitalize()} test, sample taken {iso_day(int(fact['specimen_day']))}"


def _offer(request: Request, token: str, label: str) -> dict[str, Any]:
    """A claim offer as the issuing page shows it: the wallet link and its QR code."""
    link = f"{str(request.base_url).rstrip('/')}/credentials/wallet#claim={token}"
    code = qr_code(link)
    return {"link": link, "label": label, "minutes": OFFER_TTL_S // 60,
            "svg": code.svg_data_uri(scale=4, border=4)}  # fmt: skip


def build_pages(node: AppNode, kit: PageKit) -> APIRouter:
    """The credentials console pages over ``node``."""
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
    service = node.shared("service", lambda: CredentialService(node))

    async def facts(request: Request) -> list[tuple[str, str]]:
        """(``kind:id``, label) of the organisation's certifiable records (COVID-19 doses,
        tests and confirmed cases), newest first."""
        found: list[tuple[int, str, str]] = []
        org = kit.person(request).org
        for kind, arg, id_field, day in (("vaccination", "vaccination", "vaccination_id", "day"),
                                         ("lab", "lab", "lab_id", "specimen_day")):  # fmt: skip
            listed = await kit.ask(request, "epidemic", "list_observations",
                                   {"kind": arg, "limit": 500, "count": False})  # fmt: skip
            for fact in listed["observations"]:
                certifiable = kind == "lab" or str(fact.get("vaccine")) in VACCINES
                if fact.get("disease") == COVID and fact.get("reporter_org") == org and certifiable:
                    found.append(
                        (int(fact[day]), f"{kind}:{fact[id_field]}", _fact_label(kind, fact))
                    )
        try:
            cases = await kit.ask(request, "epidemic", "list_cases",
                                  {"status": "confirmed", "limit": 500})  # fmt: skip
        except ContractError:
            cases = []  # a role that sees no case (a nurse): doses and tests only
        for case in cases:
            if case.get("disease") == COVID and case.get("reporter_org") == org:
                label = f"Recovery: confirmed case diagnosed {iso_day(int(case['diagnosis']))}"
                found.append((int(case["diagnosis"]), f"case:{case['case_id']}", label))
        found.sort(reverse=True)
        return [(value, label) for _, value, label in found[:100]]

    async def show_issue(request: Request, **context: Any) -> HTMLResponse:
        written = context.get("written")
        errors = written.refusal.field_errors() if written and written.refusal else {}
        status = written.refusal.status if written and written.refusal else 200
        return kit.render(request, "credentials/issue.html", status=status, errors=errors,
                          facts=await facts(request), format_names=FORMAT_NAMES,
                          **{"values": {}, "written": None, "codes": [], "offer": None,
                             **context})  # fmt: skip

    @router.get("/issue")
    async def issue_form(request: Request, source: str = "") -> HTMLResponse:
        """Choose a recorded vaccination or test, confirm the holder, choose formats."""
        _require_issuer(kit.person(request))
        return await show_issue(request, values={"source": source})

    @router.post("/issue")
    async def issue(request: Request) -> HTMLResponse:
        """Sign the credential with the organisation's document signer, record its
        commitment on chain, and show its QR codes."""
        person = kit.person(request)
        _require_issuer(person)
        form = await request.form()
        kit.check_csrf(request, str(form.get("csrf", "")))
        values = {k: str(form.get(k, "")).strip()
                  for k in ("source", "family_name", "given_name", "birth_date")}  # fmt: skip
        formats = [f for f in FORMAT_NAMES if form.get(f"format-{f}")]
        kind, _, source_id = values["source"].partition(":")
        try:
            holder = check_holder(values["family_name"], values["given_name"],
                                  values["birth_date"])  # fmt: skip
            if kind not in ("vaccination", "lab", "case") or not formats:
                raise ContractError("choose a recorded vaccination, test or case and a format")
            fact = service.fact(person.identity, kind, source_id)
            if form.get("delivery") == "wallet":
                token = make_offer(node, person.identity, kind, source_id, holder, formats)
                what = _fact_label(kind, fact) if kind != "case" else "Recovery certificate"
                label = f"{what}, for {holder.given_name} {holder.family_name}"
                return await show_issue(request, offer=_offer(request, token, label))
            prepared = service.prepare(person.identity, kind, fact, holder, formats=formats,
                                       source_id=source_id)  # fmt: skip
        except (ContractError, NodeError) as exc:
            return await show_issue(request, written=_refusal(exc), values=values)
        call = prepared.call
        written = await kit.write(request, CONTRACT, "issue", call.args, transient=call.transient)
        codes = []
        if written.ok:
            for fmt, text in prepared.texts.items():
                code = qr_code(text)
                codes.append({"format": fmt, "name": FORMAT_NAMES[fmt], "text": text,
                              "version": code.version,
                              "svg": code.svg_data_uri(scale=3, border=4)})  # fmt: skip
        return await show_issue(request, written=written, codes=codes,
                                values={} if written.ok else values,
                                credential=written.result if written.ok else None)  # fmt: skip

    @router.get("/issued")
    def issued(request: Request) -> HTMLResponse:
        """The organisation's credentials (no personal data: that stays in its vault)."""
        person = kit.person(request)
        _require_issuer(person)
        return kit.render(request, "credentials/issued.html", written=None,
                          credentials=service.credentials_of(person.org),
                          reasons=STATUS_REASONS)  # fmt: skip

    @router.post("/issued/{credential_id}/status")
    async def set_status(request: Request, credential_id: str) -> HTMLResponse:
        """Revoke or suspend (or reinstate) one of the organisation's credentials."""
        person = kit.person(request)
        _require_issuer(person)
        form = await request.form()
        kit.check_csrf(request, str(form.get("csrf", "")))
        args = {"credential_id": credential_id, "status": str(form.get("status", "")),
                "reason": str(form.get("reason", ""))}  # fmt: skip
        written = await kit.write(request, CONTRACT, "set_status", args)
        return kit.render(request, "credentials/issued.html", written=written,
                          status=written.refusal.status if written.refusal else 200,
                          credentials=service.credentials_of(person.org),
                          reasons=STATUS_REASONS)  # fmt: skip

    @router.get("/")
    def index(request: Request) -> HTMLResponse:
        """The trust list as the ledger holds it (public), and where to go."""
        person = kit.identity(request)
        signers = sorted((v for _, v in node.range("signer/")), key=lambda v: -int(v["added_at"]))
        names = {v["org"]: v.get("name", v["org"]) for _, v in node.range("issuer/")}
        pending = [v for _, v in node.range("trust-change/") if v["status"] == "pending"]
        return kit.render(request, "credentials/index.html", signers=signers, names=names,
                          pending=pending, needed=len(node.organisations()) // 2 + 1,
                          logged_in=person is not None)  # fmt: skip

    @router.get("/verify")
    def verify(request: Request) -> HTMLResponse:
        """The public verifier: camera, photo or pasted text; verified in the page."""
        return kit.render(request, "credentials/verify.html")

    @router.get("/verifier.js")
    def verifier_js() -> Response:
        """The verifier's script (public)."""
        return Response((STATIC / "verifier.js").read_bytes(), media_type="text/javascript")

    @router.get("/sw.js")
    def service_worker() -> Response:
        """The verifier page's service worker (public)."""
        return Response((STATIC / "sw.js").read_bytes(), media_type="text/javascript",
                        headers={"Service-Worker-Allowed": "/credentials/"})  # fmt: skip

    return router


def home_panels(node: AppNode, person: Person) -> Sequence[HomePanel]:
    """A hospital's doctors, nurses and labs issue certificates from their records."""
    if person.kind not in ("hospital", "lab", "cdc") or person.role not in ISSUING_ROLES:
        return ()
    return (
        HomePanel(
            "Health certificates",
            summary="Issue a vaccination or test certificate from a record of your hospital: "
            "an EU DCC, a SMART Health Card and an SD-JWT credential, each one QR code.",
            actions=(
                Link("/credentials/issue", "Issue a certificate", "from a recorded dose or test"),
                Link("/credentials/issued", "Certificates issued", "and revoke one"),
                Link("/credentials/verify", "Verify a certificate", "offline too"),
            ),
            order=40,
        ),
    )
