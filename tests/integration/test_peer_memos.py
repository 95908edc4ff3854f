"""What a peer remembers to go faster, and that it never lets anything through: the
signatures it verified (a signature one byte off is refused even after the good one
was seen), the identities it keeps across blocks that do not touch membership (a
revocation still takes effect at the next block), and the solo orderer that cuts a
block as soon as nothing is waiting."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from msgspec.structs import replace

from healthledger.contracts.errors import AccessDenied
from healthledger.ledger.transaction import Transaction, ValidationCode, sign_endorsement
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.errors import BadSignature, TransactionRefused
from healthledger.ordering.orderer import Batch, OrderingError
from healthledger.ordering.solo import SoloOrderer

DOCTOR = "gz-first-hospital/dr-li"
ADMIN = "gz-first-hospital/admin"
PEER = "gz-first-hospital/peer0"


def _endorsed(node: EmbeddedNode, key: str) -> Transaction:
    return node.peer.endorse(node.propose(DOCTOR, "notebook", "put", {"key": key, "value": 1}))


def _codes(node: EmbeddedNode, *txs: Transaction) -> list[str]:
    return [str(c) for c in node.peer.chain.append(list(txs), timestamp=node.clock()).codes]


def _one_byte_off(signature: bytes, index: int) -> bytes:
    changed = bytearray(signature)
    changed[index] ^= 0x01
    return bytes(changed)


@pytest.mark.parametrize("index", [0, 31, 32, 63])
def test_a_proposal_signature_one_byte_off_is_refused_after_the_good_one_was_seen(
    idle_node: EmbeddedNode, index: int
) -> None:
    good = _endorsed(idle_node, "a")  # its proposal signature is now remembered
    idle_node.peer.precheck(good)  # and checked (from the memo) again
    forged = replace(
        good.signed_proposal, signature=_one_byte_off(good.signed_proposal.signature, index)
    )
    with pytest.raises(BadSignature):
        idle_node.peer.check_proposal(forged)
    key = idle_node.keystore.get(PEER)
    assert key is not None
    bad = Transaction(
        forged,
        good.response,
        (sign_endorsement(forged.tx_id, good.response, endorser=PEER, key=key.key),),
    )
    with pytest.raises(BadSignature):
        idle_node.peer.precheck(bad)
    assert _codes(idle_node, good) == ["VALID"]  # verified again, at validation
    assert _codes(idle_node, bad) == ["BAD_SIGNATURE"]


@pytest.mark.parametrize("index", [0, 63])
def test_an_endorsement_one_byte_off_is_refused_after_the_good_one_was_seen(
    idle_node: EmbeddedNode, index: int
) -> None:
    good = _endorsed(idle_node, "b")
    idle_node.peer.precheck(good)  # the endorsement signature is now remembered
    endorsement = good.endorsements[0]
    bad = replace(
        good,
        endorsements=(replace(endorsement, signature=_one_byte_off(endorsement.signature, index)),),
    )
    with pytest.raises(TransactionRefused) as refused:
        idle_node.peer.precheck(bad)
    assert refused.value.code is ValidationCode.BAD_ENDORSEMENT
    assert _codes(idle_node, bad) == ["BAD_ENDORSEMENT"]  # (its id is now spent)


def test_identities_are_kept_across_blocks_that_leave_membership_and_a_revocation_still_counts(
    node: EmbeddedNode,
) -> None:
    node.invoke(DOCTOR, "notebook", "put", {"key": "a", "value": 1})
    memo = node.peer.memo
    known = memo.get(("identity", DOCTOR), lambda: None, namespace="membership")
    assert known is not None and known.id == DOCTOR

    def read_again() -> Any:
        raise AssertionError("an identity kept across a notebook block was read again")

    # A block that writes only the notebook: the identity is carried to the next height.
    node.invoke(DOCTOR, "notebook", "put", {"key": "b", "value": 2})
    assert memo.get(("identity", DOCTOR), read_again, namespace="membership") is known

    # A block that writes membership: the identity is read afresh, and the revocation holds.
    node.invoke(ADMIN, "membership", "revoke_identity", {"identity": DOCTOR, "reason": "left"})
    with pytest.raises(AccessDenied):
        node.invoke(DOCTOR, "notebook", "put", {"key": "c", "value": 3})
    again = memo.get(("identity", DOCTOR), lambda: None, namespace="membership")
    assert again is not None and again.revoked


# --- the solo orderer -----------------------------------------------------------------


class _Blocks:
    """What an orderer delivered, for a test to wait on."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self._arrived = threading.Condition()

    def deliver(self, batch: Batch) -> None:
        with self._arrived:
            self.batches.append(batch)
            self._arrived.notify_all()

    def wait_for(self, transactions: int) -> list[int]:
        with self._arrived:
            assert self._arrived.wait_for(
                lambda: sum(len(b.transactions) for b in self.batches) >= transactions, 30
            )
            return [len(b.transactions) for b in self.batches]


def _transactions(node: EmbeddedNode, count: int) -> list[Transaction]:
    return [_endorsed(node, f"o{i}") for i in range(count)]


def test_solo_cuts_a_lone_transaction_at_once_and_keeps_a_submit_many_together(
    idle_node: EmbeddedNode,
) -> None:
    txs = _transactions(idle_node, 41)
    blocks = _Blocks()
    # A batch timeout no test would wait out: only the idle cut can deliver in time.
    orderer = SoloOrderer(batch_timeout_s=3600)
    orderer.start(blocks.deliver)
    try:
        orderer.submit(txs[0])
        assert blocks.wait_for(1) == [1]
        assert orderer.submit_many(txs[1:41]) == [None] * 40
        assert blocks.wait_for(41) == [1, 40]
        assert [tx.tx_id for b in blocks.batches for tx in b.transactions] == [
            tx.tx_id for tx in txs
        ]
    finally:
        orderer.stop()


def test_solo_refuses_past_its_queue_and_delivers_what_it_took_before_stopping(
    idle_node: EmbeddedNode,
) -> None:
    txs = _transactions(idle_node, 12)
    committing, release = threading.Event(), threading.Event()
    blocks = _Blocks()

    def slow_deliver(batch: Batch) -> None:
        committing.set()
        release.wait(30)  # a block still committing: what comes meanwhile waits in the queue
        blocks.deliver(batch)

    orderer = SoloOrderer(max_block_tx=4, max_queue=6)
    orderer.start(slow_deliver)
    orderer.submit(txs[0])  # cut at once (it no longer counts against the queue)
    assert committing.wait(30)
    outcomes = orderer.submit_many(txs[1:12])
    assert outcomes[:6] == [None] * 6
    assert all(isinstance(o, OrderingError) and "full" in str(o) for o in outcomes[6:])
    release.set()
    orderer.stop()  # delivers what it took, in blocks of at most four
    assert blocks.wait_for(7) == [1, 4, 2]
    with pytest.raises(OrderingError):
        orderer.submit(txs[0])
