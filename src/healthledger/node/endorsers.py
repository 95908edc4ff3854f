"""The identities a peer endorses with, and what it keeps per committed height to choose
and check them: the validator resolving identities and policies through the peer's
``HeightMemo``, the endorsers chosen for a proposal's policies (kept per question), and
the own-endorsement rule (every registered, unrevoked peer identity, for another
organisation's gateway)."""

from __future__ import annotations

from collections.abc import Sequence

from healthledger.contracts.policy import Policy, choose_endorsers_indexed, satisfied
from healthledger.contracts.rules import (
    MEMO_MAX_ENTRIES,
    HeightMemo,
    MembershipResolver,
    PolicyEndorsementRule,
)
from healthledger.crypto.keys import SigningKey, VerifiedSignatures
from healthledger.ledger.state import StateView
from healthledger.ledger.store import LedgerStore
from healthledger.ledger.transaction import (
    Endorsement,
    ProposalResponse,
    SignedProposal,
    endorsement_payload,
    sign_endorsement,
)
from healthledger.ledger.validation import Validator, check_signature
from healthledger.node.errors import EndorsementFailed

PEER_ROLE = "peer"
"""The role of the identities a peer endorses with."""


def new_validator(
    memo: HeightMemo | None = None, signatures: VerifiedSignatures | None = None
) -> Validator:
    """The validator every peer uses; ``memo`` (bound to the peer's store) keeps
    identities and definitions per committed height, ``signatures`` the checks the
    peer already made."""
    return Validator(
        identities=MembershipResolver(memo),
        endorsement=PolicyEndorsementRule(memo),
        signature_check=check_signature if signatures is None else signatures.check,
    )


def replay_validator(store: LedgerStore) -> Validator:
    """The validator every peer uses, keeping per height what it derives from ``store``
    (a fresh store a ledger is replayed into, as by the offline audit)."""
    return new_validator(HeightMemo(store))


class Endorsers:
    """A peer's endorsing identities: which of them sign a proposal, and their
    signatures, remembered in ``signatures`` as verified."""

    def __init__(
        self,
        endorsers: Sequence[tuple[str, SigningKey]],
        *,
        resolver: MembershipResolver,
        signatures: VerifiedSignatures,
    ) -> None:
        """``resolver`` reads identities (through the peer's height memo)."""
        self._endorsers = list(endorsers)
        self._endorser_keys = {identity_id: key.public_bytes() for identity_id, key in endorsers}
        """Each endorsing identity's raw public key, to remember the signatures it makes."""
        self._resolver = resolver
        self._signatures = signatures
        self._choices: dict[tuple[tuple[Policy, ...], tuple[tuple[str, str], ...]], tuple[int, ...]]
        self._choices = {}
        """Endorsers chosen per policies and available (org, role)s (_choose)."""

    def for_policies(
        self, policies: tuple[Policy, ...], state: StateView
    ) -> list[tuple[str, SigningKey]]:
        """The registered, unrevoked identities to sign with so that every policy is
        satisfied; EndorsementFailed if none do."""
        available = []
        for identity_id, key in self._endorsers:
            identity = self._resolver.resolve(identity_id, state)
            if identity is not None and not identity.revoked:
                available.append(((identity.org, identity.role), identity_id, key))
        chosen = self._choose(policies, tuple(a[0] for a in available))
        return [(available[i][1], available[i][2]) for i in chosen]

    def _choose(
        self, policies: tuple[Policy, ...], roles: tuple[tuple[str, str], ...]
    ) -> tuple[int, ...]:
        """Indexes of the endorsers (by their (org, role), in this peer's order) to sign
        with so that every policy is satisfied; EndorsementFailed if none do. The answer
        depends on nothing else, and most calls ask the same question: kept."""
        chosen = self._choices.get((policies, roles))
        if chosen is not None:
            return chosen
        picks: list[int] = []
        # Narrow per-key policies first, so a broad contract policy can reuse their endorsers.
        for policy in reversed(policies):
            if satisfied(policy, [roles[i] for i in picks]):
                continue
            order = picks + [i for i in range(len(roles)) if i not in picks]
            picked = choose_endorsers_indexed(policy, [roles[i] for i in order])
            if picked is None:
                raise EndorsementFailed(f"this peer cannot satisfy the endorsement policy {policy}")
            picks.extend(order[i] for i in picked if order[i] not in picks)
        if len(self._choices) >= MEMO_MAX_ENTRIES:
            self._choices.clear()
        chosen = self._choices[(policies, roles)] = tuple(picks)
        return chosen

    def own(self, state: StateView) -> list[tuple[str, SigningKey]]:
        """Every registered, unrevoked peer identity this peer holds, whether or not
        they satisfy the policies alone (the answer to another organisation's gateway,
        which gathers the rest); EndorsementFailed if there is none."""
        own = []
        for identity_id, key in self._endorsers:
            identity = self._resolver.resolve(identity_id, state)
            if identity is not None and not identity.revoked and identity.role == PEER_ROLE:
                own.append((identity_id, key))
        if not own:
            raise EndorsementFailed("this peer holds no registered, unrevoked peer identity")
        return own

    def sign(
        self,
        signed: SignedProposal,
        response: ProposalResponse,
        endorsers: Sequence[tuple[str, SigningKey]],
    ) -> tuple[Endorsement, ...]:
        """Endorse ``response`` as each of ``endorsers`` and remember each signature as
        verified under its key's own public key (the precheck and the block check it
        again only against a certificate naming another key)."""
        endorsements = []
        for endorser, key in endorsers:
            endorsement = sign_endorsement(signed.tx_id, response, endorser=endorser, key=key)
            self._signatures.made(
                self._endorser_keys[endorser],
                endorsement.signature,
                endorsement_payload(signed.tx_id, response),
            )
            endorsements.append(endorsement)
        return tuple(endorsements)


__all__ = ["PEER_ROLE", "Endorsers", "new_validator", "replay_validator"]
