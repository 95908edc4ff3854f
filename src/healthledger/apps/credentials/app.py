"""The credentials application as the platform mounts it.

``CONTRACTS``, ``ROUTERS``, ``PAGE_ROUTERS``, ``PUBLIC`` and ``ENTRIES`` are the lists a
part of the application (the certificates, the health code, the wallet) joins with one
line each: every router is mounted under ``/api/v1/credentials`` (API) or
``/credentials`` (console); templates live in one folder, ``templates/credentials``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import APIRouter

from healthledger.apps import App, HomePanel, Link, PageKit, Person
from healthledger.apps.credentials.contract import Credentials
from healthledger.apps.credentials.coverage_pages import coverage_pages, coverage_panels
from healthledger.apps.credentials.coverage_routes import coverage_router
from healthledger.apps.credentials.doses_due import PUBLIC_PAGES as DOSES_DUE_PUBLIC
from healthledger.apps.credentials.doses_due import doses_due_pages, doses_due_router
from healthledger.apps.credentials.healthcode_appeals import healthcode_appeal_pages
from healthledger.apps.credentials.healthcode_contract import HealthCode
from healthledger.apps.credentials.healthcode_pages import PUBLIC_PAGES as HEALTHCODE_PUBLIC
from healthledger.apps.credentials.healthcode_pages import healthcode_pages
from healthledger.apps.credentials.healthcode_routes import healthcode_router
from healthledger.apps.credentials.healthcode_simulate import joined
from healthledger.apps.credentials.healthcode_simulate import live_step as healthcode_live_step
from healthledger.apps.credentials.healthcode_simulate import simulate as healthcode_simulate
from healthledger.apps.credentials.pages import PUBLIC_PAGES, TEMPLATES, build_pages
from healthledger.apps.credentials.pages import home_panels as certificate_panels
from healthledger.apps.credentials.provision import enrol_issuers
from healthledger.apps.credentials.routes import build_router, build_site_routes
from healthledger.apps.credentials.simulate import live_step, simulate
from healthledger.apps.credentials.wallet import WALLET_PAGES, wallet_pages, wallet_router
from healthledger.contracts.contract import Contract
from healthledger.node.seam import AppNode

CONTRACTS: tuple[type[Contract], ...] = (Credentials, HealthCode)
ROUTERS: tuple[Callable[[AppNode], APIRouter], ...] = (
    build_router,
    healthcode_router,
    wallet_router,
    coverage_router,
    doses_due_router,
)
PAGE_ROUTERS: tuple[Callable[[AppNode, PageKit], APIRouter], ...] = (
    build_pages,
    healthcode_pages,
    healthcode_appeal_pages,
    wallet_pages,
    coverage_pages,
    doses_due_pages,
)
PUBLIC: tuple[str, ...] = (*PUBLIC_PAGES, *HEALTHCODE_PUBLIC, *WALLET_PAGES, *DOSES_DUE_PUBLIC)
ENTRIES: tuple[Link, ...] = (
    Link(
        "/credentials/wallet",
        "Your health wallet",
        "Keep your certificates on your phone and show only what a checkpoint needs.",
    ),
    Link(
        "/credentials/verify",
        "Verify a health certificate",
        "A vaccination or test certificate's QR code, checked against the ledger, offline too.",
    ),
    Link(
        "/credentials/healthcode",
        "Health-code colour changes",
        "Every change of a health code by rule, district and day, with appeals.",
    ),
)


def prepare_network(node: AppNode, orgs: Sequence[str]) -> None:
    """Over a consortium network: the issuers among ``orgs`` onto the trust list."""
    enrol_issuers(node, list(orgs))


def home_panels(node: AppNode, person: Person) -> Sequence[HomePanel]:
    """The panels of every part of the application for ``person``."""
    return (*certificate_panels(node, person), *coverage_panels(node, person))


def api_routes(node: AppNode) -> APIRouter:
    """Every router of ``ROUTERS``, mounted together."""
    router = APIRouter()
    for build in ROUTERS:
        router.include_router(build(node))
    return router


def pages(node: AppNode, kit: PageKit) -> APIRouter:
    """Every router of ``PAGE_ROUTERS``, mounted together under ``/credentials``."""
    router = APIRouter()
    for build in PAGE_ROUTERS:
        router.include_router(build(node, kit))
    return router


APP = App(
    name="credentials",
    title="Health credentials",
    contracts=CONTRACTS,
    api_routes=api_routes,
    site_routes=build_site_routes,
    pages=pages,
    templates=TEMPLATES,
    public_pages=PUBLIC,
    public_entries=ENTRIES,
    home_panels=home_panels,
    simulate=joined(simulate, healthcode_simulate),
    live_step=joined(live_step, healthcode_live_step),
    simulator_kinds=("hospital",),
    prepare_network=prepare_network,
)
"""Vaccination, test and recovery certificates issued from recorded facts, an on-chain
trust list and status lists, offline verification, the health code (ARCHITECTURE.md
section 6)."""
