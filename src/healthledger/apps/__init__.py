"""What an application gives the platform (ARCHITECTURE.md section 6).

Each application package under ``apps/`` exposes one :class:`App`: its contracts
(deployed in the genesis of a new consortium), a simulator of realistic demo
traffic, its API routes (mounted under ``/api/v1/<name>``), its console pages
(mounted under ``/<name>``), its background workers and its CLI commands
(``healthledger <name> ...``). Every hook receives the application seam
(:class:`~healthledger.node.seam.AppNode`) and nothing else of the node.
The API, web and CLI layers mount what ``apps.registry.INSTALLED_APPS`` lists; an
app never imports another app's internals (it uses contract calls and events).
"""

from __future__ import annotations

import json
import platform
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import typer
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from healthledger.contracts.contract import Contract
from healthledger.node.seam import AppNode, Worker


@dataclass(frozen=True)
class Person:
    """Who a console page is for: a logged-in identity, its role and its organisation's
    kind (as membership records them)."""

    identity: str
    org: str
    org_name: str
    role: str
    kind: str


@dataclass(frozen=True)
class Link:
    """A place in the console: where it is, what it is called, one line on what it is for."""

    href: str
    label: str
    description: str = ""


@dataclass(frozen=True)
class HomePanel:
    """One piece of a person's home ("what I must do today"), contributed by an
    application. ``template`` (from the application's template folder) is drawn inside
    the panel with ``panel`` and the page's usual context; without one, the panel shows
    its ``summary`` and ``actions``."""

    title: str
    summary: str = ""
    actions: Sequence[Link] = ()
    """Where this person goes for the work the panel names: also offered on a 403 page."""
    template: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    order: int = 50
    """Panels are shown in this order (smaller first), then by title."""


@dataclass(frozen=True)
class Refusal:
    """Why a write was refused, in the contract's words: a title, the reason, and the
    fields it names (``[{"field": ..., "message": ...}]``)."""

    status: int
    title: str
    detail: str
    errors: Sequence[Mapping[str, str]] = ()

    def field_errors(self) -> dict[str, str]:
        """Messages by form field (the last part of each named field)."""
        out: dict[str, str] = {}
        for error in self.errors:
            name = str(error.get("field", "")).rsplit(".", 1)[-1]
            out[name] = str(error.get("message", ""))
        return out


@dataclass(frozen=True)
class Written:
    """What became of a write made from a form: its receipt (``tx_id``, ``height``, ...)
    and the function's result, or the refusal."""

    receipt: Mapping[str, Any] | None = None
    result: Any = None
    refusal: Refusal | None = None

    @property
    def ok(self) -> bool:
        """The write committed and nothing in it was refused."""
        return self.refusal is None and self.receipt is not None


HomePanels = Callable[[AppNode, Person], Sequence[HomePanel]]
"""An application's panels for ``person``'s home (none if it has no work for them);
quick reads only, never a write."""


