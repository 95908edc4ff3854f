"""The web console: the API plus server-rendered pages (Jinja2), one app.

The pages reach the ledger only through the API's services (``api.app.services_of``):
the same reader, transactor and verifier the JSON routes use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from healthledger.api.app import create_api, services_of
from healthledger.api.fhir import fhir_router
from healthledger.api.problems import ApiError, install_problem_handlers, problem, problem_for
from healthledger.apps import Person, Refusal, Written
from healthledger.apps.readable import CONSORTIUM_ZONE
from healthledger.apps.registry import INSTALLED_APPS
from healthledger.node.parts import Node
from healthledger.node.seam import attach
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
    ) -> Response:
        """Log in as a demo identity whose key the server holds."""
        console.check_csrf(None, csrf)
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
        response = RedirectResponse(local_path(next_path), status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            console.sessions.issue(identity),
            max_age=console.sessions.max_age_s,
            httponly=True,
            samesite="strict",
            path="/",
        )
        return response

    @router.post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form()]) -> Response:
        """Forget the session."""
        viewer = console.viewer(request)
        console.check_csrf(viewer, csrf)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/")
        return response

    return router


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
            identity = self.person(request).identity
            signed, salted = transactor.demo_call(
                identity, contract, function, args, None if transient is None else dict(transient)
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
        transactor = self._console.services.transactor
        signed = transactor.demo_proposal(self.person(request).identity, contract, function, args)
        return await transactor.query(signed)


def create_console(
    node: Node,
    *,
    demo_custody: bool = True,
    workers: WorkerSupervisor | None = None,
    zone: dt.tzinfo = CONSORTIUM_ZONE,
) -> FastAPI:
    """The API app of ``node`` plus the console's pages; with ``demo_custody`` (the
    default for the demo) the server signs for the demo identity a user logs in as;
    ``workers``: the background workers the server runs, shown on the consortium page;
    ``zone``: the time zone the pages show times in."""
    app = create_api(node, demo_custody=demo_custody, workers=workers)
    console = Console(services_of(app), zone=zone)
    install_problem_handlers(app, html=console.render_problem)

    async def to_login(request: Request, exc: Exception) -> Response:
        target = exc.next_path if isinstance(exc, LoginRequired) else "/"
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)

    app.add_exception_handler(LoginRequired, to_login)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    app.include_router(_session_router(console))
    app.include_router(page_router(console))
    kit = ConsolePageKit(console)
    app.include_router(fhir_router(kit))
    for installed in INSTALLED_APPS:
        seam = attach(node, installed)
        console.install(installed, seam)
        if installed.pages is not None:
            app.include_router(installed.pages(seam, kit), prefix=f"/{installed.name}")
    return app
