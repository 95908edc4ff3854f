"""The trust list on chain: which organisations issue credentials and with which
document-signing certificates, changed only through governance.

The health commission proposes a change (add a signer, withdraw one); the members'
admins approve that exact change (its digest), one approval per organisation, with the
consortium's approval rule (a majority of the members, ``contracts.system.approval``);
the approval that makes the majority applies it. Nothing personal is involved: a
certificate and an issuer's public URL.

State keys::

    trust-change/<change_id>                 a proposal and its status
    trust-approval/<change_id>/<org>         one organisation's approval of it
    signer/<kid>                             a document signer (kid: DCC key id)
    issuer/<org>                             an issuer and its signers' kids
    trust-list-key                           the commission's key signing exported lists
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from healthledger.contracts.context import Context
from healthledger.contracts.errors import InvalidArguments, Rejected
from healthledger.contracts.system.approval import (
    agreeing_orgs,
    approved,
    majority_policy,
    record_approval,
    recorded_approvals,
)
from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.credentials.trust import dcc_kid
from healthledger.crypto.errors import MalformedEncoding
from healthledger.crypto.jose import Jwk

TrustAction = Literal["add-signer", "withdraw-signer"]
ISSUER_KINDS = ("hospital", "lab", "cdc")
"""Organisations that record facts a credential may attest."""
PENDING, APPLIED = "pending", "applied"
COUNTRY_RE = re.compile(r"[A-Z]{2}")
ISS_RE = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?")
MAX_CERTIFICATE = 4096


def change_key(change_id: str) -> str:
    """State key of a trust-list change."""
    return f"trust-change/{change_id}"


def approvals_prefix(change_id: str) -> str:
    """State key prefix of a change's approvals."""
    return f"trust-approval/{change_id}/"


def digest_of(body: dict[str, Any]) -> str:
    """The hex SHA-256 of a change's canonical body: what an approval names."""
    return hashlib.sha256(canonical_json(body)).hexdigest()


def signer_certificate(certificate: str) -> x509.Certificate:
    """A base64 DER P-256 document-signer certificate; InvalidArguments otherwise."""

    def bad(message: str) -> InvalidArguments:
        return InvalidArguments(message, [{"field": "certificate", "message": message}])

    if not certificate or len(certificate) > MAX_CERTIFICATE:
        raise bad(f"a base64 DER certificate of at most {MAX_CERTIFICATE} characters")
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(certificate, validate=True))
    except (binascii.Error, ValueError):
        raise bad("not a base64 DER X.509 certificate") from None
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise bad("a document signer's key is P-256 (ES256)")
    return cert


def propose(
    ctx: Context, *, action: TrustAction, org: str, certificate: str, country: str, iss: str,
    kid: str,
) -> dict[str, Any]:  # fmt: skip
    """Record the commission's proposal of a trust-list change."""
    member = ctx.organisation(org)
    if member is None or member.get("kind") not in ISSUER_KINDS:
        raise InvalidArguments(
            f"{org} is not a member that records facts ({', '.join(ISSUER_KINDS)})",
            [{"field": "org", "message": "not a hospital, lab or CDC of the consortium"}],
        )
    body: dict[str, Any] = {"action": action, "org": org}
    if action == "add-signer":
        cert = signer_certificate(certificate)
        if not COUNTRY_RE.fullmatch(country):
            raise InvalidArguments("country", [{"field": "country", "message": "ISO 3166 alpha-2"}])
        if not ISS_RE.fullmatch(iss):
            raise InvalidArguments("iss", [{"field": "iss", "message": "an https:// URL"}])
        kid = dcc_kid(cert)
        if ctx.get(f"signer/{kid}") is not None:
            raise Rejected(f"document signer {kid} is already on the trust list")
        body |= {"certificate": certificate, "country": country, "iss": iss, "kid": kid}
    else:
        signer = ctx.get(f"signer/{kid}")
        if not isinstance(signer, dict) or signer["org"] != org or signer["status"] != "active":
            raise Rejected(f"{org} has no active document signer {kid!r}")
        body |= {"kid": kid}
    change_id = ctx.tx_id[:16]
    record = {
        **body,
        "change_id": change_id,
        "digest": digest_of(body),
        "status": PENDING,
        "proposed_by": ctx.caller.id,
        "proposed_at": ctx.timestamp,
        "approved_by": [],
    }
    ctx.put(change_key(change_id), record)
    ctx.emit("trust_change_proposed", {k: record[k] for k in ("change_id", "action", "org", "kid")})
    return record


