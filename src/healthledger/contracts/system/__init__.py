"""System contracts: consortium membership and contract lifecycle."""

from healthledger.contracts.system.lifecycle import Lifecycle
from healthledger.contracts.system.membership import Membership

SYSTEM_CONTRACTS = (Membership, Lifecycle)
"""Contracts every peer installs."""

__all__ = ["SYSTEM_CONTRACTS", "Lifecycle", "Membership"]
