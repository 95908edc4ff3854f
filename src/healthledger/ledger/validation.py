"""The validation pipeline of ARCHITECTURE.md section 3.

For each transaction of a block, in order: no earlier occurrence of its id, the
creator's certificate known, unrevoked and valid at the block's time, the
proposal signature, each endorsement's signer and signature, the endorsement
policy, and every read version still current (MVCC). A transaction that fails
keeps its place in the block with a reason code and changes nothing.

Peers never re-execute contracts here; who may endorse what is asked of an
injected EndorsementRule, and who an identity is of an injected IdentityResolver,
so the ledger stays free of contract logic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from healthledger.crypto.errors import SignatureError
from healthledger.crypto.keys import verify_signature
from healthledger.ledger.state import OverlayState, StateUpdate, StateView
from healthledger.ledger.transaction import (
    Transaction,
    ValidationCode,
    endorsement_payload,
    unique_endorsers,
)


@dataclass(frozen=True)
class Identity:
    """A registered identity as the ledger sees it at one point of the chain."""

    id: str
    """``org/name``."""
    org: str
    role: str
    attributes: Mapping[str, str]
    public_key: Ed25519PublicKey
    not_before_ms: int
    not_after_ms: int
    revoked: bool


class IdentityResolver(Protocol):
    """Finds an identity in the membership state."""

    def resolve(self, identity_id: str, state: StateView) -> Identity | None:
        """The identity registered as ``identity_id``, or None."""
        ...

    def touches_membership(self, ns: str) -> bool:
        """True if writes to namespace ``ns`` may change identities."""
        ...


class EndorsementRule(Protocol):
    """Decides whether a transaction's endorsers satisfy the policies that govern it."""

    def check(
        self, tx: Transaction, endorsers: Sequence[Identity], state: StateView
    ) -> ValidationCode | None:
        """None if satisfied; otherwise UNKNOWN_CONTRACT or ENDORSEMENT_POLICY_FAILURE."""
        ...


@dataclass(frozen=True)
class BlockValidation:
    """The outcome of validating one block's transactions."""

    codes: tuple[ValidationCode, ...]
    updates: tuple[StateUpdate, ...]


class Validator:
    """Validates the transactions of a block against committed state."""

    def __init__(self, *, identities: IdentityResolver, endorsement: EndorsementRule) -> None:
        self._identities = identities
        self._endorsement = endorsement

    def validate_block(
        self,
        transactions: Sequence[Transaction],
        *,
        state: StateView,
        height: int,
        timestamp: int,
        is_committed: Callable[[str], bool],
    ) -> BlockValidation:
        """Validate ``transactions`` as block ``height`` ordered at ``timestamp``."""
        overlay = OverlayState(state)
        seen: set[str] = set()
        codes: list[ValidationCode] = []
        updates: list[StateUpdate] = []
        for index, tx in enumerate(transactions):
            code = self._validate_tx(tx, overlay, timestamp, seen, is_committed)
            seen.add(tx.tx_id)
            codes.append(code)
            if code is not ValidationCode.VALID:
                continue
            for write in tx.response.rwset.writes:
                update = StateUpdate(
                    write.ns, write.key, write.value, write.delete, (height, index), tx.tx_id
                )
                overlay.apply(update)
                updates.append(update)
        return BlockValidation(tuple(codes), tuple(updates))

    def _validate_tx(
        self,
        tx: Transaction,
        state: OverlayState,
        timestamp: int,
        seen: set[str],
        is_committed: Callable[[str], bool],
    ) -> ValidationCode:
        if tx.tx_id in seen or is_committed(tx.tx_id):
            return ValidationCode.DUPLICATE_TXID
        creator = self._identities.resolve(tx.proposal.creator, state)
        code = _check_signer(creator, timestamp)
        if code is not None:
            return code
        assert creator is not None
        try:
            verify_signature(
                creator.public_key, tx.signed_proposal.signature, tx.signed_proposal.signed_bytes
            )
        except SignatureError:
            return ValidationCode.BAD_SIGNATURE
        endorsers = []
        payload = endorsement_payload(tx.tx_id, tx.response)
        for endorsement in unique_endorsers(tx.endorsements):
            endorser = self._identities.resolve(endorsement.endorser, state)
            if _check_signer(endorser, timestamp) is not None:
                return ValidationCode.BAD_ENDORSEMENT
            assert endorser is not None
            try:
                verify_signature(endorser.public_key, endorsement.signature, payload)
            except SignatureError:
                return ValidationCode.BAD_ENDORSEMENT
            endorsers.append(endorser)
        code = self._endorsement.check(tx, endorsers, state)
        if code is not None:
            return code
        for read in tx.response.rwset.reads:
            current = state.get_state(read.ns, read.key)
            if (None if current is None else current.version) != read.version:
                return ValidationCode.MVCC_READ_CONFLICT
        return ValidationCode.VALID


def _check_signer(identity: Identity | None, timestamp: int) -> ValidationCode | None:
    if identity is None:
        return ValidationCode.UNKNOWN_IDENTITY
    if identity.revoked:
        return ValidationCode.IDENTITY_REVOKED
    if not identity.not_before_ms <= timestamp <= identity.not_after_ms:
        return ValidationCode.CERTIFICATE_EXPIRED
    return None
