"""The embedded peer end to end: contracts, errors, events, private data, lifecycle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthledger.contracts.errors import (
    AccessDenied,
    InvalidArguments,
    Rejected,
    StateError,
    UnknownContract,
    UnknownFunction,
)
from healthledger.contracts.runtime import ContractFailure
from healthledger.crypto.keys import decode_b64
from healthledger.ledger.merkle import verify_inclusion
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.errors import BadRequest, DuplicateTransaction, EndorsementFailed
from healthledger.node.vault import value_hash
from tests.conftest import CONTRACTS
from tests.support.contracts import Notebook
from tests.support.founding import found

DOCTOR = "gz-first-hospital/dr-li"


def height_and_state(node: EmbeddedNode) -> tuple[int, list[tuple[str, object]]]:
    rows = list(node.peer.store.range_state("notebook", "", "", 1000))
    return node.peer.store.height(), [(k, v.value) for k, v in rows]


def test_invoke_query_history_and_proof(node: EmbeddedNode) -> None:
    receipt, result = node.invoke(DOCTOR, "notebook", "put", {"key": "ward-3", "value": 7})
    assert receipt.code == "VALID" and result == {"key": "ward-3", "previous": None}
    node.invoke(DOCTOR, "notebook", "put", {"key": "ward-3", "value": 8})
    assert node.query(DOCTOR, "notebook", "get", {"key": "ward-3"})["value"] == 8
    history = node.query(DOCTOR, "notebook", "history", {"key": "ward-3"})
    assert [h["value"]["value"] for h in history] == [8, 7]
    proof = node.peer.inclusion_proof(receipt.tx_id)
    verify_inclusion(
        leaf_index=proof["leafIdx"],
        tree_size=proof["treeSize"],
        leaf_hash=decode_b64(proof["leafHash"]),
        proof=[decode_b64(p) for p in proof["proof"]],
        root=decode_b64(proof["root"]),
    )


@pytest.mark.parametrize(
    ("function", "args", "error"),
    [
        ("put", {"key": "a", "value": "seven"}, InvalidArguments),
        ("put", {"key": "a"}, InvalidArguments),
        ("put", {"key": "a", "value": 1, "extra": True}, InvalidArguments),
        ("put", {"key": "a", "value": True}, InvalidArguments),
        ("nosuch", {}, UnknownFunction),
        ("get", {"key": "a"}, UnknownFunction),
        ("put_float", {"key": "a"}, StateError),
        ("crash", {"key": "a"}, ContractFailure),
        ("remove", {"key": "absent"}, Rejected),
        ("put", {"key": "~policy/a", "value": 1}, StateError),
    ],
)
def test_bad_calls_are_named_errors_and_change_nothing(
    node: EmbeddedNode, function: str, args: dict[str, object], error: type[Exception]
) -> None:
    before = height_and_state(node)
    with pytest.raises(error):
        node.invoke(DOCTOR, "notebook", function, args)
    assert height_and_state(node) == before


def test_invalid_arguments_list_each_field(node: EmbeddedNode) -> None:
    with pytest.raises(InvalidArguments) as caught:
        node.invoke(DOCTOR, "notebook", "put", {"key": 5, "value": "x"})
    assert {e["field"] for e in caught.value.errors} == {"key", "value"}


def test_unknown_contract_and_revoked_caller(node: EmbeddedNode) -> None:
    with pytest.raises(UnknownContract):
        node.invoke(DOCTOR, "nosuch", "put", {})
    node.invoke(
        "gz-first-hospital/admin",
        "membership",
        "revoke_identity",
        {"identity": DOCTOR, "reason": "left the hospital"},
    )
    with pytest.raises(AccessDenied):
        node.invoke(DOCTOR, "notebook", "put", {"key": "a", "value": 1})


def test_only_own_admin_or_regulator_revokes(node: EmbeddedNode) -> None:
    args = {"identity": DOCTOR, "reason": "test"}
    with pytest.raises(AccessDenied):
        node.invoke("sz-peoples-hospital/admin", "membership", "revoke_identity", args)
    receipt, record = node.invoke("gd-mpa/admin", "membership", "revoke_identity", args)
    assert receipt.code == "VALID" and record["revoked_by"] == "gd-mpa/admin"


def test_replayed_and_stale_proposals_are_refused(node: EmbeddedNode) -> None:
    signed = node.propose(DOCTOR, "notebook", "put", {"key": "a", "value": 1})
    tx = node.peer.endorse(signed)
    node.peer.wait(node.peer.submit(tx), tx.tx_id, 10)
    with pytest.raises(DuplicateTransaction):
        node.peer.submit(tx)
    with pytest.raises(DuplicateTransaction):
        node.peer.endorse(signed)
    stale = node.keystore.propose(
        DOCTOR, "notebook", "put", {"key": "a", "value": 2}, timestamp=node.clock() - 3600_000
    )
    with pytest.raises(BadRequest):
        node.peer.endorse(stale)


def test_query_function_cannot_write(node: EmbeddedNode) -> None:
    with pytest.raises(UnknownFunction):
        node.query(DOCTOR, "notebook", "put", {"key": "a", "value": 1})


def test_events_follow_and_resume(node: EmbeddedNode) -> None:
    for value in range(3):
        node.invoke(DOCTOR, "notebook", "put", {"key": f"k{value}", "value": value})
    events = node.peer.events.read(None)
    contract_events = [e for e in events if e.kind == "contract" and e.data["name"] == "entry_set"]
    assert [e.data["payload"]["value"] for e in contract_events] == [0, 1, 2]
    assert [e.height for e in events if e.kind == "block"] == list(range(node.peer.store.height()))
    resumed = node.peer.events.read(contract_events[0].id)
    assert [e.id for e in resumed] == [e.id for e in events[events.index(contract_events[0]) + 1 :]]


def test_events_resume_after_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with found(data, contracts=CONTRACTS, batch_timeout_s=0.01) as first:
        first.invoke(DOCTOR, "notebook", "put", {"key": "a", "value": 1})
        last_seen = first.peer.events.read(None)[-1].id
    with EmbeddedNode(data, contracts=CONTRACTS, batch_timeout_s=0.01) as second:
        assert second.peer.events.read(last_seen) == []
        second.invoke(DOCTOR, "notebook", "put", {"key": "b", "value": 2})
        names = [e.data.get("name") for e in second.peer.events.read(last_seen)]
        assert names == [None, "entry_set"]


def test_private_data_commitment_vault_and_shredding(node: EmbeddedNode) -> None:
    receipt, _ = node.invoke(
        DOCTOR, "notebook", "keep_secret", {"key": "p1"}, transient={"secret": "HbA1c 6.1%"}
    )
    tx, _ = node.peer.transaction(receipt.tx_id)
    [write] = tx.response.rwset.private
    assert "HbA1c" not in tx.canonical.decode()
    vault = node.peer.vaults.vault("gz-first-hospital")
    assert vault is not None
    entry = vault.entry("gz-first-hospital/secrets", "p1")
    assert entry is not None and entry["value"] == {"secret": "HbA1c 6.1%"}
    assert value_hash(bytes.fromhex(entry["salt"]), entry["value"]) == write.value_hash
    assert node.query(DOCTOR, "notebook", "secret", {"key": "p1"}) == {"secret": "HbA1c 6.1%"}
    other = "sz-peoples-hospital/dr-zhang"
    assert node.query(other, "notebook", "secret", {"key": "p1"}) is None
    assert vault.shred("gz-first-hospital/secrets", "p1") == 1
    assert node.query(DOCTOR, "notebook", "secret", {"key": "p1"}) is None
    assert node.peer.block(receipt.height).transactions[receipt.index].tx_id == receipt.tx_id
    stored = b"".join(node.peer.store.block_bytes(h) for h in range(node.peer.store.height()))
    assert b"HbA1c" not in stored


def test_shredding_one_value_leaves_the_others_of_its_key_agreement(
    node: EmbeddedNode,
) -> None:
    # The vault wraps many data keys under one ephemeral agreement: each value still
    # has a data key of its own, so erasing one wrapped key erases that value only.
    for key, secret in (("s1", "first"), ("s2", "second")):
        node.invoke(DOCTOR, "notebook", "keep_secret", {"key": key}, transient={"secret": secret})
    vault = node.peer.vaults.vault("gz-first-hospital")
    assert vault is not None
    rows = vault._db.execute(
        "SELECT key, wrapped_key FROM private WHERE key IN ('s1', 's2') ORDER BY key"
    ).fetchall()
    wrapped = [json.loads(w) for _, w in rows]
    assert wrapped[0]["ephemeral_public"] == wrapped[1]["ephemeral_public"]
    assert wrapped[0]["ciphertext"] != wrapped[1]["ciphertext"]
    assert vault.shred("gz-first-hospital/secrets", "s1") == 1
    assert node.query(DOCTOR, "notebook", "secret", {"key": "s1"}) is None
    assert node.query(DOCTOR, "notebook", "secret", {"key": "s2"}) == {"secret": "second"}


def test_transient_data_must_match_its_hash(node: EmbeddedNode) -> None:
    salted = node.keystore.with_salt({"secret": "x"})
    signed = node.propose(DOCTOR, "notebook", "keep_secret", {"key": "p"}, transient=salted)
    with pytest.raises(InvalidArguments):
        node.peer.endorse(signed, transient={**salted, "secret": "y"})
    with pytest.raises(InvalidArguments):
        node.peer.endorse(signed)


def test_contract_upgrade_needs_lifecycle_majority(tmp_path: Path) -> None:
    class NotebookV2(Notebook):
        """A new version: different code, same name."""

        policy = "OR('*.peer')"

    data = tmp_path / "data"
    found(data, contracts=CONTRACTS).stop()
    contracts = (*CONTRACTS[:-1], NotebookV2)
    with EmbeddedNode(data, contracts=contracts, batch_timeout_s=0.01) as node:
        with pytest.raises(UnknownContract, match="does not match"):
            node.invoke(DOCTOR, "notebook", "put", {"key": "a", "value": 1})
        args = {
            "contract": "notebook",
            "version": "2",
            "code_hash": NotebookV2.code_hash(),
            "policy": "OR('*.peer')",
            "functions": {"confirm": "AND('gd-cdc.peer', 'gd-commission.peer')"},
        }
        orgs = [o["id"] for o in node.query(DOCTOR, "membership", "organisations", {})]
        for org in orgs[:5]:
            node.invoke(f"{org}/admin", "lifecycle", "approve", args)
        with pytest.raises(Rejected, match="do not satisfy"):
            node.invoke(DOCTOR, "lifecycle", "commit", {"contract": "notebook", "version": "2"})
        node.invoke(f"{orgs[5]}/admin", "lifecycle", "approve", args)
        node.invoke(DOCTOR, "lifecycle", "commit", {"contract": "notebook", "version": "2"})
        receipt, _ = node.invoke(DOCTOR, "notebook", "put", {"key": "a", "value": 1})
        assert receipt.code == "VALID"
        with pytest.raises(AccessDenied):
            node.invoke(DOCTOR, "lifecycle", "approve", args)


def test_endorsement_fails_when_no_peer_can_satisfy(node: EmbeddedNode) -> None:
    node.invoke(DOCTOR, "notebook", "lock", {"key": "k", "policy": "'nobody.peer'"})
    with pytest.raises(EndorsementFailed):
        node.invoke(DOCTOR, "notebook", "put", {"key": "k", "value": 1})


def test_submit_prechecks_forged_and_unendorsed_transactions(node: EmbeddedNode) -> None:
    from msgspec.structs import replace

    from healthledger.node.errors import TransactionRefused

    tx = node.peer.endorse(node.propose(DOCTOR, "notebook", "put", {"key": "a", "value": 1}))
    before = height_and_state(node)
    with pytest.raises(TransactionRefused) as caught:
        node.peer.submit(replace(tx, endorsements=()))
    assert caught.value.code == "ENDORSEMENT_POLICY_FAILURE"
    forged = bytearray(tx.signed_proposal.signature)
    forged[1] ^= 4
    with pytest.raises(BadRequest):
        node.peer.submit(
            replace(tx, signed_proposal=replace(tx.signed_proposal, signature=bytes(forged)))
        )
    assert height_and_state(node) == before
    node.peer.wait(node.peer.submit(tx), tx.tx_id, 10)
