"""What another organisation's peer answers to a gateway, and how the gateway checks
it: the endorsed transaction (well-formed, over the same proposal, signed by that
organisation's registered peer), the private values it discloses for the proposal
creator's own collections (each matching its commitment), and a contract's own
refusal told apart from a fault of the peer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from healthledger.contracts.errors import (
    AccessDenied,
    ContractError,
    InvalidArguments,
    PolicyError,
    Rejected,
    UnknownContract,
    UnknownFunction,
)
from healthledger.contracts.rules import MembershipResolver
from healthledger.contracts.runtime import ContractFailure
from healthledger.crypto.errors import CryptoError, SignatureError
from healthledger.crypto.keys import verify_signature
from healthledger.errors import HealthledgerError
from healthledger.ledger.errors import LedgerError
from healthledger.ledger.state import StateView
from healthledger.ledger.transaction import (
    ProposalResponse,
    SignedProposal,
    Transaction,
)
from healthledger.node.endorsers import PEER_ROLE as PEER_ROLE  # the role gateways check for
from healthledger.node.vault import (
    Disclosure,
    DisclosureError,
    collection_org,
    match_disclosures,
)

PRIVATE_FIELD = "private"
"""The field of an endorse answer holding the private values of the creator's
collections (beside the transaction, never in it)."""
CONTRACT_REFUSAL = "contract_refusal"
"""Extension of an endorse problem that is the contract's own refusal (a business
reason), not a fault of the peer."""
CONTRACT_PROBLEMS: Mapping[str, Callable[[str], ContractError]] = {
    "invalid-arguments": InvalidArguments,
    "unknown-contract": UnknownContract,
    "unknown-function": UnknownFunction,
    "access-denied": AccessDenied,
    "policy-error": PolicyError,
    "rejected": Rejected,
    "contract-failure": ContractFailure,
}
"""The contract error each problem type of a contract refusal stands for."""


@dataclass(frozen=True)
class PeerFault:
    """Why one organisation's peer gave no usable endorsement."""

    org: str
    url: str
    reason: str
    error: ContractError | None = None
    """The contract's own refusal, when that is why (a business reason, not a fault)."""

    def __str__(self) -> str:
        return f"the peer of {self.org} ({self.url}) {self.reason}"

    def to_json(self) -> dict[str, str]:
        """The JSON form."""
        return {"org": self.org, "url": self.url, "reason": self.reason}


def contract_refusal(
    faults: Sequence[PeerFault], preferred: Sequence[str] = ()
) -> ContractError | None:
    """The contract error to raise when every fault in ``faults`` is a contract's
    refusal (that of a ``preferred`` organisation's peer first, and one other than "not
    installed" before that); None when any is a real fault."""
    if not faults or any(f.error is None for f in faults):
        return None
    ranked = sorted(
        faults,
        key=lambda f: (isinstance(f.error, UnknownContract), f.org not in preferred),
    )
    return ranked[0].error


def refusal_from_problem(answer: httpx.Response, *, marked: bool = True) -> ContractError | None:
    """The contract error a peer's problem answer stands for, if it is marked as the
    contract's refusal (or, with ``marked=False``, of a contract error's type); None
    otherwise (a fault of the peer)."""
    try:
        body = answer.json()
    except ValueError:
        return None
    return refusal_from_body(body, marked=marked)


def refusal_from_body(body: Any, *, marked: bool = True) -> ContractError | None:
    """As :func:`refusal_from_problem`, from the parsed problem document."""
    if not isinstance(body, dict) or (marked and body.get(CONTRACT_REFUSAL) is not True):
        return None
    slug = str(body.get("type", "")).rsplit("/", 1)[-1]
    make = CONTRACT_PROBLEMS.get(slug)
    detail = body.get("detail")
    if make is None or not isinstance(detail, str):
        return None
    if make is InvalidArguments:
        errors = [
            {
                "field": str(e.get("field", "")).removeprefix("args."),
                "message": str(e.get("message", "")),
            }
            for e in body.get("errors") or []
            if isinstance(e, dict)
        ]
        return InvalidArguments(detail, errors)
    return make(detail)


