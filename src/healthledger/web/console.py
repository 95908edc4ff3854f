"""The web console: the API plus server-rendered pages (Jinja2), one app.

The pages reach the ledger only through the API's services (``api.app.services_of``):
the same reader, transactor and verifier the JSON routes use.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from healthledger.api.app import create_api, services_of
from healthledger.api.fhir import fhir_router
from healthledger.api.problems import ApiError, install_problem_handlers, problem, problem_for
from healthledger.appkit.charts import SCRIPT_PATH, ChartScript
from healthledger.appkit.readable import CONSORTIUM_ZONE
from healthledger.apps import Person, Refusal, Written
from healthledger.apps.registry import INSTALLED_APPS
from healthledger.node.parts import Node
from healthledger.node.seam import attach
from healthledger.node.staff import StaffError, StaffStore, WrongPassword
from healthledger.node.workers import WorkerSupervisor
from healthledger.web.pages import REFUSALS, page_router
from healthledger.web.session import COOKIE_NAME
from healthledger.web.views import WEB_DIR, Console, LoginRequired, local_path


def _session_router(console: Console) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/login", response_class=HTMLResponse)
    def login_page(
        request: Request, next_path: Annotated[str, Query(alias="next")] = "/"
    ) -> HTMLResponse:
        """Choose a demo identity."""
        return console.render(
            request,
            "login.html",
            console.viewer(request),
            groups=console.login_choices(),
            next=local_path(next_path),
        )

    @router.post("/login")
    def login(
        request: Request,
        identity: Annotated[str, Form()],
        csrf: Annotated[str, Form()],
        next_path: Annotated[str, Form(alias="next")] = "/",
        password: Annotated[str | None, Form()] = None,
    ) -> Response:
        """Log in as a demo identity whose key the server holds, or (outside demo
        custody) as a staff member with their password, which unlocks their key."""
        console.check_csrf(None, csrf)
        if console.staff is not None:
            return _staff_login(console, request, identity, password or "", local_path(next_path))
        held = {d.id for d in console.services.transactor.demo_identities()}
        if identity not in held:
            return console.render(
                request,
                "login.html",
                None,
                status=403,
                groups=console.login_choices(),
                next=local_path(next_path),
                error=f"No demo key is held for {identity}.",
            )
        return _logged_in(console, console.sessions.issue(identity), local_path(next_path))

    @router.post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form()]) -> Response:
        """Forget the session."""
        viewer = console.viewer(request)
        console.check_csrf(viewer, csrf)
        console.staff_sessions.close(console.sessions.read(request.cookies.get(COOKIE_NAME)))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/")
        return response

    return router


def _chart_router(script: ChartScript) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(SCRIPT_PATH, response_class=Response)
    def chart_script() -> Response:
        """Vega, Vega-Lite and Vega-Embed, which draw every application's charts, bundled
        from the vl-convert wheel (the console needs no network)."""
        return Response(
            script.text(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    return router


def _logged_in(console: Console, cookie: str, next_path: str) -> Response:
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=console.sessions.max_age_s,
        httponly=True,
        samesite="strict",
        path="/",
    )
    return response


def _staff_login(
    console: Console, request: Request, identity: str, password: str, next_path: str
) -> Response:
    """Check the password (limited per identity and per client address), unlock the
    staff member's key for a new session, and refuse an identity the ledger does not
    hold as active with that certificate."""
    store = console.staff
    assert store is not None
    address = request.client.host if request.client is not None else "unknown"

    def refused(status: int, error: str) -> Response:
        return console.render(
            request, "login.html", None, status=status, groups=[], next=next_path, error=error
        )

    waiting = console.throttle.wait(identity, address)
    if waiting is not None:
        kind, seconds = waiting
        whom = "this identity" if kind == "identity" else "this address"
        minutes = max(1, math.ceil(seconds / 60))
        return refused(429, f"Too many failed logins for {whom}: try again in {minutes} minutes.")
    try:
        unlocked = store.unlock(identity, password)
    except WrongPassword:
        console.throttle.failed(identity, address)
        return refused(401, "Wrong identity or password.")
    except StaffError as exc:
        return refused(503, f"This login cannot be used now: {exc}")
    record = console.reader.identity(identity) or {}
    if record.get("fingerprint") != unlocked.certificate.fingerprint:
        return refused(403, f"{identity} is not registered on the ledger with this key.")
    if record.get("status") != "active":
        return refused(403, f"{identity} is {record.get('status')} on the ledger.")
    console.throttle.succeeded(identity)
    session_id = console.staff_sessions.open(unlocked)
    return _logged_in(console, console.sessions.issue(session_id), next_path)


def _active_viewer_id(console: Console, request: Request) -> str | None:
    """The identity a console session is logged in as, if active: it reads the API's
    members-only routes (the pages' own scripts and event streams) with the cookie."""
    viewer = console.viewer(request)
    return viewer.id if viewer is not None and viewer.status == "active" else None


class ConsolePageKit:
    """The console's layout, session and CSRF, lent to application pages (apps.PageKit)."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def identity(self, request: Request) -> str | None:
        """The logged-in demo identity, or None."""
        viewer = self._console.viewer(request)
        return None if viewer is None else viewer.id

    def require_identity(self, request: Request) -> str:
        """The logged-in identity, or a redirect to the login page."""
        viewer = self._console.viewer(request)
        if viewer is None:
            query = f"?{request.url.query}" if request.url.query else ""
            raise LoginRequired(request.url.path + query)
        return viewer.id

    def render(
        self, request: Request, template: str, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        """An application page inside the console's layout."""
        viewer = self._console.viewer(request)
        return self._console.render(request, template, viewer, status=status, **context)

    def check_csrf(self, request: Request, token: str) -> None:
        """Refuse a form whose CSRF token is not this session's."""
        self._console.check_csrf(self._console.viewer(request), token)

    def person(self, request: Request) -> Person:
        """The logged-in person, or a redirect to the login page."""
        viewer = self._console.viewer(request)
        if viewer is None:
            self.require_identity(request)
            raise ApiError(problem("access-denied", "log in as a demo identity"))
        return viewer.person()

    async def write(
        self,
        request: Request,
        contract: str,
        function: str,
        args: dict[str, Any],
        *,
        transient: Mapping[str, Any] | None = None,
    ) -> Written:
        """Sign as the logged-in identity and invoke through the API's transactor (the
        service behind ``POST /api/v1/demo/invoke``); a refusal is returned, not raised."""
        transactor = self._console.services.transactor
        try:
            self.person(request)
            signed, salted = self._console.propose(
                request, contract, function, args, None if transient is None else dict(transient)
            )
            receipt, result = await transactor.invoke(signed, timeout=30.0, transient=salted)
        except REFUSALS as exc:
            found = problem_for(exc)
            return Written(
                receipt=found.extensions.get("receipt"),
                refusal=Refusal(found.status, found.title, found.detail, found.errors),
            )
        return Written(receipt=receipt.to_json(), result=result)

    async def ask(
        self, request: Request, contract: str, function: str, args: dict[str, Any]
    ) -> Any:
        """A query as the logged-in identity, through the API's transactor."""
        self.person(request)
        signed, _ = self._console.propose(request, contract, function, args)
        return await self._console.services.transactor.query(signed)


def create_console(
    node: Node,
    *,
    demo_custody: bool = True,
    workers: WorkerSupervisor | None = None,
    zone: dt.tzinfo = CONSORTIUM_ZONE,
    staff: StaffStore | None = None,
) -> FastAPI:
    """The API app of ``node`` plus the console's pages; with ``demo_custody`` (the
    default for the demo) the server signs for the demo identity a user logs in as;
    ``workers``: the background workers the server runs, shown on the consortium page;
    ``zone``: the time zone the pages show times in; ``staff``: outside demo custody,
    the staff who log in with a password and sign with their own key."""
    app = create_api(node, demo_custody=demo_custody, workers=workers)
    console = Console(services_of(app), zone=zone, staff=staff)
    services_of(app).read_guard.accept_sessions(lambda request: _active_viewer_id(console, request))
    install_problem_handlers(app, html=console.render_problem)

    async def to_login(request: Request, exc: Exception) -> Response:
        target = exc.next_path if isinstance(exc, LoginRequired) else "/"
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)

    app.add_exception_handler(LoginRequired, to_login)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    app.include_router(_session_router(console))
    app.include_router(page_router(console))
    app.include_router(_chart_router(ChartScript(node.data_dir / "web")))
    kit = ConsolePageKit(console)
    app.include_router(fhir_router(kit))
    for installed in INSTALLED_APPS:
        seam = attach(node, installed)
        console.install(installed, seam)
        if installed.pages is not None:
            app.include_router(installed.pages(seam, kit), prefix=f"/{installed.name}")
    return app
