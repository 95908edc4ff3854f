"""Applications installed in the demo and the node: each brings its contracts and a
simulator of realistic traffic (ARCHITECTURE.md section 6)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from healthledger.contracts.contract import Contract
from healthledger.contracts.system import SYSTEM_CONTRACTS

if TYPE_CHECKING:
    from healthledger.node.embedded import EmbeddedNode


class InstalledApp(Protocol):
    """What the CLI needs of an application package."""

    @property
    def name(self) -> str:
        """Short name, e.g. ``supply``."""
        ...

    @property
    def contracts(self) -> Sequence[type[Contract]]:
        """Contracts the application deploys (in the genesis of a new consortium)."""
        ...

    def simulate(self, node: EmbeddedNode, rng: random.Random) -> None:
        """Run demo traffic through ``node``, drawing every choice from ``rng``."""
        ...


INSTALLED_APPS: tuple[InstalledApp, ...] = ()
"""Applications the demo installs and simulates, in order."""


def installed_contracts(
    apps: Sequence[InstalledApp] = INSTALLED_APPS,
) -> tuple[type[Contract], ...]:
    """The system contracts and every installed application's contracts."""
    return (*SYSTEM_CONTRACTS, *(c for app in apps for c in app.contracts))