class BadEndorsement(HealthledgerError):
    """An answer to an endorsement request cannot be used (the reason is the message)."""


# --- checking an answer ------------------------------------------------------------


def check_endorsed(
    raw: Any,
    *,
    org: str,
    signed: SignedProposal,
    reference: ProposalResponse | None,
    state: StateView,
) -> Transaction:
    """The transaction a peer of ``org`` answered with, if it is well-formed, over
    ``signed``, agrees with ``reference`` (when given), and every endorsement on it is
    by a registered, unrevoked peer identity of ``org`` whose signature verifies;
    BadEndorsement naming the first problem otherwise."""
    try:
        tx = Transaction.from_json(raw)
    except (LedgerError, CryptoError, ValueError, TypeError) as exc:
        raise BadEndorsement(f"sent a malformed endorsement: {exc}") from exc
    if tx.signed_proposal.canonical != signed.canonical:
        raise BadEndorsement("endorsed a different proposal")
    if reference is not None and tx.response.canonical != reference.canonical:
        raise BadEndorsement(
            "disagrees with the other endorsers (a different read/write set, events or result)"
        )
    if not tx.endorsements:
        raise BadEndorsement("sent no endorsement")
    resolver = MembershipResolver()
    payload = tx.endorsed_bytes
    for endorsement in tx.endorsements:
        if endorsement.endorser.split("/", 1)[0] != org:
            raise BadEndorsement(f"endorsed as {endorsement.endorser}, not as a peer of {org}")
        identity = resolver.resolve(endorsement.endorser, state)
        if identity is None or identity.revoked or identity.role != PEER_ROLE:
            raise BadEndorsement(
                f"endorsed as {endorsement.endorser}, which is not a registered peer of {org}"
            )
        try:
            verify_signature(identity.public_key, endorsement.signature, payload)
        except SignatureError as exc:
            raise BadEndorsement(
                f"sent an endorsement by {endorsement.endorser} whose signature does not "
                f"verify against its certificate on the ledger ({exc})"
            ) from exc
    return tx


def check_disclosed(raw: Any, tx: Transaction) -> tuple[Disclosure, ...]:
    """The private values a peer returned beside ``tx`` (its ``private`` field), if each
    is well-formed, of a collection of the proposal creator's organisation, and matches
    a salted commitment in the read/write set exactly as the vault computes it;
    BadEndorsement naming the first problem otherwise (never the value)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BadEndorsement(f"sent a malformed endorsement: '{PRIVATE_FIELD}' is not a list")
    creator_org = tx.proposal.creator.split("/", 1)[0]
    try:
        disclosures = tuple(Disclosure.from_json(item) for item in raw)
    except DisclosureError as exc:
        raise BadEndorsement(f"sent a malformed private value: {exc}") from exc
    for disclosure in disclosures:
        if collection_org(disclosure.collection) != creator_org:
            raise BadEndorsement(
                f"returned a private value of collection {disclosure.collection!r}, which "
                f"is not of the proposal creator's organisation ({creator_org})"
            )
    try:
        match_disclosures(disclosures, tx.response.rwset.private)
    except DisclosureError as exc:
        raise BadEndorsement(str(exc)) from exc
    except CryptoError as exc:  # a value outside the canonical profile
        raise BadEndorsement(f"sent a malformed private value: {exc}") from exc
    return disclosures


def problem_detail(answer: httpx.Response) -> str:
    """``status title: detail`` of a problem answer, or the status alone."""
    try:
        body = answer.json()
    except ValueError:
        return f"HTTP {answer.status_code}"
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return f"HTTP {answer.status_code} {body.get('title', '')}: {body['detail']}"
    return f"HTTP {answer.status_code}"
