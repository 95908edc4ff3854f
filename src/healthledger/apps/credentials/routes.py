"""API routes of the credentials application, mounted at ``/api/v1/credentials``, and
the issuers' JWKS at ``/.well-known/jwks.json``.

Public (no identity): the trust list, the status lists, a credential's public record,
verification. Writes name the demo identity the server signs as (demo custody), like the
other applications' routes; errors are the platform's problem details (RFC 9457).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from healthledger.appkit.qr_image import MAX_IMAGE_BYTES, UnreadableImage, qr_texts
from healthledger.apps.credentials.facts import check_holder
from healthledger.apps.credentials.service import CONTRACT, CredentialService, status_uri
from healthledger.contracts.errors import AccessDenied, InvalidArguments, Rejected
from healthledger.crypto.credentials.policy import Policy
from healthledger.crypto.credentials.status import StatusSource, load_status
from healthledger.crypto.credentials.trust import TrustStore, load_trust
from healthledger.crypto.credentials.verdict import Reason, Verdict, refused
from healthledger.crypto.credentials.verifier import verify_credential
from healthledger.ledger.transaction import IDENTITY_RE
from healthledger.node.seam import AppNode

_WRITES: dict[int | str, dict[str, Any]] = {
    403: {"description": "No key is held for the identity, or it may not do this"},
    409: {"description": "Refused by the contract in the ledger's current state"},
    504: {"description": "Submitted, but not committed in time"},
}
_READS: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not on the ledger, or this node cannot sign the export"}
}
_PHOTO_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["photo"],
                    "properties": {"photo": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}
Format = Literal["dcc", "shc", "sd-jwt-vc"]
Identity = Annotated[str, Field(pattern=IDENTITY_RE.pattern, description="``org/name``")]


def _all_formats() -> list[Format]:
    return ["dcc", "shc", "sd-jwt-vc"]


class IssueBody(BaseModel):
    """A credential to issue from a fact the identity's organisation recorded."""

    model_config = ConfigDict(extra="forbid")

    identity: Identity
    source_kind: Literal["vaccination", "lab", "case"]
    source_id: str = Field(max_length=64)
    family_name: str = Field(max_length=80, description="As on the holder's ID document.")
    given_name: str = Field(max_length=80)
    birth_date: str = Field(max_length=10, description="YYYY-MM-DD.")
    formats: list[Format] = Field(default_factory=_all_formats, min_length=1, max_length=3)


class StatusBody(BaseModel):
    """A credential's new status and why."""

    model_config = ConfigDict(extra="forbid")

    identity: Identity
    status: Literal["revoked", "suspended", "valid"]
    reason: str = Field(min_length=1, max_length=200)


class TrustProposalBody(BaseModel):
    """A trust-list change the commission proposes."""

    model_config = ConfigDict(extra="forbid")

    identity: Identity
    action: Literal["add-signer", "withdraw-signer"]
    org: str = Field(max_length=64)
    certificate: str = Field(
        default="",
        max_length=4096,
        description="Base64 DER; empty to certify the key this node derives for ``org``.",
    )
    iss: str = Field(default="", max_length=200)
    kid: str = Field(default="", max_length=64, description="The signer to withdraw.")


class ApprovalBody(BaseModel):
    """An organisation admin's approval of a change."""

    model_config = ConfigDict(extra="forbid")

    identity: Identity
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")


class VerifyBody(BaseModel):
    """Credential texts to verify (several only for a chunked SMART Health Card)."""

    model_config = ConfigDict(extra="forbid")

    texts: list[Annotated[str, Field(max_length=16_384)]] = Field(min_length=1, max_length=20)


def _held(node: AppNode, identity: str) -> None:
    if not node.holds(identity):
        raise AccessDenied(f"this node holds no key for {identity!r} (demo custody)")


def ledger_sources(service: CredentialService) -> tuple[TrustStore, StatusSource]:
    """The ledger's current trust list and status, as a verifier holds them."""
    trust = load_trust(json.dumps(service.trust_list()).encode())
    document = service.status_document()
    status = load_status(json.dumps(document).encode(), fetched_at=document["fetched_at"])
    return trust, status


