"""GS1 keys inside the demo organisations' company prefixes, for tests that write
locations as a cheap transaction."""

from __future__ import annotations

from healthledger.apps.supply.digital_link import check_digit
from healthledger.demo.organisations import DEMO_ORGS

PREFIXES = {plan.id: plan.gs1_prefixes[0] for plan in DEMO_ORGS if plan.gs1_prefixes}
"""The first GS1 company prefix of each demo organisation that holds one."""


def gln_in(prefix: str, n: int) -> str:
    """The ``n``-th valid GLN inside ``prefix``."""
    width = 12 - len(prefix)
    if not 0 <= n < 10**width:
        raise ValueError(f"GLN number {n} does not fit after prefix {prefix}")
    digits = f"{prefix}{n:0{width}d}"
    return digits + str(check_digit(digits))


def gln(org: str, n: int) -> str:
    """The ``n``-th valid GLN of demo organisation ``org`` (which registers it)."""
    return gln_in(PREFIXES[org], n)
