"""What the console's pages share: the viewer, the templates, filters and the services."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from healthledger.api.app import ApiServices
from healthledger.api.problems import ApiError, Problem, problem
from healthledger.api.services import CUSTODY_NOTICE
from healthledger.appkit.readable import CONSORTIUM_ZONE, FILTERS, when
from healthledger.apps import App, HomePanel, Link, Person
from healthledger.apps.registry import INSTALLED_APPS
from healthledger.client.errors import IdentityError
from healthledger.contracts.errors import UnknownContract
from healthledger.errors import HealthledgerError
from healthledger.ledger.transaction import SignedProposal
from healthledger.node.seam import AppNode
from healthledger.node.staff import StaffStore
from healthledger.web.session import COOKIE_NAME, SessionSigner
from healthledger.web.staff_login import LoginThrottle, StaffSession, StaffSessions

WEB_DIR = Path(__file__).parent
LOG = logging.getLogger(__name__)
PLATFORM_PUBLIC = (
    Link("/verify", "Verify a proof", "Check a transaction id, receipt or inclusion proof."),
)
"""The platform's own public pages; each application adds its ``public_entries``."""


@dataclass(frozen=True)
class Viewer:
    """Who is logged in: a demo identity and what membership says of it."""

    id: str
    org: str
    org_name: str
    role: str
    status: str
    kind: str = ""

    def person(self) -> Person:
        """The viewer as applications see a person."""
        return Person(self.id, self.org, self.org_name, self.role, self.kind)


