"""Putting issuers on the trust list through governance, as the demo and a consortium
network do it: the commission records its trust-list key, proposes each issuer's
document signer, and the members' admins whose keys this node holds approve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from healthledger.apps.credentials.service import CONTRACT, CredentialService, issuer_url
from healthledger.apps.credentials.trustlist import ISSUER_KINDS
from healthledger.node.seam import AppNode, NodeError


def commission_of(node: AppNode) -> str | None:
    """The commission organisation whose officer or admin this node may sign as."""
    for org in node.organisations():
        if org.get("kind") == "commission" and _governor(node, org["id"]):
            return str(org["id"])
    return None


def _governor(node: AppNode, org: str) -> str | None:
    found = node.identities(role="officer", org=org) or node.identities(role="admin", org=org)
    return found[0] if found else None


def approve_change(node: AppNode, change: dict[str, Any]) -> dict[str, Any]:
    """Approve ``change`` as every member admin this node holds until it applies."""
    record = change
    for admin in node.identities(role="admin"):
        if record["status"] != "pending":
            break
        if admin.split("/", 1)[0] in record["approved_by"]:
            continue
        args = {"change_id": change["change_id"], "digest": change["digest"]}
        _, record = node.invoke(admin, CONTRACT, "approve_trust_change", args)
    return record


def enrol_issuers(node: AppNode, orgs: Sequence[str] | None = None) -> list[str]:
    """Put the document signer of each issuing organisation of ``orgs`` (default: every
    hospital, lab and CDC whose vault key this node holds) on the trust list, and the
    commission's trust-list key on chain; idempotent. Returns the organisations added."""
    commission = commission_of(node)
    if commission is None:
        return []
    proposer = _governor(node, commission)
    assert proposer is not None
    service = CredentialService(node)
    if node.get("trust-list-key") is None:
        try:
            jwk = service.trust_list_key(commission)
        except NodeError:
            jwk = None
        if jwk is not None:
            node.invoke(proposer, CONTRACT, "set_trust_list_key", {"jwk": jwk})
    listed = {v["org"] for _, v in node.range("signer/") if v["status"] == "active"}
    added = []
    for member in node.organisations():
        org = str(member["id"])
        if member.get("kind") not in ISSUER_KINDS or org in listed:
            continue
        if orgs is not None and org not in orgs:
            continue
        try:
            certificate = service.certificate_b64(org)
        except NodeError:
            continue  # this node holds no vault key of org: its own node enrols it
        args = {"action": "add-signer", "org": org, "certificate": certificate,
                "country": "CN", "iss": issuer_url(org)}  # fmt: skip
        _, change = node.invoke(proposer, CONTRACT, "propose_trust_change", args)
        if approve_change(node, change)["status"] == "applied":
            added.append(org)
    return added
