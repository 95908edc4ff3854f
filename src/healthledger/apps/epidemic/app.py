"""The epidemic application as the platform mounts it."""

from __future__ import annotations

from healthledger.apps import App, Link
from healthledger.apps.epidemic.cli import build_cli
from healthledger.apps.epidemic.contract import CDC_ORG, COMMISSION_ORG, Epidemic
from healthledger.apps.epidemic.home import home_panels
from healthledger.apps.epidemic.live import live_step
from healthledger.apps.epidemic.pages import PUBLIC_PAGES, TEMPLATES, build_pages
from healthledger.apps.epidemic.provision import prepare_network
from healthledger.apps.epidemic.routes import build_router
from healthledger.apps.epidemic.simulate import simulate
from healthledger.apps.epidemic.workers import workers

APP = App(
    name="epidemic",
    title="Epidemic reporting",
    contracts=(Epidemic,),
    simulate=simulate,
    live_step=live_step,
    api_routes=build_router,
    pages=build_pages,
    templates=TEMPLATES,
    public_pages=PUBLIC_PAGES,
    public_entries=(
        Link(
            "/epidemic/public",
            "Public epidemic statistics",
            "Cases by city and disease, published daily with privacy protection.",
        ),
    ),
    cli=build_cli,
    simulator_orgs=(COMMISSION_ORG, CDC_ORG),
    simulator_kinds=("hospital",),
    prepare_network=prepare_network,
    workers=workers,
    home_panels=home_panels,
)
"""Notifiable case reporting, lab results and vaccinations, CDC review, who sees what,
monitoring with early warning and public statistics (ARCHITECTURE.md section 6)."""
