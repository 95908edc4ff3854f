"""The consortium membership contract: organisations, identities, revocation.

The founding organisations and their CA certificates come from the genesis block.
A new organisation is admitted on chain: an admin of a member proposes it (its CA
certificate and the certificates of its first admin and peer), admins of the
members approve (one approval per organisation, for that exact proposal), and the
approval that makes a majority of the members writes the organisation and its
first identities as genesis writes them. A regulator-kind organisation is
proposed by a regulator only; a proposal is withdrawn by its proposing
organisation or a regulator.

An organisation's admin registers identities whose certificates that
organisation's CA issued (in a role the organisation may hold, if it was admitted
with a list of roles); the admin, or an admin of a regulator, revokes them.
Revocation is final and takes effect for every transaction validated after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, query, transaction
from healthledger.contracts.errors import AccessDenied, Rejected
from healthledger.contracts.rules import identity_key, org_key
from healthledger.contracts.system.admission import admission_proposal, proposal_digest
from healthledger.contracts.system.approval import (
    agreeing_orgs,
    approved,
    majority_policy,
    record_approval,
    recorded_approvals,
)
from healthledger.contracts.system.prefixes import checked_prefixes, first_clash
from healthledger.crypto.certs import Certificate, load_certificate, verify_issued_by
from healthledger.crypto.errors import CertificateError
from healthledger.ledger.transaction import IDENTITY_RE

REGULATOR_KIND = "regulator"
PENDING, ADMITTED, WITHDRAWN = "pending", "admitted", "withdrawn"
"""States of an admission proposal."""


def admission_key(org: str) -> str:
    """Membership state key of the proposal to admit ``org``."""
    return f"admission/{org}"


def gs1_approvals(org: str) -> str:
    """Membership state key prefix of the approvals of a change of ``org``'s GS1 prefixes."""
    return f"gs1-approval/{org}/"


def admission_approvals(org: str) -> str:
    """Membership state key prefix of the approvals of the proposal to admit ``org``."""
    return f"admission-approval/{org}/"


