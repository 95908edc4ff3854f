"""Applications installed in the demo and the node (see healthledger.apps.registry)."""

from __future__ import annotations

from healthledger.apps import App
from healthledger.apps.registry import INSTALLED_APPS, installed_contracts

__all__ = ["INSTALLED_APPS", "App", "installed_contracts"]
