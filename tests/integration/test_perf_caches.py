"""What the peer remembers between transactions (identities and definitions per
committed height, signatures it verified, private values waiting for one fsync)
never changes an outcome: a revocation, registration or key policy takes effect
exactly where an uncached read would put it."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from healthledger.contracts.errors import AccessDenied
from healthledger.ledger.transaction import SignedProposal, Transaction, ValidationCode
from healthledger.node.consortium import issue_identity
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.errors import BadSignature, DuplicateTransaction
from healthledger.node.peer import Receipt

HOSPITAL = "gz-first-hospital/dr-li"
ADMIN = "gz-first-hospital/admin"


def endorsed(node: EmbeddedNode, identity: str, function: str, **args: object) -> Transaction:
    return node.peer.endorse(node.propose(identity, "notebook", function, dict(args)))


def revocation(node: EmbeddedNode, identity: str) -> Transaction:
    signed = node.propose(
        ADMIN, "membership", "revoke_identity", {"identity": identity, "reason": "lost badge"}
    )
    return node.peer.endorse(signed)


def codes(futures: list[Future[Receipt]]) -> list[str]:
    return [str(f.result(30).code) for f in futures]


def test_a_cached_identity_is_dropped_the_moment_its_revocation_commits(
    node: EmbeddedNode,
) -> None:
    # Resolved, and so remembered, at the current height by all three paths.
    node.peer.check_proposal(node.propose(HOSPITAL, "notebook", "put", {"key": "a", "value": 1}))
    receipt, _ = node.invoke(HOSPITAL, "notebook", "put", {"key": "a", "value": 1})
    assert receipt.code is ValidationCode.VALID
    pending = endorsed(node, HOSPITAL, "put", key="b", value=2)

    revoked, _ = node.invoke(
        ADMIN,
        "membership",
        "revoke_identity",
        {
            "identity": HOSPITAL,
            "reason": "lost badge",
        },
    )
    assert revoked.code is ValidationCode.VALID
    # The very next read after the commit sees the revocation.
    with pytest.raises(AccessDenied, match="revoked"):
        node.peer.check_proposal(node.propose(HOSPITAL, "notebook", "get", {"key": "a"}))
    with pytest.raises(AccessDenied, match="revoked"):
        endorsed(node, HOSPITAL, "put", key="c", value=3)
    # Endorsed before, ordered after: invalid in its block.
    [late] = node.peer.submit_many([pending], precheck=False)
    assert late.result(30).code is ValidationCode.IDENTITY_REVOKED


def test_revocation_earlier_in_one_batch_invalidates_the_rest(node: EmbeddedNode) -> None:
    before = [endorsed(node, HOSPITAL, "put", key=f"k{i}", value=i) for i in range(3)]
    node.peer.check_proposal(before[0].signed_proposal)  # warm every cache at this height
    futures = node.peer.submit_many([revocation(node, HOSPITAL), *before], precheck=False)
    assert codes(futures) == ["VALID"] + ["IDENTITY_REVOKED"] * 3


def test_an_identity_unknown_at_one_height_resolves_once_registered(node: EmbeddedNode) -> None:
    entry = issue_identity(
        node.keystore, org="gz-first-hospital", name="temp-xu", role="nurse", now_ms=node.clock()
    )
    newcomer = "gz-first-hospital/temp-xu"
    # "Not registered" is remembered at this height too...
    with pytest.raises(AccessDenied, match="not a registered identity"):
        node.peer.check_proposal(
            node.propose(newcomer, "notebook", "put", {"key": "n", "value": 1})
        )
    registered, _ = node.invoke(ADMIN, "membership", "register_identity", {"cert": entry.cert.pem})
    assert registered.code is ValidationCode.VALID
    # ...and forgotten once the registration commits.
    receipt, _ = node.invoke(newcomer, "notebook", "put", {"key": "n", "value": 1})
    assert receipt.code is ValidationCode.VALID


def test_key_policy_set_earlier_in_the_same_block_governs_later_writes(
    idle_node: EmbeddedNode,
) -> None:
    # No key policy exists at this height: that is remembered for the notebook.
    plain = endorsed(idle_node, HOSPITAL, "put", key="k", value=1)
    lock = endorsed(idle_node, HOSPITAL, "lock", key="k", policy="'gd-mpa.peer'")
    other = endorsed(idle_node, HOSPITAL, "put", key="other", value=1)
    block = idle_node.peer.chain.append([lock, plain, other], timestamp=idle_node.clock())
    assert [str(c) for c in block.codes] == ["VALID", "ENDORSEMENT_POLICY_FAILURE", "VALID"]
    # And in the next block, through the remembered answer of the new height.
    again = endorsed(idle_node, HOSPITAL, "put", key="k", value=2)
    assert [e.endorser for e in again.endorsements] == ["gd-mpa/peer0"]
    assert idle_node.peer.chain.append([again], timestamp=idle_node.clock()).codes == (
        ValidationCode.VALID,
    )


def test_height_memo_recomputes_after_a_commit(node: EmbeddedNode) -> None:
    memo = node.peer.memo
    calls: list[int] = []

    def compute() -> int:
        calls.append(node.peer.store.height())
        return len(calls)

    assert memo.get("probe", compute) == 1
    assert memo.get("probe", compute) == 1
    node.invoke(HOSPITAL, "notebook", "put", {"key": "m", "value": 1})
    assert memo.get("probe", compute) == 2
    assert calls == [calls[0], calls[0] + 1]


def test_submit_many_reports_each_refusal_in_its_own_future(node: EmbeddedNode) -> None:
    good = endorsed(node, HOSPITAL, "put", key="x", value=1)
    other = endorsed(node, HOSPITAL, "put", key="y", value=2)
    forged = endorsed(node, HOSPITAL, "put", key="z", value=3)
    forged = Transaction(
        SignedProposal(forged.proposal, bytes(64)), forged.response, forged.endorsements
    )
    futures = node.peer.submit_many([good, forged, good, other])
    assert futures[0].result(30).code is ValidationCode.VALID
    assert isinstance(futures[1].exception(30), BadSignature)
    assert isinstance(futures[2].exception(30), DuplicateTransaction)
    assert futures[3].result(30).code is ValidationCode.VALID
    assert node.peer.store.get_state("notebook", "z") is None


def test_private_values_of_a_batch_are_synced_once_and_settled(node: EmbeddedNode) -> None:
    vault = node.peer.vaults.vault("gz-first-hospital")
    assert vault is not None
    txs = []
    for i in range(5):
        salted = node.keystore.with_salt({"secret": f"note {i}"})
        signed = node.propose(
            HOSPITAL, "notebook", "keep_secret", {"key": f"s{i}"}, transient=salted
        )
        txs.append(node.peer.endorse(signed, transient=salted))
    # Staged for this peer's own endorsement: in memory until the batch is ordered.
    assert vault.unsynced == 5
    assert vault.pending_tx_ids() == []
    assert codes(node.peer.submit_many(txs)) == ["VALID"] * 5
    assert vault.unsynced == 0
    assert vault.pending_tx_ids() == []
    for i in range(5):
        entry = vault.entry("gz-first-hospital/secrets", f"s{i}")
        assert entry is not None and entry["value"] == {"secret": f"note {i}"}


def test_private_value_staged_by_a_durable_stage_is_on_disk_at_once(node: EmbeddedNode) -> None:
    vault = node.peer.vaults.vault("gz-first-hospital")
    assert vault is not None
    node.peer.vaults.stage("tx-a", "gz-first-hospital/secrets", "d", {"v": 1}, durable=False)
    assert vault.pending_tx_ids() == []
    # A durable stage (a gateway's endorsement for another peer) writes what waited too.
    node.peer.vaults.stage("tx-b", "gz-first-hospital/secrets", "d", {"v": 2})
    assert sorted(vault.pending_tx_ids()) == ["tx-a", "tx-b"]
    assert vault.unsynced == 0
