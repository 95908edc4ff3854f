"""What a proposal to admit a new organisation must hold, checked before anything
is written: the organisation's id, name, kind, roles, attributes and GS1 company
prefixes, its CA
certificate, and the certificates of its first admin and peer, issued by that CA
(without them nobody of the new organisation could ever sign)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from healthledger.contracts.errors import Rejected
from healthledger.contracts.system.prefixes import checked_prefixes
from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.certs import Certificate, load_certificate, verify_issued_by
from healthledger.crypto.errors import CertificateError
from healthledger.ledger.transaction import IDENTITY_RE, NAME_RE

ORGANISATION_KINDS = (
    "commission",
    "cdc",
    "hospital",
    "manufacturer",
    "distributor",
    "pharmacy",
    "insurer",
    "charity",
    "regulator",
)
FIRST_ROLES = ("admin", "peer")
"""Roles every admitted organisation holds: those of its first identities."""
CA_ROLE = "ca"
MAX_ROLES = 32
MAX_ATTRIBUTES = 32
MAX_NAME = 200
MAX_ATTRIBUTE_VALUE = 256


def admission_proposal(
    *,
    org: str,
    name: str,
    kind: str,
    roles: Sequence[str],
    attributes: Mapping[str, str],
    ca_cert: str,
    admin_cert: str,
    peer_cert: str,
    at_ms: int,
    gs1_prefixes: Sequence[str] = (),
) -> dict[str, Any]:
    """The checked content of a proposal to admit ``org``, certificates in their
    normalised PEM; Rejected naming the first thing wrong. ``at_ms``: every
    certificate must be valid then."""
    if not NAME_RE.match(org):
        raise Rejected(f"bad organisation id {org!r}: lower-case letters, digits, - and _")
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise Rejected(f"the organisation's name must be 1 to {MAX_NAME} characters")
    if kind not in ORGANISATION_KINDS:
        raise Rejected(f"kind {kind!r} is not one of {', '.join(ORGANISATION_KINDS)}")
    if len(roles) > MAX_ROLES:
        raise Rejected(f"at most {MAX_ROLES} roles")
    for role in roles:
        if not NAME_RE.match(role) or role == CA_ROLE:
            raise Rejected(f"bad role {role!r}")
    if len(attributes) > MAX_ATTRIBUTES:
        raise Rejected(f"at most {MAX_ATTRIBUTES} attributes")
    for key, value in attributes.items():
        if not NAME_RE.match(key) or len(value) > MAX_ATTRIBUTE_VALUE:
            raise Rejected(f"bad attribute {key!r}: a name and at most 256 characters")
    prefixes = checked_prefixes(gs1_prefixes)
    ca = _certificate("ca_cert", ca_cert, at_ms)
    if not ca.is_ca:
        raise Rejected("ca_cert is not a CA certificate")
    if ca.org != org:
        raise Rejected(f"ca_cert is the CA of {ca.org}, not of {org}")
    admin = _identity_cert("admin_cert", admin_cert, org=org, role="admin", ca=ca, at_ms=at_ms)
    peer = _identity_cert("peer_cert", peer_cert, org=org, role="peer", ca=ca, at_ms=at_ms)
    if admin.name == peer.name:
        raise Rejected("admin_cert and peer_cert name the same identity")
    return {
        "org": org,
        "name": name,
        "kind": kind,
        "roles": sorted({*FIRST_ROLES, *roles}),
        "attributes": dict(sorted(attributes.items())),
        "gs1_prefixes": prefixes,
        "ca_cert": ca.pem,
        "admin_cert": admin.pem,
        "peer_cert": peer.pem,
    }


def proposal_digest(proposal: Mapping[str, Any], *, proposed_in: str) -> str:
    """Hex SHA-256 naming one proposal (its content and the transaction that made
    it): what approvers approve, so an approval never counts for another proposal."""
    body = canonical_json({**proposal, "proposed_in": proposed_in})
    return hashlib.sha256(body).hexdigest()


def _certificate(field: str, pem: str, at_ms: int) -> Certificate:
    try:
        cert = load_certificate(pem)
    except CertificateError as exc:
        raise Rejected(f"{field}: {exc}") from exc
    if not cert.valid_at(at_ms):
        raise Rejected(f"{field} is not valid now (expired or not yet valid)")
    return cert


def _identity_cert(
    field: str, pem: str, *, org: str, role: str, ca: Certificate, at_ms: int
) -> Certificate:
    cert = _certificate(field, pem, at_ms)
    if cert.org != org:
        raise Rejected(f"{field} is a certificate of {cert.org}, not of {org}")
    if cert.is_ca or cert.role != role:
        raise Rejected(f"{field} must have role {role!r}, not {cert.role!r}")
    if not IDENTITY_RE.match(f"{org}/{cert.name}"):
        raise Rejected(f"{field} names an identity {cert.name!r} that cannot sign")
    try:
        verify_issued_by(cert, ca)
    except CertificateError as exc:
        raise Rejected(f"{field}: {exc}") from exc
    return cert
