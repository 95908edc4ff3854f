"""The applications every node installs, in demo order (see healthledger.apps.App)."""

from __future__ import annotations

from collections.abc import Sequence

from healthledger.apps import App
from healthledger.apps.credentials.app import APP as CREDENTIALS
from healthledger.apps.epidemic.app import APP as EPIDEMIC
from healthledger.apps.supply.app import APP as SUPPLY
from healthledger.contracts.contract import Contract
from healthledger.contracts.system import SYSTEM_CONTRACTS

INSTALLED_APPS: tuple[App, ...] = (SUPPLY, EPIDEMIC, CREDENTIALS)
"""Applications every node installs and the demo simulates, in order."""


def installed_contracts(apps: Sequence[App] = INSTALLED_APPS) -> tuple[type[Contract], ...]:
    """The system contracts and every installed application's contracts."""
    return (*SYSTEM_CONTRACTS, *(c for app in apps for c in app.contracts))
