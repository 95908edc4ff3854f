"""The ``credentials`` contract: the trust list of issuers and their document-signing
certificates (changed through governance, ``trustlist.py``), and the credentials issued
with their status lists and DCC revocations (``issued.py``).

No personal data reaches the chain: a credential is recorded by its commitment, issuer,
kind, formats, signer and status index; the holder's name and birth date go to the
issuing organisation's vault from the transient map.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from healthledger.apps.credentials import issued, trustlist
from healthledger.apps.credentials.issued import CredentialKind, SourceKind, StatusName
from healthledger.apps.credentials.trustlist import ISSUER_KINDS, TrustAction
from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, query, transaction
from healthledger.contracts.errors import Rejected

COMMISSION_KINDS = ("commission",)
GOVERNING_ROLES = ("admin", "officer")
ISSUING_ROLES = ("doctor", "nurse", "lab", "admin")


class IssueArg(TypedDict):
    """One credential of an ``issue_batch`` (the arguments of ``issue``)."""

    kind: CredentialKind
    source_kind: SourceKind
    source_id: str
    formats: list[str]
    kid: str
    status_index: int
    uci_hash: str
    rid: str
    expires_at: int


class Credentials(Contract):
    """Trust list, issued credentials and their status."""

    name = "credentials"
    code_modules = (
        "healthledger.apps.credentials.issued",
        "healthledger.apps.credentials.trustlist",
    )
    policy = "OR('*.peer')"

    # --- governance of the trust list ------------------------------------------------

    @transaction(roles=GOVERNING_ROLES, kinds=COMMISSION_KINDS)
    def propose_trust_change(
        self,
        ctx: Context,
        *,
        action: TrustAction,
        org: str,
        certificate: str = "",
        country: str = "CN",
        iss: str = "",
        kid: str = "",
    ) -> dict[str, Any]:
        """Propose adding ``org``'s document signer (base64 DER P-256 ``certificate``,
        its ``iss`` URL for SMART Health Cards and SD-JWT VCs) or withdrawing signer
        ``kid``; it applies once a majority of the members' admins approve it."""
        return trustlist.propose(
            ctx, action=action, org=org, certificate=certificate, country=country, iss=iss,
            kid=kid,
        )  # fmt: skip

    @transaction(
        roles=("admin",),
        relation="one approval per organisation, of the change's exact digest",
    )
    def approve_trust_change(self, ctx: Context, *, change_id: str, digest: str) -> dict[str, Any]:
        """Approve a trust-list change for the caller's organisation; the approval that
        makes a majority of the members applies it."""
        return trustlist.approve(ctx, change_id=change_id, digest=digest)

    @transaction(roles=GOVERNING_ROLES, kinds=COMMISSION_KINDS)
    def set_trust_list_key(self, ctx: Context, *, jwk: dict[str, Any]) -> dict[str, Any]:
        """Record the commission's public key (a P-256 JWK) that signs exported lists."""
        return trustlist.set_list_key(ctx, jwk=jwk)

    # --- issuance and status ---------------------------------------------------------

    @transaction(
        roles=ISSUING_ROLES,
        kinds=ISSUER_KINDS,
        relation="the caller's organisation issues with its own active document signer",
    )
    def issue(
        self,
        ctx: Context,
        *,
        kind: CredentialKind,
        source_kind: SourceKind,
        source_id: str,
        formats: list[str],
        kid: str,
        status_index: int,
        uci_hash: str,
        rid: str,
        expires_at: int,
    ) -> dict[str, Any]:
        """Record a credential issued from a recorded fact (``source_kind`` ``source_id``):
        its commitment, signer ``kid`` and status index; the holder and the texts come
        in transient ``credential`` and stay in the caller's organisation's vault."""
        return issued.issue(
            ctx, kind=kind, source_kind=source_kind, source_id=source_id, formats=formats,
            kid=kid, status_index=status_index, uci_hash=uci_hash, rid=rid,
            expires_at=expires_at,
        )  # fmt: skip

    @transaction(
        roles=ISSUING_ROLES,
        kinds=ISSUER_KINDS,
        relation="the caller's organisation issues with its own active document signer",
    )
    def issue_batch(self, ctx: Context, *, credentials: list[IssueArg]) -> list[dict[str, Any]]:
        """Record up to 200 credentials in one transaction (a day's vaccinations of one
        hospital), all or nothing: each checked as ``issue`` checks one, problems named
        ``credentials[i].field``; holders and texts in transient ``credentials``, one per
        credential, in order, kept in the caller's organisation's vault."""
        return issued.issue_batch(ctx, [dict(c) for c in credentials])

    @transaction(
        roles=ISSUING_ROLES,
        kinds=ISSUER_KINDS,
        relation="only the organisation that issued the credential",
    )
    def set_status(
        self, ctx: Context, *, credential_id: str, status: StatusName, reason: str
    ) -> dict[str, Any]:
        """Revoke (for good), suspend or reinstate a credential: its status-list entry and
        its DCC revocation change with it."""
        return issued.set_status(ctx, credential_id=credential_id, status=status, reason=reason)

    # --- queries ---------------------------------------------------------------------

    @query()
    def trust_list(self, ctx: Context) -> dict[str, Any]:
        """Issuers and their document signers (active and withdrawn), and the key that
        signs exported trust lists."""
        return {
            "issuers": [v for _, v in ctx.range("issuer/", "issuer0", limit=10_000)],
            "signers": [v for _, v in ctx.range("signer/", "signer0", limit=10_000)],
            "trust_list_key": ctx.get("trust-list-key"),
        }

    @query()
    def trust_changes(self, ctx: Context, *, status: str = "") -> list[dict[str, Any]]:
        """Trust-list changes (``pending``, ``applied`` or all), each with how many
        approvals it needs."""
        needed = len(ctx.members()) // 2 + 1
        return [
            {**v, "needed": needed}
            for _, v in ctx.range("trust-change/", "trust-change0", limit=10_000)
            if not status or v["status"] == status
        ]

    @query()
    def credential(self, ctx: Context, *, credential_id: str) -> dict[str, Any]:
        """A credential's public record (no personal data)."""
        record = ctx.get(f"credential/{credential_id}")
        if not isinstance(record, dict):
            raise Rejected(f"no credential {credential_id}")
        return record

    @query()
    def status_entries(self, ctx: Context, *, org: str) -> list[list[int]]:
        """``[index, value]`` of each non-zero entry of ``org``'s status list."""
        return issued.status_entries(ctx, org)


__all__ = ["Credentials"]
