"""The application seam of a test's node, as the platform hands it to each application."""

from __future__ import annotations

from healthledger.apps.epidemic.app import APP as EPIDEMIC
from healthledger.apps.supply.app import APP as SUPPLY
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.seam import AppNode, attach


def supply_seam(node: EmbeddedNode) -> AppNode:
    """``node`` as the supply application sees it."""
    return attach(node, SUPPLY)


def epidemic_seam(node: EmbeddedNode) -> AppNode:
    """``node`` as the epidemic application sees it."""
    return attach(node, EPIDEMIC)