class PageKit(Protocol):
    """What the console lends an application's pages: its layout, session, CSRF and the
    API's own write service."""

    def identity(self, request: Request) -> str | None:
        """The logged-in demo identity (``org/name``), or None."""
        ...

    def require_identity(self, request: Request) -> str:
        """The logged-in identity; redirects to the login page if there is none."""
        ...

    def render(
        self, request: Request, template: str, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        """Render ``template`` (from the app's template folder, which may extend
        ``base.html``) inside the console's layout."""
        ...

    def check_csrf(self, request: Request, token: str) -> None:
        """Refuse a form post whose CSRF token is not this session's."""
        ...

    def person(self, request: Request) -> Person:
        """The logged-in person (redirects to the login page if there is none)."""
        ...

    async def write(
        self,
        request: Request,
        contract: str,
        function: str,
        args: dict[str, Any],
        *,
        transient: Mapping[str, Any] | None = None,
    ) -> Written:
        """Sign ``function`` as the logged-in identity and send it through the same
        service as ``POST /api/v1/demo/invoke``: endorse, order, await the commit. A
        refusal (by the framework, the contract or the ledger) comes back as
        ``Written.refusal``, never raised."""
        ...

    async def ask(
        self, request: Request, contract: str, function: str, args: dict[str, Any]
    ) -> Any:
        """Run a query as the logged-in identity, through the API's query service."""
        ...


Simulate = Callable[[AppNode, random.Random], Mapping[str, int]]
"""Run demo traffic; return counts to report (e.g. ``{"events": 120}``)."""

LiveStep = Callable[[AppNode, random.Random], Mapping[str, int]]
"""One small round of live demo traffic, run again and again while the console is
served (after ``simulate``); returns counts like ``Simulate``. It must be quick (a
few transactions), keep to the state its own earlier rounds left, and raise only
for a real fault: the demo reports the error in one line and carries on."""

PrepareNetwork = Callable[[AppNode, Sequence[str]], None]
"""Set up what the simulator needs over a consortium network of these organisations
(``healthledger network traffic``), before ``simulate`` runs there; idempotent."""


@dataclass(frozen=True)
class App:
    """One application's contribution to the platform."""

    name: str
    """Short lowercase name: URL prefix and CLI group (e.g. ``supply``)."""
    title: str
    """Human title, shown in the console's navigation."""
    contracts: Sequence[type[Contract]]
    simulate: Simulate | None = None
    live_step: LiveStep | None = None
    api_routes: Callable[[AppNode], APIRouter] | None = None
    pages: Callable[[AppNode, PageKit], APIRouter] | None = None
    templates: Path | None = None
    """Folder of the app's Jinja2 templates (names should start with ``<name>/``)."""
    public_pages: Sequence[str] = field(default_factory=tuple)
    """Paths of the app's pages that need no login (e.g. a public verify page)."""
    cli: Callable[[], typer.Typer] | None = None
    simulator_orgs: Sequence[str] = ()
    """Organisations the simulator acts as: over a network without one of them it is
    skipped."""
    simulator_kinds: Sequence[str] = ()
    """Kinds of organisation (e.g. ``hospital``) the simulator needs one of each of."""
    prepare_network: PrepareNetwork | None = None
    workers: Callable[[AppNode], Sequence[Worker]] | None = None
    """The background workers the node runs for the application (started with the
    server, restarted if they fail, stopped with it); a worker that signs names the
    identity it acts as."""
    home_panels: HomePanels | None = None
    """What the application puts on a person's home page (the console's landing page)."""
    public_entries: Sequence[Link] = ()
    """Public pages (no login) offered on the logged-out home and the login page."""
    site_routes: Callable[[AppNode], APIRouter] | None = None
    """Public routes a standard fixes at the site's root (``/.well-known/...``), mounted
    without a prefix; everything else belongs under ``api_routes``."""
    template_globals: Mapping[str, Any] = field(default_factory=dict)
    """Values every template of the console can read, macros included (a code-to-name
    table the pages share with the application's Python); prefix names with ``<name>_``."""

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The state namespaces the application reads: its contracts' names."""
        return tuple(contract.name for contract in self.contracts)


def bench_status(json_output: bool) -> Callable[[str], None]:
    """Where an application benchmark reports progress: stderr, silent with ``--json``."""

    def say(message: str) -> None:
        if not json_output:
            typer.echo(message, err=True)

    return say


def print_figures(figures: Mapping[str, Any], *, json_output: bool) -> None:
    """Print benchmark figures with the machine they ran on: one JSON line with ``--json``
    (so the last line parses), else one aligned line per figure."""
    shown = {**figures, "machine": f"{platform.machine()} {platform.processor() or ''}".strip()}
    if json_output:
        typer.echo(json.dumps(shown))
        return
    width = max(len(name) for name in shown)
    for name, value in shown.items():
        typer.echo(f"{name:>{width}}  {value}")
