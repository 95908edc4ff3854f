"""The FastAPI application: REST + JSON under ``/api/v1``, SSE, OpenAPI and metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from healthledger.api import problems
from healthledger.api.body_limit import BodyLimit
from healthledger.api.docs import install_reference
from healthledger.api.events import BlockSignal, events_router
from healthledger.api.http_metrics import MeasuredRequests, http_metrics
from healthledger.api.openapi import install_truthful_openapi
from healthledger.api.problems import ApiError, problem
from healthledger.api.read_access import Access, MembersOnly, ReadGuard, access_of
from healthledger.api.routes_ledger import ledger_router
from healthledger.api.routes_network import network_router
from healthledger.api.routes_tx import demo_router, transactions_router
from healthledger.api.services import CUSTODY_NOTICE, LedgerReader
from healthledger.api.transactor import Transactor
from healthledger.api.verifier import Verifier
from healthledger.apps.registry import INSTALLED_APPS
from healthledger.node.consortium_peer import ConsortiumNode
from healthledger.node.parts import Node
from healthledger.node.seam import attach
from healthledger.node.workers import WorkerSupervisor

MAX_BODY_BYTES = 1024 * 1024
"""Request bodies above this are refused with 413 before they are read."""
ALWAYS_SERVED = ("/api/v1/status", "/api/v1/checkpoints", "/api/v1/problems", "/metrics")
"""Paths a consortium peer keeps serving after it stopped serving the ledger."""

DESCRIPTION = f"""
A permissioned consortium ledger for public health.

Every write is a transaction signed by a registered identity: build a proposal
`{{contract, function, args, creator, nonce, timestamp}}`, sign its canonical JSON
with the identity's Ed25519 key, then either `POST /api/v1/invoke` (the node
endorses, orders and waits) or `POST /api/v1/proposals/endorse` followed by
`POST /api/v1/transactions`.

Errors are RFC 9457 problem details (`application/problem+json`, the `Problem`
schema); each `type` is documented under `/api/v1/problems/`. An endorsement policy
that no available endorsers can satisfy is **422** (`endorsement-failed`); a contract
rule refusing the call in the current state is **409** (`rejected`).

**A refusal is never a bare 200.** A transaction that commits although its contract
refused some or all of what it asked, recording each refusal with its reason and an
alert as evidence (e.g. a pack dispensed twice), is answered **409**
`refused-recorded`: the problem carries `tx_id`, `receipt` (block, index, log index),
`refused` (each refused part with its `reason`) and `result`, and `Location` names
the receipt. 409 because the request conflicts with the ledger's state, as a
`rejected` call does, and it is a client error so that nothing that reads only the
status takes it for success; unlike `rejected`, the refusal is on the ledger, so
sending the request again changes nothing. A proof submitted to
`POST /api/v1/proofs/verify` that is malformed is 422 `proof-malformed`; one that is
well formed but does not verify is 422 `proof-invalid`; only a verified proof is 200.

{problems.__doc__}
"""


@dataclass(frozen=True)
class ApiServices:
    """The services behind the routes; the web console uses the same ones."""

    reader: LedgerReader
    transactor: Transactor
    verifier: Verifier
    signal: BlockSignal
    demo_custody: bool
    read_guard: ReadGuard
    """Who may read what (api.read_access); the console lets its sessions read."""
    consortium: ConsortiumNode | None = None
    """The consortium peer behind the API (checkpoints, serving guard), if it is one."""
    workers: WorkerSupervisor | None = None
    """The applications' background workers the server runs, if it runs them."""

    def worker_states(self) -> list[dict[str, Any]]:
        """Each background worker: what it does, whom it signs as, how it is doing."""
        if self.workers is None:
            return []
        return [
            {
                "name": state.worker.name,
                "description": state.worker.description,
                "acts_as": state.worker.acts_as,
                "running": state.running,
                "restarts": state.restarts,
                "last_error": state.last_error,
            }
            for state in self.workers.states()
        ]

    def refusal(self) -> str | None:
        """Why the ledger is not served now (a forked or tampered chain), or None."""
        return None if self.consortium is None else self.consortium.refusal()


def create_api(
    node: Node,
    *,
    demo_custody: bool = False,
    max_body_bytes: int = MAX_BODY_BYTES,
    workers: WorkerSupervisor | None = None,
) -> FastAPI:
    """The API app over ``node``; with ``demo_custody`` the server signs for demo identities;
    ``workers``: the applications' background workers the server runs (shown, not started)."""
    reader = LedgerReader(node.peer, custody="demo" if demo_custody else "client")
    services = ApiServices(
        reader=reader,
        transactor=Transactor(node, demo_custody=demo_custody),
        verifier=Verifier(node.peer),
        signal=BlockSignal(node.peer),
        demo_custody=demo_custody,
        read_guard=ReadGuard(identities=reader.identity),
        consortium=node if isinstance(node, ConsortiumNode) else None,
        workers=workers,
    )
    description = DESCRIPTION
    if demo_custody:
        description = f"**{CUSTODY_NOTICE}**\n\n" + description
    app = FastAPI(
        title="healthledger API",
        version="1",
        description=description,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(_serving_guard(services))],
    )
    app.add_middleware(MembersOnly, guard=services.read_guard)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(MeasuredRequests, metrics=http_metrics(node.peer.metrics.registry))
    app.state.services = services
    problems.install_problem_handlers(app)
    app.include_router(transactions_router(services.transactor))
    if demo_custody:
        app.include_router(demo_router(services.transactor))
    app.include_router(
        ledger_router(
            services.reader,
            services.verifier,
            consortium=None
            if services.consortium is None
            else services.consortium.consortium_status,
        )
    )
    app.include_router(events_router(node.peer, services.signal))
    app.include_router(network_router(node))

    @app.get("/api/v1/workers", tags=["node"], summary="The applications' background workers")
    def workers_status() -> list[dict[str, Any]]:
        """Each background worker this server runs for an application: its name, what it
        does, the identity it signs transactions as (null if it signs none), whether it
        is running, how often it was restarted and its last error."""
        return services.worker_states()

    for installed in INSTALLED_APPS:
        if installed.api_routes is not None:
            router = installed.api_routes(attach(node, installed))
            app.include_router(router, prefix=f"/api/v1/{installed.name}", tags=[installed.name])
        if installed.site_routes is not None:
            app.include_router(
                installed.site_routes(attach(node, installed)), tags=[installed.name]
            )

    install_reference(app)
    install_truthful_openapi(
        app,
        always_served=ALWAYS_SERVED,
        members_only=lambda method, path: access_of(method, path) is Access.MEMBERS,
    )
    registry = node.peer.metrics.registry

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {
                "description": "The Prometheus text format",
                "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
            }
        },
    )
    def metrics() -> Response:
        """The node's metrics in the Prometheus text format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _serving_guard(services: ApiServices) -> Callable[[Request], None]:
    """A dependency of every route: a consortium peer whose chain is forked (minority)
    or tampered answers 503 with the reason, except on status, metrics, the checkpoint
    view and the problem types."""

    def guard(request: Request) -> None:
        reason = services.refusal()
        if reason is None or request.url.path.startswith(ALWAYS_SERVED):
            return
        state = None if services.consortium is None else services.consortium.guard.state
        raise ApiError(problem("unavailable", reason, extensions={"checkpoint_state": str(state)}))

    return guard


def services_of(app: FastAPI) -> ApiServices:
    """The services of an app made by :func:`create_api`."""
    services = getattr(app.state, "services", None)
    if not isinstance(services, ApiServices):
        raise TypeError("this app was not made by create_api")
    return services