def approve(ctx: Context, *, change_id: str, digest: str) -> dict[str, Any]:
    """Record the caller's organisation's approval of a change (of exactly ``digest``);
    the approval that makes a majority of the members applies it."""
    record = ctx.get(change_key(change_id))
    if not isinstance(record, dict):
        raise Rejected(f"no trust-list change {change_id}")
    if record["status"] != PENDING:
        raise Rejected(f"trust-list change {change_id} is {record['status']} already")
    if record["digest"] != digest:
        raise Rejected(f"trust-list change {change_id} has digest {record['digest']}, not {digest}")
    prefix = approvals_prefix(change_id)
    body = {"change_id": change_id, "digest": digest}
    record_approval(ctx, prefix, body)
    orgs = agreeing_orgs(recorded_approvals(ctx, prefix), body)
    # Rewriting the proposal makes two approvals in one block conflict (MVCC), so none
    # is lost and the one that makes the majority applies the change exactly once.
    record = {**record, "approved_by": orgs}
    ctx.emit("trust_change_approved", {"change_id": change_id, "by": ctx.caller.org})
    if approved(majority_policy(ctx.members()), orgs):
        record |= {"status": APPLIED, "applied_at": ctx.timestamp, "applied_tx": ctx.tx_id}
        _apply(ctx, record)
        named = {k: record[k] for k in ("change_id", "action", "org", "kid")}
        ctx.emit("trust_list_changed", named)
    ctx.put(change_key(change_id), record)
    return record


def _apply(ctx: Context, change: dict[str, Any]) -> None:
    org, kid = change["org"], change["kid"]
    issuer = ctx.get(f"issuer/{org}")
    if change["action"] == "add-signer":
        public = signer_certificate(change["certificate"]).public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)  # signer_certificate checks it
        jwk = Jwk.of(public, use="sig", alg="ES256")
        ctx.put(f"signer/{kid}", {
            "kid": kid, "org": org, "certificate": change["certificate"],
            "country": change["country"], "iss": change["iss"], "jwk": dict(jwk.members),
            "status": "active", "added_at": ctx.timestamp, "added_tx": ctx.tx_id,
        })  # fmt: skip
        kids = sorted({*(issuer or {}).get("signers", []), kid})
        member = ctx.organisation(org) or {}
        ctx.put(f"issuer/{org}", {
            "org": org, "name": member.get("name", org), "kind": member.get("kind", ""),
            "country": change["country"], "iss": change["iss"], "signers": kids,
        })  # fmt: skip
        return
    signer = ctx.get(f"signer/{kid}")
    if not isinstance(signer, dict) or signer["status"] != "active":
        raise Rejected(f"document signer {kid} is not active")
    ctx.put(f"signer/{kid}", {
        **signer, "status": "withdrawn", "withdrawn_at": ctx.timestamp, "withdrawn_tx": ctx.tx_id,
    })  # fmt: skip
    if isinstance(issuer, dict):
        ctx.put(f"issuer/{org}", {**issuer, "signers": [k for k in issuer["signers"] if k != kid]})


def active_signer(ctx: Context, org: str, kid: str) -> dict[str, Any]:
    """``org``'s active document signer ``kid``; Rejected if it is not on the trust list."""
    signer = ctx.get(f"signer/{kid}")
    if not isinstance(signer, dict) or signer["org"] != org:
        raise Rejected(f"{kid!r} is not a document signer of {org} on the trust list")
    if signer["status"] != "active":
        raise Rejected(f"document signer {kid} of {org} was withdrawn from the trust list")
    return signer


def set_list_key(ctx: Context, *, jwk: dict[str, Any]) -> dict[str, Any]:
    """Record the commission's public key that signs exported trust lists."""
    try:
        key = Jwk.from_json(jwk)
    except MalformedEncoding as exc:
        raise InvalidArguments(str(exc), [{"field": "jwk", "message": str(exc)}]) from None
    if not isinstance(key.key, ec.EllipticCurvePublicKey):
        raise InvalidArguments("a P-256 key", [{"field": "jwk", "message": "a P-256 key"}])
    public = {k: v for k, v in key.members.items() if k in ("kty", "crv", "x", "y")}
    record = {"jwk": public, "kid": key.thumbprint(), "set_by": ctx.caller.id,
              "set_tx": ctx.tx_id, "set_at": ctx.timestamp}  # fmt: skip
    ctx.put("trust-list-key", record)
    ctx.emit("trust_list_key_set", {"kid": record["kid"]})
    return record
