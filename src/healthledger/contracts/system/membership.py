"""The consortium membership contract: organisations, identities, revocation.

Organisations and their CA certificates come from the genesis block. An
organisation's admin registers identities whose certificates that
organisation's CA issued; the admin, or an admin of a regulator, revokes them.
Revocation is final and takes effect for every transaction validated after it.
"""

from __future__ import annotations

from typing import Any

from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, query, transaction
from healthledger.contracts.errors import AccessDenied, Rejected
from healthledger.contracts.rules import identity_key, org_key
from healthledger.crypto.certs import load_certificate, verify_issued_by
from healthledger.crypto.errors import CertificateError

REGULATOR_KIND = "regulator"


class Membership(Contract):
    """Organisations and identities of the consortium."""

    name = "membership"
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
        org = ctx.get(org_key(parsed.org))
        if not isinstance(org, dict):
            raise Rejected(f"organisation {parsed.org} is not a member")
        try:
            verify_issued_by(parsed, load_certificate(org["ca_cert"]))
        except CertificateError as exc:
            raise Rejected(f"certificate: {exc}") from exc
        identity_id = f"{parsed.org}/{parsed.name}"
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

    @staticmethod
    def _is_regulator(ctx: Context, org: str) -> bool:
        record = ctx.get(org_key(org))
        return isinstance(record, dict) and record.get("kind") == REGULATOR_KIND

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
