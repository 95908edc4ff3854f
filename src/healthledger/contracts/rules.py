"""The ledger's view of membership and policies: identity resolution and the
endorsement rule used by every peer's validator (ledger.validation protocols)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from healthledger.contracts.context import KEY_POLICY_PREFIX
from healthledger.contracts.errors import PolicyError
from healthledger.contracts.policy import Policy, parse_policy, satisfied
from healthledger.crypto.certs import Certificate, load_certificate, verify_issued_by
from healthledger.crypto.errors import CertificateError
from healthledger.crypto.keys import load_public_key
from healthledger.ledger.state import StateView
from healthledger.ledger.transaction import KeyWrite, Transaction, ValidationCode
from healthledger.ledger.validation import Identity

MEMBERSHIP = "membership"
LIFECYCLE = "lifecycle"


def org_key(org: str) -> str:
    """Membership state key of an organisation."""
    return f"org/{org}"


def identity_key(identity_id: str) -> str:
    """Membership state key of an identity (``org/name``)."""
    return f"identity/{identity_id}"


def definition_key(contract: str) -> str:
    """Lifecycle state key of a contract's committed definition."""
    return f"contract/{contract}"


@lru_cache(maxsize=4096)
def _parsed(pem: str) -> Certificate:
    return load_certificate(pem)


@lru_cache(maxsize=4096)
def _chain_ok(cert_pem: str, ca_pem: str) -> bool:
    try:
        verify_issued_by(_parsed(cert_pem), _parsed(ca_pem))
    except CertificateError:
        return False
    return True


class MembershipResolver:
    """Resolves identities from the membership contract's state."""

    def resolve(self, identity_id: str, state: StateView) -> Identity | None:
        """The identity, if registered with a certificate issued by its org's CA."""
        record = state.get_state(MEMBERSHIP, identity_key(identity_id))
        if record is None or not isinstance(record.value, dict):
            return None
        org_id = identity_id.split("/", 1)[0]
        org = state.get_state(MEMBERSHIP, org_key(org_id))
        if org is None or not isinstance(org.value, dict):
            return None
        cert_pem, ca_pem = record.value.get("cert"), org.value.get("ca_cert")
        if not isinstance(cert_pem, str) or not isinstance(ca_pem, str):
            return None
        return _identity(identity_id, cert_pem, ca_pem, record.value.get("status") == "revoked")

    def touches_membership(self, ns: str) -> bool:
        """Membership writes change identities."""
        return ns == MEMBERSHIP


@lru_cache(maxsize=4096)
def _identity(identity_id: str, cert_pem: str, ca_pem: str, revoked: bool) -> Identity | None:
    try:
        cert = _parsed(cert_pem)
    except CertificateError:
        return None
    if not _chain_ok(cert_pem, ca_pem) or f"{cert.org}/{cert.name}" != identity_id:
        return None
    return Identity(
        id=identity_id,
        org=cert.org,
        role=cert.role,
        attributes=cert.attributes,
        public_key=load_public_key(cert.public_key),
        not_before_ms=cert.not_before_ms,
        not_after_ms=cert.not_after_ms,
        revoked=revoked,
    )


@dataclass(frozen=True)
class Requirement:
    """The policies a transaction must satisfy, or why it cannot be endorsed at all."""

    policies: tuple[Policy, ...]
    failure: ValidationCode | None = None
    reason: str = ""


def contract_definition(state: StateView, contract: str) -> dict[str, Any] | None:
    """The committed lifecycle definition of ``contract``, or None."""
    record = state.get_state(LIFECYCLE, definition_key(contract))
    if record is None or not isinstance(record.value, dict):
        return None
    return record.value


def requirement(
    state: StateView, contract: str, function: str, writes: Sequence[KeyWrite]
) -> Requirement:
    """Which endorsement policies govern calling ``contract.function`` with ``writes``."""
    definition = contract_definition(state, contract)
    if definition is None:
        return Requirement((), ValidationCode.UNKNOWN_CONTRACT, f"{contract} is not deployed")
    functions = definition.get("functions")
    text = functions.get(function) if isinstance(functions, dict) else None
    try:
        policies = [parse_policy(text or definition["policy"])]
        for write in writes:
            if write.ns != contract:
                return Requirement(
                    (), ValidationCode.ILLEGAL_WRITE, f"{contract} wrote namespace {write.ns}"
                )
            key = write.key.removeprefix(KEY_POLICY_PREFIX)
            record = state.get_state(contract, KEY_POLICY_PREFIX + key)
            if record is not None and isinstance(record.value, str):
                policies.append(parse_policy(record.value))
    except (PolicyError, KeyError) as exc:
        return Requirement((), ValidationCode.ENDORSEMENT_POLICY_FAILURE, str(exc))
    return Requirement(tuple(dict.fromkeys(policies)))


class PolicyEndorsementRule:
    """Every peer's check that a transaction's endorsers satisfy its policies."""

    def check(
        self, tx: Transaction, endorsers: Sequence[Identity], state: StateView
    ) -> ValidationCode | None:
        """None if the function, contract and per-key policies are all satisfied."""
        need = requirement(
            state, tx.proposal.contract, tx.proposal.function, tx.response.rwset.writes
        )
        if need.failure is not None:
            return need.failure
        signers = [(e.org, e.role) for e in endorsers]
        if all(satisfied(policy, signers) for policy in need.policies):
            return None
        return ValidationCode.ENDORSEMENT_POLICY_FAILURE
