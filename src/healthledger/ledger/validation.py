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

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from healthledger.crypto.errors import SignatureError
from healthledger.crypto.keys import verify_signature
from healthledger.ledger.state import BulkStateView, OverlayState, StateUpdate, StateView
from healthledger.ledger.transaction import (
    Transaction,
    ValidationCode,
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


SignatureCheck = Callable[[Ed25519PublicKey, bytes, bytes], bool]
"""``(public_key, signature, message) -> True`` if the Ed25519 signature verifies."""

PARALLEL_MIN_SIGNATURES = 32
"""Below this many signatures in a block, starting threads costs more than it saves."""


def check_signature(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """True if ``signature`` is ``public_key``'s Ed25519 signature over ``message``."""
    try:
        verify_signature(public_key, signature, message)
    except SignatureError:
        return False
    return True


class Validator:
    """Validates the transactions of a block against committed state."""

    def __init__(
        self,
        *,
        identities: IdentityResolver,
        endorsement: EndorsementRule,
        signature_check: SignatureCheck = check_signature,
        threads: int | None = None,
    ) -> None:
        """``threads`` (default: one per core) check a block's signatures side by side:
        OpenSSL releases the GIL while it verifies, and verification is most of the work."""
        self._identities = identities
        self._endorsement = endorsement
        self._check = signature_check
        self._threads = max(1, os.cpu_count() or 1) if threads is None else max(1, threads)

    @property
    def identities(self) -> IdentityResolver:
        """How this validator finds identities."""
        return self._identities

    def with_signature_check(self, check: SignatureCheck, *, threads: int = 1) -> Validator:
        """The same rules, with Ed25519 checks made by ``check`` (e.g. looked up among
        checks already made elsewhere) on ``threads`` threads."""
        return Validator(
            identities=self._identities,
            endorsement=self._endorsement,
            signature_check=check,
            threads=threads,
        )

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
        checks = _BlockChecks(self._identities, self._check)
        if self._threads > 1:
            checks.prefetch(transactions, state, timestamp, self._threads)
        overlay = OverlayState(state)
        if len(transactions) > 1 and isinstance(state, BulkStateView):
            # Every read version the block checks, in one round trip.
            reads = [(r.ns, r.key) for tx in transactions for r in tx.response.rwset.reads]
            if reads:
                overlay.prefetch(reads, state.get_states(reads))
        seen: set[str] = set()
        codes: list[ValidationCode] = []
        updates: list[StateUpdate] = []
        for index, tx in enumerate(transactions):
            code = self._validate_tx(tx, overlay, timestamp, seen, is_committed, checks)
            seen.add(tx.tx_id)
            codes.append(code)
            if code is not ValidationCode.VALID:
                continue
            for write in tx.response.rwset.writes:
                update = StateUpdate(
                    write.ns, write.key, write.new_value, write.deletes, (height, index), tx.tx_id
                )
                overlay.apply(update)
                updates.append(update)
                if self._identities.touches_membership(write.ns):
                    checks.forget_identities()
        return BlockValidation(tuple(codes), tuple(updates))

    def _validate_tx(
        self,
        tx: Transaction,
        state: OverlayState,
        timestamp: int,
        seen: set[str],
        is_committed: Callable[[str], bool],
        checks: _BlockChecks,
    ) -> ValidationCode:
        if tx.tx_id in seen or is_committed(tx.tx_id):
            return ValidationCode.DUPLICATE_TXID
        creator = checks.resolve(tx.proposal.creator, state)
        code = _check_signer(creator, timestamp)
        if code is not None:
            return code
        assert creator is not None
        signed = tx.signed_proposal
        if not checks.verify(creator.public_key, signed.signature, signed.signed_bytes):
            return ValidationCode.BAD_SIGNATURE
        endorsers = []
        payload = tx.endorsed_bytes
        for endorsement in unique_endorsers(tx.endorsements):
            endorser = checks.resolve(endorsement.endorser, state)
            if _check_signer(endorser, timestamp) is not None:
                return ValidationCode.BAD_ENDORSEMENT
            assert endorser is not None
            if not checks.verify(endorser.public_key, endorsement.signature, payload):
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


class _BlockChecks:
    """Per-block memo of identities and signature outcomes.

    Identities are cached until a write to a membership namespace, the only writes
    that can change them. Signatures are checked up front, on several threads, for
    the signers the committed state names; the in-order pass reuses an outcome only
    for the same key, signature and message, so a signer changed earlier in the same
    block is still checked against the key it has at its turn.
    """

    def __init__(self, identities: IdentityResolver, check: SignatureCheck) -> None:
        self._identities = identities
        self._check = check
        self._known: dict[str, Identity | None] = {}
        self._outcomes: dict[tuple[bytes, bytes], tuple[Ed25519PublicKey, bool]] = {}

    def resolve(self, identity_id: str, state: StateView) -> Identity | None:
        """The identity as ``state`` has it (cached until forget_identities)."""
        if identity_id in self._known:
            return self._known[identity_id]
        identity = self._identities.resolve(identity_id, state)
        self._known[identity_id] = identity
        return identity

    def forget_identities(self) -> None:
        """Membership changed: resolve identities afresh."""
        self._known.clear()

    def verify(self, public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
        """The outcome of a signature check, made now unless already made."""
        done = self._outcomes.get((signature, message))
        if done is not None and (done[0] is public_key or done[0] == public_key):
            return done[1]
        return self._check(public_key, signature, message)

    def prefetch(
        self, transactions: Sequence[Transaction], state: StateView, timestamp: int, threads: int
    ) -> None:
        """Check, side by side on ``threads`` threads, the signatures of every signer
        that ``state`` (the committed state before the block) knows and accepts."""
        jobs: list[tuple[Ed25519PublicKey, bytes, bytes]] = []
        for tx in transactions:
            creator = self.resolve(tx.proposal.creator, state)
            if creator is None or _check_signer(creator, timestamp) is not None:
                continue
            signed = tx.signed_proposal
            jobs.append((creator.public_key, signed.signature, signed.signed_bytes))
            for endorsement in unique_endorsers(tx.endorsements):
                endorser = self.resolve(endorsement.endorser, state)
                if endorser is not None and _check_signer(endorser, timestamp) is None:
                    jobs.append((endorser.public_key, endorsement.signature, tx.endorsed_bytes))
        if len(jobs) < PARALLEL_MIN_SIGNATURES:
            return
        chunks = [jobs[i::threads] for i in range(threads)]
        results: list[list[bool]] = [[] for _ in chunks]

        def run(i: int) -> None:
            results[i] = [self._check(*job) for job in chunks[i]]

        helpers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(1, threads)]
        for helper in helpers:
            helper.start()
        run(0)
        for helper in helpers:
            helper.join()
        # A helper that failed left its results empty: those signatures are checked in order.
        for chunk, outcomes in zip(chunks, results, strict=True):
            for (public_key, signature, message), ok in zip(chunk, outcomes, strict=False):
                self._outcomes[(signature, message)] = (public_key, ok)


def _check_signer(identity: Identity | None, timestamp: int) -> ValidationCode | None:
    if identity is None:
        return ValidationCode.UNKNOWN_IDENTITY
    if identity.revoked:
        return ValidationCode.IDENTITY_REVOKED
    if not identity.not_before_ms <= timestamp <= identity.not_after_ms:
        return ValidationCode.CERTIFICATE_EXPIRED
    return None
