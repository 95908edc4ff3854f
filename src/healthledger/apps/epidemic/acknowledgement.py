"""A CDC acknowledges an early-warning alert with the action it takes: the alert stops
being one to act on, and the ledger records who answered it, when and how.

The action is coded (free text invites personal data onto the chain). The alert
record keeps its figures and gains ``acknowledged: {action, by, at}``; an alert is
acknowledged once.
"""

from __future__ import annotations

from typing import Any

from healthledger.apps.epidemic.checks import require_kind
from healthledger.apps.epidemic.visibility import region_contains
from healthledger.contracts.context import Context
from healthledger.contracts.errors import AccessDenied, Rejected


def acknowledge(
    ctx: Context, *, disease: str, region: str, day: int, action: str
) -> dict[str, Any]:
    """Record the caller's CDC's acknowledgement of the alert for ``disease`` in
    ``region`` on ``day``; the alert as it now stands."""
    reviewer = require_kind(ctx, "cdc")
    key = f"alert/{disease}/{region}/{day}"
    alert = ctx.get(key)
    if not isinstance(alert, dict):
        raise Rejected(f"no alert for {disease} in {region} on day {day}")
    if not region_contains(ctx, reviewer["region"], region):
        raise AccessDenied(f"region {region} is not in the area of {ctx.caller.org}")
    if "acknowledged" in alert:
        done = alert["acknowledged"]
        raise Rejected(f"the alert was already acknowledged by {done['by']} ({done['action']})")
    answered = {
        **alert,
        "acknowledged": {"action": action, "by": ctx.caller.id, "at": ctx.timestamp},
    }
    ctx.put(key, answered)
    ctx.emit(
        "alert_acknowledged",
        {"disease": disease, "region": region, "day": day, "action": action, "by": ctx.caller.id},
    )
    return answered