class Membership(Contract):
    """Organisations and identities of the consortium."""

    name = "membership"
    code_modules = (
        "healthledger.contracts.rules",
        "healthledger.contracts.system.admission",
        "healthledger.contracts.system.approval",
        "healthledger.contracts.system.prefixes",
    )
    policy = "OR('*.peer')"

    @transaction(roles=("admin",))
    def register_identity(self, ctx: Context, *, cert: str) -> dict[str, Any]:
        """Register an identity of the caller's organisation from its certificate (PEM)."""
        try:
            parsed = load_certificate(cert)
        except CertificateError as exc:
            raise Rejected(f"certificate: {exc}") from exc
        if parsed.org != ctx.caller.org:
            raise AccessDenied(
                f"an admin of {ctx.caller.org} cannot register {parsed.org} identities"
            )
        _require_current(parsed, ctx.timestamp)
        org = ctx.get(org_key(parsed.org))
        if not isinstance(org, dict):
            raise Rejected(f"organisation {parsed.org} is not a member")
        if "roles" in org and parsed.role not in org["roles"]:
            raise Rejected(f"{parsed.org} may hold roles {org['roles']}, not {parsed.role!r}")
        try:
            verify_issued_by(parsed, load_certificate(org["ca_cert"]))
        except CertificateError as exc:
            raise Rejected(f"certificate: {exc}") from exc
        identity_id = f"{parsed.org}/{parsed.name}"
        if not IDENTITY_RE.match(identity_id):
            raise Rejected(f"{parsed.name!r} is not an identity name: it could never sign")
        key = identity_key(identity_id)
        if ctx.get(key) is not None:
            raise Rejected(f"identity {identity_id} is already registered")
        record = identity_record(parsed.pem, registered_at=ctx.timestamp)
        ctx.put(key, record)
        ctx.emit("identity_registered", {"id": identity_id, "role": parsed.role})
        return record

    @transaction()
    def revoke_identity(self, ctx: Context, *, identity: str, reason: str) -> dict[str, Any]:
        """Revoke ``identity`` (``org/name``); its later transactions are invalid."""
        key = identity_key(identity)
        record = ctx.get(key)
        if not isinstance(record, dict):
            raise Rejected(f"identity {identity} is not registered")
        if ctx.caller.role != "admin" or not (
            ctx.caller.org == record["org"] or self._is_regulator(ctx, ctx.caller.org)
        ):
            raise AccessDenied("only an admin of its organisation or of a regulator may revoke")
        if record["status"] == "revoked":
            raise Rejected(f"identity {identity} is already revoked")
        if not reason.strip() or len(reason) > 500:
            raise Rejected("a reason of 1 to 500 characters is required")
        record = {
            **record,
            "status": "revoked",
            "revoked_at": ctx.timestamp,
            "revoked_by": ctx.caller.id,
            "reason": reason,
        }
        ctx.put(key, record)
        ctx.emit("identity_revoked", {"id": identity, "reason": reason, "by": ctx.caller.id})
        return record

    @transaction(roles=("admin",))
    def rotate_identity(self, ctx: Context, *, cert: str) -> dict[str, Any]:
        """Replace the certificate of an active identity of the caller's organisation
        with ``cert`` (PEM: same name and role, a new key, issued by the org's CA);
        transactions signed with the old key are invalid from the next block on."""
        try:
            parsed = load_certificate(cert)
        except CertificateError as exc:
            raise Rejected(f"certificate: {exc}") from exc
        if parsed.org != ctx.caller.org:
            raise AccessDenied(f"an admin of {ctx.caller.org} cannot rotate {parsed.org} keys")
        _require_current(parsed, ctx.timestamp)
        identity_id = f"{parsed.org}/{parsed.name}"
        record = ctx.get(identity_key(identity_id))
        if not isinstance(record, dict):
            raise Rejected(f"identity {identity_id} is not registered")
        if record["status"] == "revoked":
            raise Rejected(f"identity {identity_id} is revoked: register a new identity")
        if parsed.role != record["role"]:
            raise Rejected(f"{identity_id} holds role {record['role']!r}, not {parsed.role!r}")
        if (
            parsed.fingerprint == record["fingerprint"]
            or parsed.public_key == load_certificate(record["cert"]).public_key
        ):
            raise Rejected(f"the certificate holds the key {identity_id} already has")
        org = ctx.get(org_key(parsed.org))
        if not isinstance(org, dict):
            raise Rejected(f"organisation {parsed.org} is not a member")
        try:
            verify_issued_by(parsed, load_certificate(org["ca_cert"]))
        except CertificateError as exc:
            raise Rejected(f"certificate: {exc}") from exc
        rotated = {
            **identity_record(parsed.pem, registered_at=record["registered_at"]),
            "rotated_at": ctx.timestamp,
            "rotated_by": ctx.caller.id,
            "previous_fingerprint": record["fingerprint"],
        }
        ctx.put(identity_key(identity_id), rotated)
        ctx.emit("identity_rotated", {"id": identity_id, "by": ctx.caller.id})
        return rotated

    @staticmethod
    def _is_regulator(ctx: Context, org: str) -> bool:
        record = ctx.get(org_key(org))
        return isinstance(record, dict) and record.get("kind") == REGULATOR_KIND

    @transaction(roles=("admin",))
    def propose_organisation(
        self,
        ctx: Context,
        *,
        org: str,
        name: str,
        kind: str,
        ca_cert: str,
        admin_cert: str,
        peer_cert: str,
        roles: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        gs1_prefixes: list[str] | None = None,
    ) -> dict[str, Any]:
        """Propose admitting ``org`` (with the certificates of its CA, first admin and
        first peer, and the GS1 company prefixes it holds); counts as the caller's
        organisation's approval."""
        proposal = admission_proposal(
            org=org,
            name=name,
            kind=kind,
            roles=roles or [],
            attributes=attributes or {},
            ca_cert=ca_cert,
            admin_cert=admin_cert,
            peer_cert=peer_cert,
            at_ms=ctx.timestamp,
            gs1_prefixes=gs1_prefixes or [],
        )
        if ctx.get(org_key(org)) is not None:
            raise Rejected(f"organisation {org} is already a member")
        self._refuse_clash(ctx, proposal["gs1_prefixes"], org)
        current = ctx.get(admission_key(org))
        if isinstance(current, dict) and current["status"] == PENDING:
            raise Rejected(f"a proposal to admit {org} is already pending")
        if kind == REGULATOR_KIND and not self._is_regulator(ctx, ctx.caller.org):
            raise AccessDenied("only an admin of a regulator may propose a regulator")
        record = {
            **proposal,
            "digest": proposal_digest(proposal, proposed_in=ctx.tx_id),
            "status": PENDING,
            "proposed_by": ctx.caller.id,
            "proposed_at": ctx.timestamp,
            "approved_by": [],
        }
        ctx.emit("organisation_proposed", {"org": org, "by": ctx.caller.id})
        return self._approve(ctx, record)

    @transaction(roles=("admin",))
    def approve_organisation(self, ctx: Context, *, org: str, digest: str) -> dict[str, Any]:
        """Approve, for the caller's organisation, the pending proposal to admit ``org``
        whose digest is ``digest``; the approval that makes a majority admits it."""
        record = ctx.get(admission_key(org))
        if not isinstance(record, dict):
            raise Rejected(f"no proposal to admit {org}")
        if record["status"] != PENDING:
            raise Rejected(f"the proposal to admit {org} is {record['status']}, not pending")
        if digest != record["digest"]:
            raise Rejected(f"the pending proposal to admit {org} has another digest")
        if ctx.caller.org in record["approved_by"]:
            raise Rejected(f"{ctx.caller.org} has already approved admitting {org}")
        return self._approve(ctx, record)

    @transaction(roles=("admin",))
    def withdraw_organisation(self, ctx: Context, *, org: str, reason: str) -> dict[str, Any]:
        """Withdraw the pending proposal to admit ``org`` (its proposing organisation
        or a regulator); its approvals never count again."""
        record = ctx.get(admission_key(org))
        if not isinstance(record, dict):
            raise Rejected(f"no proposal to admit {org}")
        proposer = str(record["proposed_by"]).split("/", 1)[0]
        if ctx.caller.org != proposer and not self._is_regulator(ctx, ctx.caller.org):
            raise AccessDenied(
                "only an admin of the proposing organisation or of a regulator may withdraw"
            )
        if record["status"] != PENDING:
            raise Rejected(f"the proposal to admit {org} is {record['status']}, not pending")
        if not reason.strip() or len(reason) > 500:
            raise Rejected("a reason of 1 to 500 characters is required")
        record = {
            **record,
            "status": WITHDRAWN,
            "withdrawn_by": ctx.caller.id,
            "withdrawn_at": ctx.timestamp,
            "reason": reason,
        }
        ctx.put(admission_key(org), record)
        ctx.emit("organisation_withdrawn", {"org": org, "by": ctx.caller.id, "reason": reason})
        return record

    def _approve(self, ctx: Context, record: dict[str, Any]) -> dict[str, Any]:
        """Record the caller's organisation's approval of ``record``; admit its
        organisation if the approvals now make a majority of the members."""
        org = record["org"]
        body = {"admission": org, "digest": record["digest"]}
        record_approval(ctx, admission_approvals(org), body)
        orgs = agreeing_orgs(recorded_approvals(ctx, admission_approvals(org)), body)
        # Rewriting the proposal makes two approvals in one block conflict (MVCC),
        # so neither is lost to the other's unseen write.
        record = {**record, "approved_by": orgs}
        ctx.emit("organisation_approved", {"org": org, "by": ctx.caller.org})
        if approved(majority_policy(self._members(ctx)), orgs):
            # Another member may have taken an overlapping prefix since the proposal.
            self._refuse_clash(ctx, record.get("gs1_prefixes", []), org)
            record = {**record, "status": ADMITTED, "admitted_at": ctx.timestamp}
            member = organisation_record(
                id=org,
                name=record["name"],
                kind=record["kind"],
                ca_cert=record["ca_cert"],
                attributes=record["attributes"],
                roles=record["roles"],
                joined_at=ctx.timestamp,
                gs1_prefixes=record.get("gs1_prefixes", []),
            )
            ctx.put(org_key(org), member)
            for pem in (record["admin_cert"], record["peer_cert"]):
                identity = identity_record(pem, registered_at=ctx.timestamp)
                ctx.put(identity_key(identity["id"]), identity)
            ctx.emit("organisation_admitted", {"org": org, "approved_by": orgs})
        ctx.put(admission_key(org), record)
        return record

    @staticmethod
    def _members(ctx: Context) -> list[str]:
        return [value["id"] for _, value in ctx.range("org/", "org0", limit=10_000)]

    @staticmethod
    def _refuse_clash(ctx: Context, prefixes: list[str], org: str) -> None:
        members = [value for _, value in ctx.range("org/", "org0", limit=10_000)]
        clash = first_clash(prefixes, members, org=org)
        if clash is not None:
            raise Rejected(clash)

    @transaction(roles=("admin",))
    def approve_gs1_prefixes(
        self, ctx: Context, *, org: str, gs1_prefixes: list[str]
    ) -> dict[str, Any]:
        """Approve, for the caller's organisation, that member ``org`` holds exactly
        ``gs1_prefixes``; the approval that makes a majority of the members sets them."""
        record = ctx.get(org_key(org))
        if not isinstance(record, dict):
            raise Rejected(f"organisation {org} is not a member")
        prefixes = checked_prefixes(gs1_prefixes)
        if prefixes == record.get("gs1_prefixes", []):
            raise Rejected(f"{org} already holds exactly these GS1 company prefixes")
        self._refuse_clash(ctx, prefixes, org)
        # "member", not "org": an approval adds the approving "org" to its body.
        body = {"member": org, "gs1_prefixes": prefixes}
        prefix = gs1_approvals(org)
        approval = record_approval(ctx, prefix, body)
        orgs = agreeing_orgs(recorded_approvals(ctx, prefix), body)
        ctx.emit("gs1_prefixes_approved", {**body, "by": ctx.caller.org})
        if approved(majority_policy(self._members(ctx)), orgs):
            ctx.put(org_key(org), {**record, "gs1_prefixes": prefixes})
            for approver in orgs:
                ctx.delete(prefix + approver)
            ctx.emit("gs1_prefixes_changed", {**body, "approved_by": orgs})
            return {**body, "status": "set", "approved_by": orgs}
        return {**approval, "status": "pending", "approved_by": orgs}

    @query()
    def admissions(self, ctx: Context, *, status: str = PENDING) -> list[dict[str, Any]]:
        """Proposals to admit organisations in ``status`` ("" for all), each with the
        organisations that approved it and how many approvals it needs."""
        needed = len(self._members(ctx)) // 2 + 1
        return [
            {**value, "needed": needed}
            for _, value in ctx.range("admission/", "admission0", limit=10_000)
            if not status or value["status"] == status
        ]

    @query()
    def admission(self, ctx: Context, *, org: str) -> dict[str, Any]:
        """The latest proposal to admit ``org``, its approvals and how many it needs."""
        record = ctx.get(admission_key(org))
        if not isinstance(record, dict):
            raise Rejected(f"no proposal to admit {org}")
        approvals = recorded_approvals(ctx, admission_approvals(org))
        return {
            **record,
            "needed": len(self._members(ctx)) // 2 + 1,
            "approvals": [a for a in approvals if a["digest"] == record["digest"]],
        }

    @query()
    def organisations(self, ctx: Context) -> list[dict[str, Any]]:
        """Every member organisation."""
        return [value for _, value in ctx.range("org/", "org0")]

    @query()
    def identities(self, ctx: Context, *, org: str = "") -> list[dict[str, Any]]:
        """Registered identities, of one organisation if ``org`` is given."""
        prefix = f"identity/{org}/" if org else "identity/"
        return [value for _, value in ctx.range(prefix, prefix[:-1] + "0", limit=10_000)]

    @query()
    def identity(self, ctx: Context, *, id: str) -> dict[str, Any]:
        """One identity record."""
        record = ctx.get(identity_key(id))
        if not isinstance(record, dict):
            raise Rejected(f"identity {id} is not registered")
        return record


