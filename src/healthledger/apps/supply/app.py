"""The supply application's entry in the platform registry."""

from __future__ import annotations

from healthledger.appkit.readable import says_org
from healthledger.apps import App, Link
from healthledger.apps.supply.cli import build_cli
from healthledger.apps.supply.contract import SupplyContract
from healthledger.apps.supply.dashboards import OP_NAMES
from healthledger.apps.supply.homes import home_panels
from healthledger.apps.supply.pages import PUBLIC_PAGES, TEMPLATES, build_pages
from healthledger.apps.supply.routes import build_router
from healthledger.apps.supply.simulate import ACTORS, live_step, simulate

APP = App(
    name="supply",
    title="Supply traceability",
    contracts=(SupplyContract,),
    simulate=simulate,
    live_step=live_step,
    api_routes=build_router,
    pages=build_pages,
    templates=TEMPLATES,
    public_pages=PUBLIC_PAGES,
    home_panels=home_panels,
    template_globals={"supply_op_names": OP_NAMES, "says_org": says_org},
    public_entries=(
        Link(
            "/supply/verify",
            "Verify a medicine pack",
            "Scan or type the code on a pack: genuine, recalled or already dispensed?",
        ),
    ),
    cli=build_cli,
    simulator_orgs=tuple(dict.fromkeys(identity.split("/", 1)[0] for identity in ACTORS)),
)
"""Drugs, vaccines and epidemic supplies from maker to patient (ARCHITECTURE.md section 6)."""
