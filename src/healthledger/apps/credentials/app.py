"""The credentials application as the platform mounts it.

``CONTRACTS``, ``ROUTERS`` and ``PAGE_ROUTERS`` are the lists a part of the application
(the health code, the wallet) joins with one line each: every router is mounted under
``/api/v1/credentials`` (API) or ``/credentials`` (console)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import APIRouter

from healthledger.apps import App
from healthledger.apps.credentials.contract import Credentials
from healthledger.apps.credentials.provision import enrol_issuers
from healthledger.apps.credentials.routes import build_router, build_site_routes
from healthledger.apps.credentials.simulate import live_step, simulate
from healthledger.contracts.contract import Contract
from healthledger.node.seam import AppNode

CONTRACTS: tuple[type[Contract], ...] = (Credentials,)
ROUTERS: tuple[Callable[[AppNode], APIRouter], ...] = (build_router,)


def prepare_network(node: AppNode, orgs: Sequence[str]) -> None:
    """Over a consortium network: the issuers among ``orgs`` onto the trust list."""
    enrol_issuers(node, list(orgs))


def api_routes(node: AppNode) -> APIRouter:
    """Every router of ``ROUTERS``, mounted together."""
    router = APIRouter()
    for build in ROUTERS:
        router.include_router(build(node))
    return router


APP = App(
    name="credentials",
    title="Health credentials",
    contracts=CONTRACTS,
    api_routes=api_routes,
    site_routes=build_site_routes,
    simulate=simulate,
    live_step=live_step,
    simulator_kinds=("hospital",),
    prepare_network=prepare_network,
)
"""Vaccination, test and recovery certificates issued from recorded facts, an on-chain
trust list and status lists, offline verification (ARCHITECTURE.md section 6)."""
