"""Approvals by organisation admins, shared by the system contracts.

A subject that needs the consortium's consent (a contract definition, a new
organisation) collects one approval per organisation under a state key prefix:
the approved body plus the approving organisation and admin. Only approvals whose
body agrees count, and they decide once the approving organisations' admins
satisfy a policy (by default a majority of the member organisations).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from healthledger.contracts.context import Context
from healthledger.contracts.errors import Rejected
from healthledger.contracts.policy import parse_policy, satisfied

SIGNED_BY = ("org", "approver")
"""Fields an approval adds to the body it approves."""


def majority_policy(orgs: Sequence[str]) -> str:
    """A majority of ``orgs``' admins, as an endorsement policy expression."""
    principals = ", ".join(f"'{o}.admin'" for o in orgs)
    return f"OutOf({len(orgs) // 2 + 1}, {principals})"


def record_approval(ctx: Context, prefix: str, body: dict[str, Any]) -> dict[str, Any]:
    """Record the caller's organisation's approval of ``body`` under ``prefix``
    (replacing an earlier one of the same organisation) and return it."""
    approval = {**body, "org": ctx.caller.org, "approver": ctx.caller.id}
    ctx.put(prefix + ctx.caller.org, approval)
    return approval


def recorded_approvals(ctx: Context, prefix: str) -> list[dict[str, Any]]:
    """Every approval recorded under ``prefix``, by organisation id."""
    return [value for _, value in ctx.range(prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1))]


def approved_body(approval: dict[str, Any]) -> dict[str, Any]:
    """What an approval approves, without who approved it."""
    return {k: v for k, v in approval.items() if k not in SIGNED_BY}


def agreeing_orgs(approvals: Sequence[dict[str, Any]], body: dict[str, Any]) -> list[str]:
    """The organisations whose approval is of exactly ``body``."""
    return [a["org"] for a in approvals if approved_body(a) == body]


def approved(policy: str, orgs: Sequence[str]) -> bool:
    """True if the admins of ``orgs`` satisfy ``policy``."""
    return satisfied(parse_policy(policy), [(org, "admin") for org in orgs])


def require_approved(subject: str, policy: str, orgs: Sequence[str]) -> None:
    """Rejected unless the admins of ``orgs`` satisfy ``policy``."""
    if not approved(policy, orgs):
        raise Rejected(f"{subject}: approvals of {list(orgs)} do not satisfy {policy}")