def _require_current(cert: Certificate, at_ms: int) -> None:
    """Refuse a certificate that is expired or not yet valid at ``at_ms``."""
    if not cert.valid_at(at_ms):
        raise Rejected(
            f"the certificate of {cert.org}/{cert.name} is not valid now "
            f"(valid from {cert.not_before_ms} to {cert.not_after_ms}, Unix ms)"
        )


def identity_record(cert_pem: str, *, registered_at: int) -> dict[str, Any]:
    """The membership state record of a certificate's identity."""
    cert = load_certificate(cert_pem)
    return {
        "id": f"{cert.org}/{cert.name}",
        "org": cert.org,
        "name": cert.name,
        "role": cert.role,
        "attributes": dict(cert.attributes),
        "cert": cert.pem,
        "fingerprint": cert.fingerprint,
        "serial": str(cert.serial),
        "not_before": cert.not_before_ms,
        "not_after": cert.not_after_ms,
        "status": "active",
        "registered_at": registered_at,
    }


def organisation_record(
    *,
    id: str,
    name: str,
    kind: str,
    ca_cert: str,
    attributes: dict[str, str],
    joined_at: int,
    roles: list[str] | None = None,
    gs1_prefixes: Sequence[str] = (),
) -> dict[str, Any]:
    """The membership state record of an organisation, as genesis writes it; an
    organisation admitted with ``roles`` may register identities in those only, and
    is the brand owner of every GS1 key inside its ``gs1_prefixes``."""
    record: dict[str, Any] = {
        "id": id,
        "name": name,
        "kind": kind,
        "ca_cert": ca_cert,
        "attributes": dict(attributes),
        "gs1_prefixes": list(gs1_prefixes),
        "joined_at": joined_at,
    }
    if roles is not None:
        record["roles"] = list(roles)
    return record