class LoginRequired(HealthledgerError):
    """The page needs a logged-in demo identity."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def short(text: object, keep: int = 12) -> str:
    """A long hash cut to its first characters."""
    value = str(text)
    return value if len(value) <= keep + 1 else value[:keep] + "…"


def pretty(value: Any) -> str:
    """Indented JSON for display."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def local_path(target: str | None) -> str:
    """``target`` if it is a path on this site, else ``/`` (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


class Console:
    """What every page needs: the services, the templates and the session signer."""

    def __init__(
        self,
        services: ApiServices,
        *,
        zone: dt.tzinfo = CONSORTIUM_ZONE,
        staff: StaffStore | None = None,
    ) -> None:
        self.services = services
        self.reader = services.reader
        self.demo_custody = services.demo_custody
        self.sessions = SessionSigner()
        self.staff = None if self.demo_custody else staff
        """Outside demo custody: the staff who log in with a password and their own key."""
        self.staff_sessions = StaffSessions(max_age_s=self.sessions.max_age_s)
        self.throttle = LoginThrottle()
        self.zone = zone
        self.apps: list[tuple[App, AppNode]] = []
        folders = [WEB_DIR / "templates"]
        folders += [a.templates for a in INSTALLED_APPS if a.templates is not None]
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folders),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters.update(short=short, pretty=pretty, **FILTERS)
        env.filters["when"] = functools.partial(when, zone=zone)
        env.filters["ms"] = functools.partial(when, zone=zone, seconds=True)
        self.public_entries: tuple[Link, ...] = (
            *PLATFORM_PUBLIC,
            *(entry for a in INSTALLED_APPS for entry in a.public_entries),
        )
        env.globals.update(
            checkpoint_alarm=self.checkpoint_alarm,
            custody_notice=CUSTODY_NOTICE,
            demo_custody=self.demo_custody,
            staff_login=self.staff is not None,
            app_nav=[(f"/{a.name}", a.title) for a in INSTALLED_APPS if a.pages is not None],
            public_entries=self.public_entries,
            zone_key=getattr(zone, "key", "UTC"),
            zone_suffix=lambda: when(int(time.time() * 1000), zone).split(" ", 2)[2],
        )
        for installed in INSTALLED_APPS:
            env.globals.update(installed.template_globals)
        self.templates = Jinja2Templates(env=env)

    def install(self, app: App, node: AppNode) -> None:
        """Offer ``app``'s home panels (over its seam ``node``) on people's homes."""
        self.apps.append((app, node))

    def home_panels(self, viewer: Viewer) -> list[HomePanel]:
        """Every installed application's panels for ``viewer``, in their order; a panel
        that cannot be drawn says so instead of hiding the rest of the home."""
        person = viewer.person()
        panels: list[HomePanel] = []
        for app, node in self.apps:
            if app.home_panels is None:
                continue
            try:
                panels.extend(app.home_panels(node, person))
            except UnknownContract:
                continue  # the application is not deployed on this chain: no work here
            except HealthledgerError as exc:
                LOG.warning("home panels of %s for %s: %s", app.name, viewer.id, exc)
                panels.append(HomePanel(app.title, summary=f"This panel could not be drawn: {exc}"))
        if viewer.kind == "regulator":
            panels.append(self.integrity_panel())
        if viewer.role == "admin":
            panels.append(
                HomePanel(
                    "Your organisation's identities",
                    summary="Who may sign for your organisation; revoke one that has left.",
                    actions=(Link("/consortium", "Consortium and identities"),),
                    order=90,
                )
            )
        return sorted(panels, key=lambda panel: (panel.order, panel.title))

    def places(self, viewer: Viewer | None) -> list[Link]:
        """Where ``viewer`` may go: its home and its panels' pages, then the public pages."""
        places = [Link("/", "Your home", "What you have to do today.")] if viewer else []
        if viewer is not None:
            for panel in self.home_panels(viewer):
                places.extend(a for a in panel.actions if a.href not in {p.href for p in places})
        return places + list(self.public_entries)

    def integrity_panel(self) -> HomePanel:
        """A regulator's first question each day: does every peer hold the same,
        unaltered ledger? From this node's checkpoint comparison with the other peers
        (a consortium peer) or its own chain (a single node)."""
        status = self.reader.status()
        head = f"height {status['height']}, head {short(status['head_hash'])}"
        node = self.services.consortium
        if node is None:
            summary = (
                f"This node's chain: {head}. It is a single node: there are no other "
                "peers' checkpoints to compare; audit the whole chain offline with "
                "healthledger verify."
            )
        else:
            alarm = self.checkpoint_alarm()
            others = [p for p in node.guard.to_json()["peers"] if not p["self"]]
            agree = sum(1 for p in others if p["agrees"] is True)
            waiting = sum(1 for p in others if p["agrees"] is None)
            summary = (
                f"Alarm: {alarm}."
                if alarm is not None
                else f"This node's chain: {head}. {agree} of {len(others)} other peers' "
                f"latest checkpoints agree with it; {waiting} have not shared one at a "
                "common height yet."
            )
        return HomePanel(
            "Integrity of the ledger",
            summary=summary,
            actions=(
                Link("/consortium", "Peers, identities and workers"),
                Link("/explorer", "Blocks and transactions"),
                Link("/verify", "Verify a proof or receipt"),
            ),
            order=5,
        )

    def checkpoint_alarm(self) -> str | None:
        """The console's alarm banner: why a consortium peer stopped serving, or which
        checkpoints disagree; None while every checkpoint agrees."""
        node = self.services.consortium
        if node is None:
            return None
        refusal = node.refusal()
        if refusal is not None:
            return refusal
        view = node.guard.to_json()
        if not view["divergences"]:
            return None
        latest = view["divergences"][-1]
        others = ", ".join(f"{org} {h[:12]}" for org, h in latest["views"].items())
        return (
            f"checkpoint alarm: the peers' checkpoints disagree at height {latest['height']} "
            f"({others}); see the operator guide"
        )

    def staff_session(self, request: Request) -> StaffSession | None:
        """The staff session of the request's cookie (outside demo custody), if open."""
        if self.staff is None:
            return None
        return self.staff_sessions.get(self.sessions.read(request.cookies.get(COOKIE_NAME)))

    def _staff_viewer(self, request: Request) -> Viewer | None:
        session = self.staff_session(request)
        if session is None:
            return None
        cert = session.identity.certificate
        record = self.reader.identity(session.identity.id) or {}
        organisation = next((o for o in self.reader.organisations() if o["id"] == cert.org), {})
        return Viewer(
            session.identity.id,
            cert.org,
            str(organisation.get("name", cert.org)),
            cert.role,
            str(record.get("status", "unregistered")),
            str(organisation.get("kind", "")),
        )

    def propose(
        self,
        request: Request,
        contract: str,
        function: str,
        args: dict[str, Any],
        transient: dict[str, Any] | None = None,
    ) -> tuple[SignedProposal, dict[str, Any] | None]:
        """A proposal signed as the logged-in person: with the key their staff session
        unlocked, or in demo custody with the demo key the server holds; ``transient``
        salted and bound by its hash."""
        session = self.staff_session(request)
        if session is not None:
            try:
                session.identity.check_validity()
                call = session.identity.propose(contract, function, args, transient=transient)
            except IdentityError as exc:
                raise ApiError(problem("invalid-arguments", str(exc))) from exc
            return call.signed, call.transient
        viewer = self.viewer(request)
        if viewer is None:
            raise ApiError(problem("access-denied", "log in to sign"))
        return self.services.transactor.demo_call(viewer.id, contract, function, args, transient)

    def viewer(self, request: Request) -> Viewer | None:
        """The logged-in identity, if its session is genuine and its key is held (in
        demo custody) or unlocked (a staff session)."""
        if not self.demo_custody:
            return self._staff_viewer(request)
        identity = self.sessions.read(request.cookies.get(COOKIE_NAME))
        if identity is None:
            return None
        held = {d.id: d for d in self.services.transactor.demo_identities()}
        demo = held.get(identity)
        if demo is None:
            return None
        record = self.reader.identity(identity) or {}
        organisation = next((o for o in self.reader.organisations() if o["id"] == demo.org), {})
        return Viewer(
            demo.id,
            demo.org,
            str(organisation.get("name", demo.org)),
            demo.role,
            str(record.get("status", "unregistered")),
            str(organisation.get("kind", "")),
        )

    def require_viewer(self, request: Request) -> Viewer | None:
        """The viewer; with demo custody or staff logins, a login is required."""
        viewer = self.viewer(request)
        if viewer is None and (self.demo_custody or self.staff is not None):
            query = f"?{request.url.query}" if request.url.query else ""
            raise LoginRequired(request.url.path + query)
        return viewer

    def render(
        self,
        request: Request,
        template: str,
        viewer: Viewer | None,
        *,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """A page, with the viewer and a CSRF token for its forms."""
        return self.templates.TemplateResponse(
            request,
            template,
            {
                "viewer": viewer,
                "csrf": self.sessions.csrf_token(viewer.id if viewer else None),
                "path": request.url.path,
                **context,
            },
            status_code=status,
        )

    def render_problem(self, request: Request, found: Problem) -> HTMLResponse:
        """An error page for a problem met while rendering a page; a refusal (403, 404)
        lists where the viewer may go instead."""
        viewer = self.viewer(request)
        places: Sequence[Link] = self.places(viewer) if found.status in (403, 404) else ()
        return self.render(
            request, "error.html", viewer, status=found.status, problem=found, places=places
        )

    def check_csrf(self, viewer: Viewer | None, token: str) -> None:
        """Refuse a form post whose CSRF token does not match the session."""
        if not self.sessions.check_csrf(viewer.id if viewer else None, token):
            raise ApiError(problem("access-denied", "the form has expired; reload the page"))

    def login_choices(self) -> list[tuple[str, list[Mapping[str, str]]]]:
        """Demo identities by organisation: (organisation name, identities)."""
        organisations = {o["id"]: o for o in self.reader.organisations()}
        statuses = {i["id"]: i.get("status", "") for i in self.reader.identities()}
        groups: dict[str, list[Mapping[str, str]]] = {}
        for demo in self.services.transactor.demo_identities():
            groups.setdefault(demo.org, []).append(
                {
                    "id": demo.id,
                    "name": demo.name,
                    "role": demo.role,
                    "status": str(statuses.get(demo.id, "unregistered")),
                }
            )
        return [
            (str(organisations.get(org, {}).get("name", org)), sorted(items, key=_role_order))
            for org, items in sorted(groups.items())
        ]


def _role_order(item: Mapping[str, str]) -> tuple[int, str]:
    order = {"admin": 0, "peer": 2}
    return order.get(item["role"], 1), item["name"]
