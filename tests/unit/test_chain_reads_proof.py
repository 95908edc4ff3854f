"""Inclusion proofs hash their transaction from a slice of the stored block, checked
against the global log's leaf; where the slice guesses wrong, the whole block is parsed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, transaction
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.crypto.hashing import sha256
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.chain_reads import transaction_slice
from healthledger.node.consortium import OrgPlan
from healthledger.node.embedded import EmbeddedNode

ORG = "proof-org"


class RecordContract(Contract):
    """Keeps a list of objects under a key: objects a transaction's bytes carry nested."""

    name = "records"
    policy = "OR('*.peer')"

    @transaction()
    def put(self, ctx: Context, *, key: str, value: list[dict[str, int]]) -> None:
        """Set ``key`` to ``value``."""
        ctx.put(key, value)


def test_proofs_hash_the_right_transaction_even_where_the_slice_guesses_wrong(
    tmp_path: Path,
) -> None:
    node = EmbeddedNode.create(
        tmp_path / "data",
        contracts=(*SYSTEM_CONTRACTS, RecordContract),
        plans=(OrgPlan(ORG, "Proof organisation", "hospital", (("client", "client"),)),),
        founder=f"{ORG}/admin",
    )
    # The second value holds the bytes a transaction begins with, nested: slices of
    # the transactions after it are taken one transaction too early.
    values: list[list[dict[str, Any]]] = [
        [{"a": 1}],
        [{"a": 0}, {"endorsements": 1}],
        [{"a": 2}],
        [{"a": 3}],
    ]
    txs = [
        node.peer.endorse(
            node.propose(f"{ORG}/client", "records", "put", {"key": f"k{i}", "value": v})
        )
        for i, v in enumerate(values)
    ]
    with node:
        receipts = [f.result(timeout=30) for f in node.peer.submit_many(txs, precheck=False)]
        assert {r.code for r in receipts} == {ValidationCode.VALID}
        heights = {node.peer.locate(tx.tx_id).height for tx in txs}
        assert len(heights) == 1, "the four transactions share a block"
        body = node.peer.store.block_bytes(heights.pop())
        slices = [transaction_slice(body, node.peer.locate(tx.tx_id).index) for tx in txs]
        assert slices[0] == txs[0].canonical
        assert slices[1] != txs[1].canonical and slices[3] != txs[3].canonical
        for tx in txs:
            proof = node.peer.inclusion_proof(tx.tx_id)
            assert proof["txHash"] == sha256(tx.canonical).hex()
    assert transaction_slice(b'{"codes":[]}', 0) is None