def build_router(node: AppNode) -> APIRouter:
    """The credentials API over ``node``."""
    router = APIRouter()
    service = node.shared("service", lambda: CredentialService(node))

    @router.post("/issue", summary="Issue a credential from a recorded fact", responses=_WRITES)
    def issue(body: IssueBody) -> dict[str, Any]:
        """Issue the vaccination (``vaccination``), test (``lab``) or recovery (``case``)
        certificate of a fact the identity's organisation recorded, signed with its
        document signer, in the ``formats`` asked (a recovery has no SMART Health Card).
        The holder's names and birth date go into the credential and the issuer's vault,
        never on chain. Answers the on-chain record and the credential's texts."""
        _held(node, body.identity)
        holder = check_holder(body.family_name, body.given_name, body.birth_date)
        issued = service.issue(body.identity, body.source_kind, body.source_id, holder,
                               formats=body.formats)  # fmt: skip
        return {"credential": issued.record, "texts": issued.texts, "tx_id": issued.tx_id,
                "height": issued.height}  # fmt: skip

    @router.post(
        "/credentials/{credential_id}/status",
        summary="Revoke, suspend or reinstate a credential",
        responses=_WRITES,
    )
    def set_status(credential_id: str, body: StatusBody) -> dict[str, Any]:
        """Only its issuing organisation; verifiers see it once they refresh the status."""
        _held(node, body.identity)
        return dict(service.set_status(body.identity, credential_id, body.status, body.reason))

    @router.get(
        "/credentials/{credential_id}", summary="A credential's public record", responses=_READS
    )
    def credential(credential_id: str) -> dict[str, Any]:
        """Commitment, issuer, kind, formats, signer, status index and status: no
        personal data."""
        found = node.get(f"credential/{credential_id}")
        if not isinstance(found, dict):
            raise Rejected(f"no credential {credential_id}")
        return found

    @router.get("/status", summary="Every issuer's status list and the revocations (public)")
    def status() -> dict[str, Any]:
        """One ``healthledger-status`` document: each issuer's IETF Token Status List (2
        bits per entry: 0 valid, 1 revoked, 2 suspended), the DCC revocations by SHA-256
        of the certificate identifier, each SMART Health Cards key's revocation list.
        ``fetched_at`` is when the node made it: a verifier states its age."""
        return service.status_document()

    @router.get(
        "/status-lists/{org}", summary="One issuer's Token Status List (public)", responses=_READS
    )
    def status_list(org: str) -> dict[str, Any]:
        """The ``status_list`` the SD-JWT VCs of ``org`` point to, with its ``sub``."""
        issuer = node.get(f"issuer/{org}")
        if not isinstance(issuer, dict):
            raise Rejected(f"{org} issues no credentials")
        return {"sub": status_uri(issuer["iss"], org), "status_list": service.status_list(org)}

    @router.get("/trust-list", summary="The signed trust list (public)", responses=_READS)
    def trust_list() -> dict[str, Any]:
        """The active document signers (DCC) and issuer JWKS (SMART Health Cards, SD-JWT
        VC), signed (JWS, ES256) with the commission's trust-list key, with the inclusion
        proof of each transaction that put a signer or that key on chain."""
        return service.signed_trust_list()

    @router.get("/trust-list/changes", summary="Trust-list changes and their approvals")
    def changes(
        status: Annotated[Literal["", "pending", "applied"], Query()] = "",
        since: Annotated[int, Query(ge=0, le=2**63 - 1, description="Unix ms")] = 0,
    ) -> list[dict[str, Any]]:
        """Proposed and applied changes, each with the approvals it has and needs, oldest
        first; ``since`` keeps those proposed or applied after that time, so a verifier
        holding a trust list fetches only what changed."""
        needed = len(node.organisations()) // 2 + 1
        found = [
            {**v, "needed": needed}
            for _, v in node.range("trust-change/")
            if (not status or v["status"] == status)
            and max(int(v["proposed_at"]), int(v.get("applied_at", 0))) > since
        ]
        return sorted(found, key=lambda v: int(v.get("applied_at", v["proposed_at"])))

    @router.post("/trust-list/changes", summary="Propose a trust-list change", responses=_WRITES)
    def propose(body: TrustProposalBody) -> dict[str, Any]:
        """The health commission proposes adding ``org``'s document signer (its
        certificate, or the one this node makes for the key it derives for ``org``) or
        withdrawing signer ``kid``; a majority of the members' admins must approve."""
        _held(node, body.identity)
        args = body.model_dump(exclude={"identity"})
        if body.action == "add-signer":
            if not body.certificate:
                args["certificate"] = service.certificate_b64(body.org)
            args["iss"] = body.iss or f"https://issuers.healthledger.example/{body.org}"
        _, result = node.invoke(body.identity, CONTRACT, "propose_trust_change", args)
        return dict(result)

    @router.post(
        "/trust-list/changes/{change_id}/approve",
        summary="Approve a trust-list change",
        responses=_WRITES,
    )
    def approve(change_id: str, body: ApprovalBody) -> dict[str, Any]:
        """An organisation's admin approves the change of exactly ``digest``; the
        approval that makes a majority applies it."""
        _held(node, body.identity)
        args = {"change_id": change_id, "digest": body.digest}
        _, result = node.invoke(body.identity, CONTRACT, "approve_trust_change", args)
        return dict(result)

    @router.post("/verify", summary="Verify a credential against the ledger (public)")
    def verify(body: VerifyBody) -> dict[str, Any]:
        """The verdict on the credential against the ledger's current trust list and
        status: ``valid``, and each refusal and warning as a stable reason code."""
        return _verdict(body.texts).to_json()

    @router.post(
        "/verify/photo",
        summary="Verify a credential from a photo of its QR code (public)",
        openapi_extra=_PHOTO_BODY,
    )
    async def verify_photo(request: Request) -> dict[str, Any]:
        """Multipart field ``photo`` (PNG or JPEG): every QR code in it is read here and
        verified as ``POST /verify``; the answer adds the ``texts`` read (so a page can
        verify them itself). An unreadable photo is the verdict ``UNREADABLE_IMAGE``."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_IMAGE_BYTES + 64 * 1024:
            raise InvalidArguments("photo", [{"field": "photo", "message": "over 8 MB"}])
        async with request.form(max_files=1, max_fields=2) as form:
            photo = form.get("photo")
            if not isinstance(photo, UploadFile):
                raise InvalidArguments("photo", [{"field": "photo", "message": "missing"}])
            data = await photo.read(MAX_IMAGE_BYTES + 1)
        return await run_in_threadpool(_photo_verdict, data)

    def _photo_verdict(data: bytes) -> dict[str, Any]:
        try:
            texts = qr_texts(data)
        except UnreadableImage as exc:
            at = node.clock() // 1000
            return refused("unknown", Reason.UNREADABLE_IMAGE, str(exc), at=at).to_json()
        return {**_verdict(texts).to_json(), "texts": texts}

    def _verdict(texts: list[str]) -> Verdict:
        trust, status = ledger_sources(service)
        return verify_credential(texts, trust=trust, status=status, at=node.clock() // 1000,
                                 policy=Policy())  # fmt: skip

    return router


def build_site_routes(node: AppNode) -> APIRouter:
    """``/.well-known/jwks.json``: every active issuer key (SMART Health Cards)."""
    router = APIRouter()
    service = node.shared("service", lambda: CredentialService(node))

    @router.get("/.well-known/jwks.json", summary="The issuers' keys (JWKS, public)")
    def jwks() -> dict[str, Any]:
        """The public keys of every issuer's active document signer, ES256, ``kid`` the
        RFC 7638 thumbprint: SMART Health Cards verifiers fetch them from here."""
        return service.jwks()

    return router
