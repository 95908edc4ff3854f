"""The validation pipeline: every reason code, and an invalid transaction changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from msgspec.structs import replace

from healthledger.crypto.keys import SigningKey
from healthledger.ledger.transaction import (
    KeyWrite,
    Proposal,
    ProposalResponse,
    ReadWriteSet,
    SignedProposal,
    Transaction,
    ValidationCode,
    sign_endorsement,
)
from healthledger.node.embedded import EmbeddedNode

HOSPITAL = "gz-first-hospital/dr-li"
PEER = "gz-first-hospital/peer0"


def endorsed(node: EmbeddedNode, identity: str, function: str, **args: Any) -> Transaction:
    return node.peer.endorse(node.propose(identity, "notebook", function, args))


def append(node: EmbeddedNode, *txs: Transaction, timestamp: int | None = None) -> list[str]:
    block = node.peer.chain.append(list(txs), timestamp=timestamp or node.clock())
    return [str(c) for c in block.codes]


def value(node: EmbeddedNode, key: str) -> Any:
    item = node.peer.store.get_state("notebook", key)
    return None if item is None else item.value


def reendorse(
    node: EmbeddedNode, signed: SignedProposal, response: ProposalResponse, endorser: str = PEER
) -> Transaction:
    entry = node.keystore.get(endorser)
    assert entry is not None
    return Transaction(
        signed,
        response,
        (sign_endorsement(signed.tx_id, response, endorser=endorser, key=entry.key),),
    )


def test_valid_transaction_commits_its_writes(idle_node: EmbeddedNode) -> None:
    assert append(idle_node, endorsed(idle_node, HOSPITAL, "put", key="a", value=1)) == ["VALID"]
    assert value(idle_node, "a")["value"] == 1


def test_duplicate_in_one_block_and_across_blocks(idle_node: EmbeddedNode) -> None:
    tx = endorsed(idle_node, HOSPITAL, "put", key="a", value=1)
    assert append(idle_node, tx, tx) == ["VALID", "DUPLICATE_TXID"]
    assert append(idle_node, tx) == ["DUPLICATE_TXID"]


def test_unknown_creator(idle_node: EmbeddedNode) -> None:
    stranger = SigningKey.generate()
    proposal = Proposal(
        "notebook",
        "put",
        {"key": "a", "value": 1},
        "gz-first-hospital/ghost",
        "0" * 32,
        idle_node.clock(),
    )
    signed = SignedProposal.sign(proposal, stranger)
    model = endorsed(idle_node, HOSPITAL, "put", key="a", value=1)
    assert append(idle_node, reendorse(idle_node, signed, model.response)) == ["UNKNOWN_IDENTITY"]
    assert value(idle_node, "a") is None


def test_forged_proposal_signature(idle_node: EmbeddedNode) -> None:
    tx = endorsed(idle_node, HOSPITAL, "put", key="a", value=1)
    forged = bytearray(tx.signed_proposal.signature)
    forged[5] ^= 1
    bad = replace(tx, signed_proposal=replace(tx.signed_proposal, signature=bytes(forged)))
    assert append(idle_node, reendorse(idle_node, bad.signed_proposal, tx.response)) == [
        "BAD_SIGNATURE"
    ]
    assert value(idle_node, "a") is None


def test_signature_by_another_identity_key(idle_node: EmbeddedNode) -> None:
    tx = endorsed(idle_node, HOSPITAL, "put", key="a", value=1)
    other = idle_node.keystore.get("sz-peoples-hospital/dr-zhang")
    assert other is not None
    signed = SignedProposal.sign(tx.proposal, other.key)
    assert append(idle_node, reendorse(idle_node, signed, tx.response)) == ["BAD_SIGNATURE"]


def test_forged_endorsement(idle_node: EmbeddedNode) -> None:
    tx = endorsed(idle_node, HOSPITAL, "put", key="a", value=1)
    sig = bytearray(tx.endorsements[0].signature)
    sig[0] ^= 0x80
    bad = replace(tx, endorsements=(replace(tx.endorsements[0], signature=bytes(sig)),))
    assert append(idle_node, bad) == ["BAD_ENDORSEMENT"]


def test_response_altered_after_endorsement(idle_node: EmbeddedNode) -> None:
    tx = endorsed(idle_node, HOSPITAL, "put", key="a", value=1)
    write = tx.response.rwset.writes[0]
    altered = replace(
        tx.response,
        rwset=replace(tx.response.rwset, writes=(replace(write, value={"value": 10**6}),)),
    )
    assert append(idle_node, replace(tx, response=altered)) == ["BAD_ENDORSEMENT"]
    assert value(idle_node, "a") is None


def test_revoked_creator_and_expired_certificate(idle_node: EmbeddedNode) -> None:
    before = endorsed(idle_node, HOSPITAL, "put", key="a", value=1)
    revoke = idle_node.peer.endorse(
        idle_node.propose(
            "gz-first-hospital/admin",
            "membership",
            "revoke_identity",
            {"identity": HOSPITAL, "reason": "lost badge"},
        )
    )
    assert append(idle_node, revoke, before) == ["VALID", "IDENTITY_REVOKED"]
    late = endorsed(idle_node, "sz-peoples-hospital/dr-zhang", "put", key="b", value=1)
    far_future = idle_node.clock() + 10 * 365 * 24 * 3600 * 1000
    assert append(idle_node, late, timestamp=far_future) == ["CERTIFICATE_EXPIRED"]


def test_function_policy_needs_both_organisations(idle_node: EmbeddedNode) -> None:
    tx = endorsed(idle_node, HOSPITAL, "confirm", key="c")
    assert {e.endorser for e in tx.endorsements} == {"gd-cdc/peer0", "gd-commission/peer0"}
    one_only = replace(tx, endorsements=tx.endorsements[:1])
    assert append(idle_node, one_only) == ["ENDORSEMENT_POLICY_FAILURE"]
    # The id is spent even by an invalid occurrence: a fresh proposal is needed.
    assert append(idle_node, tx) == ["DUPLICATE_TXID"]
    assert append(idle_node, endorsed(idle_node, HOSPITAL, "confirm", key="c")) == ["VALID"]


def test_endorsement_by_a_non_peer_role_fails_policy(idle_node: EmbeddedNode) -> None:
    tx = endorsed(idle_node, HOSPITAL, "put", key="a", value=1)
    by_doctor = reendorse(idle_node, tx.signed_proposal, tx.response, endorser=HOSPITAL)
    assert append(idle_node, by_doctor) == ["ENDORSEMENT_POLICY_FAILURE"]


def test_key_policy_applies_to_later_writes(idle_node: EmbeddedNode) -> None:
    lock = endorsed(idle_node, HOSPITAL, "lock", key="k", policy="'gd-mpa.peer'")
    assert append(idle_node, lock) == ["VALID"]
    tx = endorsed(idle_node, HOSPITAL, "put", key="k", value=1)
    assert [e.endorser for e in tx.endorsements] == ["gd-mpa/peer0"]
    wrong = reendorse(idle_node, tx.signed_proposal, tx.response, endorser=PEER)
    assert append(idle_node, wrong) == ["ENDORSEMENT_POLICY_FAILURE"]
    assert append(idle_node, endorsed(idle_node, HOSPITAL, "put", key="k", value=2)) == ["VALID"]


def test_write_outside_own_namespace_is_illegal(idle_node: EmbeddedNode) -> None:
    tx = endorsed(idle_node, HOSPITAL, "put", key="a", value=1)
    sneaky = ProposalResponse(
        ReadWriteSet(writes=(KeyWrite("membership", "identity/gz-first-hospital/x", {"a": 1}),))
    )
    assert append(idle_node, reendorse(idle_node, tx.signed_proposal, sneaky)) == ["ILLEGAL_WRITE"]
    assert idle_node.peer.store.get_state("membership", "identity/gz-first-hospital/x") is None


def test_unknown_contract(idle_node: EmbeddedNode) -> None:
    signed = idle_node.propose(HOSPITAL, "nosuch", "put", {})
    response = ProposalResponse(ReadWriteSet(writes=(KeyWrite("nosuch", "a", 1),)))
    assert append(idle_node, reendorse(idle_node, signed, response)) == ["UNKNOWN_CONTRACT"]


def test_mvcc_conflict_in_one_block_and_later(idle_node: EmbeddedNode) -> None:
    assert append(idle_node, endorsed(idle_node, HOSPITAL, "put", key="n", value=1)) == ["VALID"]
    first = endorsed(idle_node, HOSPITAL, "add", key="n", amount=1)
    second = endorsed(idle_node, HOSPITAL, "add", key="n", amount=10)
    third = endorsed(idle_node, HOSPITAL, "add", key="n", amount=100)
    assert append(idle_node, first, second) == ["VALID", "MVCC_READ_CONFLICT"]
    assert append(idle_node, third) == ["MVCC_READ_CONFLICT"]
    assert value(idle_node, "n")["value"] == 2


def test_invalid_transactions_stay_in_block_with_codes(idle_node: EmbeddedNode) -> None:
    good = endorsed(idle_node, HOSPITAL, "put", key="a", value=1)
    block = idle_node.peer.chain.append([good, good], timestamp=idle_node.clock())
    stored = idle_node.peer.block(block.height)
    assert [t.tx_id for t in stored.transactions] == [good.tx_id, good.tx_id]
    assert [str(c) for c in stored.codes] == ["VALID", "DUPLICATE_TXID"]
    assert stored.header == block.header


@pytest.mark.parametrize("code", list(ValidationCode))
def test_every_code_is_covered(code: ValidationCode) -> None:
    covered = {
        "VALID",
        "DUPLICATE_TXID",
        "UNKNOWN_IDENTITY",
        "BAD_SIGNATURE",
        "BAD_ENDORSEMENT",
        "IDENTITY_REVOKED",
        "CERTIFICATE_EXPIRED",
        "ENDORSEMENT_POLICY_FAILURE",
        "ILLEGAL_WRITE",
        "UNKNOWN_CONTRACT",
        "MVCC_READ_CONFLICT",
        # MALFORMED is for wire transactions that do not parse (ordering from a stream).
        "MALFORMED",
    }
    assert str(code) in covered
