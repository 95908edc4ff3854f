"""The ledger's wire records (ledger/wire.py): each round-trips the checked-in vectors
to the same canonical bytes, ids and hashes, and refuses each malformed field naming
its JSON path."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.keys import SigningKey
from healthledger.ledger.block import Block, BlockHeader, EncodedBlock
from healthledger.ledger.checkpoint import Checkpoint, open_note
from healthledger.ledger.errors import InvalidBlock, InvalidTransaction
from healthledger.ledger.receipt import Receipt
from healthledger.ledger.transaction import (
    KeyWrite,
    Proposal,
    ProposalResponse,
    ReadWriteSet,
    SignedProposal,
    Transaction,
    ValidationCode,
)
from healthledger.ledger.wire import (
    InvalidField,
    MalformedBlock,
    MalformedTransaction,
    Record,
    decode_bytes,
    schema_components,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
Case = dict[str, Any]


def _json(value: Any) -> Any:
    """``value`` as JSON reads it back (a record's JSON form holds arrays as tuples)."""
    return json.loads(json.dumps(value))


def _vector(folder: str, name: str) -> Case:
    case = json.loads((VECTORS / folder / name).read_text(encoding="utf-8"))
    assert isinstance(case, dict)
    return case


TX = _vector("tx", "valid.json")
BLOCK = _vector("block", "valid-next.json")
RECEIPT = _vector("receipt", "valid.json")
CHECKPOINT = _vector("checkpoint", "valid.json")


# --- round trips: the same JSON, the same canonical bytes, the same ids -----------------


def test_transaction_round_trips_to_the_vector_bytes_and_id() -> None:
    tx = Transaction.from_json(TX["transaction"])
    assert _json(tx.to_json()) == TX["transaction"]
    assert tx.canonical == canonical_json(TX["transaction"])
    assert tx.tx_id == TX["txId"]
    assert Transaction.from_json(json.loads(tx.canonical)) == tx


def test_signed_proposal_and_its_parts_round_trip() -> None:
    raw = TX["transaction"]["signed_proposal"]
    signed = SignedProposal.from_json(raw)
    assert _json(signed.to_json()) == raw
    assert signed.canonical == canonical_json(raw)
    assert signed.signed_bytes == canonical_json(raw["proposal"])
    response = ProposalResponse.from_json(TX["transaction"]["response"])
    assert response.canonical == canonical_json(TX["transaction"]["response"])


def test_block_and_header_round_trip_to_the_vector_bytes_and_hash() -> None:
    block = Block.from_json(BLOCK["block"])
    assert _json(block.to_json()) == BLOCK["block"]
    assert block.canonical == canonical_json(BLOCK["block"])
    assert block.hash == BLOCK["blockHash"]
    assert block.header.state_root == BLOCK["stateRoot"]
    header = BlockHeader.from_json(BLOCK["block"]["header"])
    assert header == block.header and header.to_json() == BLOCK["block"]["header"]
    assert EncodedBlock.decode(block.canonical).header == header
    # What a node reads back from its own store decodes to the same block.
    assert decode_bytes(block.canonical, Block) == block


def test_receipt_round_trips_and_derives_valid_from_the_code() -> None:
    receipt = Receipt.from_json(RECEIPT["receipt"])
    assert receipt.to_json() == RECEIPT["receipt"]
    assert receipt.code is ValidationCode.MVCC_READ_CONFLICT and receipt.valid is False
    made = Receipt.of(
        tx_id=receipt.tx_id,
        height=receipt.height,
        index=receipt.index,
        code=receipt.code,
        block_hash=receipt.block_hash,
        log_index=receipt.log_index,
        timestamp=receipt.timestamp,
    )
    assert made == receipt


def test_checkpoint_note_round_trips() -> None:
    key = base64.b64decode(CHECKPOINT["publicKey"])
    checkpoint = open_note(
        CHECKPOINT["note"], name=CHECKPOINT["name"], public_key=key, origin=CHECKPOINT["origin"]
    )
    assert Checkpoint.parse(checkpoint.body()) == checkpoint
    assert checkpoint.height == 1 and len(checkpoint.log_root) == 32
    assert CHECKPOINT["note"].startswith(checkpoint.body().decode())


def test_records_are_frozen_and_replace_forgets_cached_values() -> None:
    header = BlockHeader.from_json(BLOCK["block"]["header"])
    with pytest.raises(AttributeError):
        header.height = 2  # type: ignore[misc]
    later = msgspec.structs.replace(header, timestamp=header.timestamp + 1)
    assert header.hash == BLOCK["blockHash"] and later.hash != header.hash


def test_a_delete_has_no_value_and_a_write_has_one() -> None:
    delete = KeyWrite("ns", "k", delete=True)
    assert delete.to_json() == {"ns": "ns", "key": "k", "delete": True}
    assert delete.deletes and delete.new_value is None
    write = KeyWrite("ns", "k", {"a": 1})
    assert write.to_json() == {"ns": "ns", "key": "k", "value": {"a": 1}}
    assert not write.deletes and write.new_value == {"a": 1}
    with pytest.raises(InvalidField, match="a delete carries no value"):
        KeyWrite("ns", "k", 1, True)
    with pytest.raises(InvalidField, match="missing value"):
        KeyWrite("ns", "k")
    assert ReadWriteSet(writes=(delete,)).to_json()["writes"] == (delete.to_json(),)


def test_a_proposal_with_floats_is_refused_when_built() -> None:
    with pytest.raises(InvalidTransaction, match="float"):
        Proposal("c", "f", {"x": 0.5}, "org/a", "0" * 32, 1)


def test_signing_yields_a_signature_that_round_trips() -> None:
    key = SigningKey.from_seed(bytes(32))
    proposal = Proposal("c", "f", {"x": 1}, "org/a", "0" * 32, 1)
    signed = SignedProposal.sign(proposal, key)
    assert SignedProposal.from_json(signed.to_json()) == signed


# --- each malformed field refused, naming its path ----------------------------------------

Edit = Callable[[Case], None]


def _set(path: str, value: Any) -> Edit:
    *parents, last = path.split(".")

    def edit(obj: Any) -> None:
        for part in parents:
            obj = obj[int(part)] if part.isdigit() else obj[part]
        obj[int(last) if last.isdigit() else last] = value

    return edit


def _delete(path: str) -> Edit:
    *parents, last = path.split(".")

    def edit(obj: Any) -> None:
        for part in parents:
            obj = obj[int(part)] if part.isdigit() else obj[part]
        del obj[last]

    return edit


SIGNATURE = TX["transaction"]["signed_proposal"]["signature"]
# The same 64 bytes spelled with a spare bit set: valid base64, not the canonical spelling.
MALLEABLE = SIGNATURE[:-3] + chr(ord(SIGNATURE[-3]) + 1) + "=="
PROPOSAL = "signed_proposal.proposal"
WRITE = "response.rwset.writes.0"
SIG = "signed_proposal.signature"
READ = "response.rwset.reads.0"

TX_DEFECTS: dict[str, tuple[Edit, str]] = {
    "contract name": (_set(f"{PROPOSAL}.contract", "Bad"), "$.signed_proposal.proposal.contract"),
    "creator id": (_set(f"{PROPOSAL}.creator", "nobody"), "$.signed_proposal.proposal.creator"),
    "nonce": (_set(f"{PROPOSAL}.nonce", "not-hex"), "$.signed_proposal.proposal.nonce"),
    "timestamp negative": (_set(f"{PROPOSAL}.timestamp", -1), f"$.{PROPOSAL}.timestamp"),
    "timestamp a boolean": (_set(f"{PROPOSAL}.timestamp", True), f"$.{PROPOSAL}.timestamp"),
    "timestamp past 2**53": (_set(f"{PROPOSAL}.timestamp", 2**53), f"$.{PROPOSAL}.timestamp"),
    "timestamp a string": (_set(f"{PROPOSAL}.timestamp", "1"), f"$.{PROPOSAL}.timestamp"),
    "transient hash": (_set(f"{PROPOSAL}.transient_hash", "ab"), f"$.{PROPOSAL}.transient_hash"),
    "args not an object": (_set(f"{PROPOSAL}.args", []), "$.signed_proposal.proposal.args"),
    "float in args": (_set(f"{PROPOSAL}.args.value", 0.5), "$.signed_proposal.proposal"),
    "missing nonce": (_delete(f"{PROPOSAL}.nonce"), "$.signed_proposal.proposal"),
    "unknown field": (_set("note", "hello"), "$"),
    "signature not base64": (
        _set("signed_proposal.signature", "!!"),
        "$.signed_proposal.signature",
    ),
    "signature short": (_set(SIG, "AAAA"), "$.signed_proposal.signature"),
    "signature malleable": (
        _set("signed_proposal.signature", MALLEABLE),
        "$.signed_proposal.signature",
    ),
    "endorser id": (_set("endorsements.0.endorser", "x"), "$.endorsements[0].endorser"),
    "read version": (
        _set("response.rwset.reads.0.version", [1]),
        "$.response.rwset.reads[0].version",
    ),
    "read version negative": (
        _set("response.rwset.reads.0.version", [-1, 0]),
        "$.response.rwset.reads[0].version[0]",
    ),
    "empty key": (_set(f"{WRITE}.key", ""), "$.response.rwset.writes[0].key"),
    "unprintable key": (_set(f"{WRITE}.key", "a\x00"), "$.response.rwset.writes[0]"),
    "delete false": (_set(f"{WRITE}.delete", False), "$.response.rwset.writes[0].delete"),
    "delete with a value": (_set(f"{WRITE}.delete", True), "$.response.rwset.writes[0]"),
    "private hash": (
        _set("response.rwset.private", [{"collection": "o/c", "key_hash": "x", "value_hash": "y"}]),
        "$.response.rwset.private[0].key_hash",
    ),
    "events not a list": (_set("response.events", {}), "$.response.events"),
    "endorsements not a list": (_set("endorsements", "x"), "$.endorsements"),
}


@pytest.mark.parametrize("defect", sorted(TX_DEFECTS))
def test_a_malformed_transaction_field_is_refused_with_its_path(defect: str) -> None:
    edit, path = TX_DEFECTS[defect]
    raw = copy.deepcopy(TX["transaction"])
    edit(raw)
    with pytest.raises(MalformedTransaction) as refused:
        Transaction.from_json(raw)
    assert refused.value.field == path
    assert isinstance(refused.value, InvalidTransaction)
    assert str(refused.value).startswith("transaction: ")


BLOCK_DEFECTS: dict[str, tuple[Edit, str]] = {
    "height negative": (_set("header.height", -1), "$.header.height"),
    "prev_hash upper case": (_set("header.prev_hash", "A" * 64), "$.header.prev_hash"),
    "log_size a string": (_set("header.log_size", "4"), "$.header.log_size"),
    "unknown code": (_set("codes.0", "NOPE"), "$.codes[0]"),
    "version": (_set("version", 2), "$.version"),
    "missing version": (_delete("version"), "$"),
    "header extra field": (_set("header.extra", 1), "$.header"),
    "codes short": (_set("codes", []), "$.codes"),
    "transaction nonce": (
        _set(f"transactions.0.{PROPOSAL}.nonce", "x"),
        "$.transactions[0].signed_proposal.proposal.nonce",
    ),
}


@pytest.mark.parametrize("defect", sorted(BLOCK_DEFECTS))
def test_a_malformed_block_field_is_refused_with_its_path(defect: str) -> None:
    edit, path = BLOCK_DEFECTS[defect]
    raw = copy.deepcopy(BLOCK["block"])
    edit(raw)
    with pytest.raises(MalformedBlock) as refused:
        Block.from_json(raw)
    assert refused.value.field == path
    assert isinstance(refused.value, InvalidBlock)


RECEIPT_DEFECTS: dict[str, tuple[Edit, str]] = {
    "tx_id short": (_set("tx_id", "ab"), "$.tx_id"),
    "code unknown": (_set("code", "FINE"), "$.code"),
    "valid contradicts code": (_set("valid", True), "$"),
    "log_index negative": (_set("log_index", -1), "$.log_index"),
    "missing block_hash": (_delete("block_hash"), "$"),
}


@pytest.mark.parametrize("defect", sorted(RECEIPT_DEFECTS))
def test_a_malformed_receipt_field_is_refused_with_its_path(defect: str) -> None:
    edit, path = RECEIPT_DEFECTS[defect]
    raw = copy.deepcopy(RECEIPT["receipt"])
    edit(raw)
    with pytest.raises(MalformedBlock) as refused:
        Receipt.from_json(raw)
    assert refused.value.field == path


def test_bytes_that_are_not_json_are_refused_as_the_record_says() -> None:
    with pytest.raises(MalformedBlock, match="not JSON"):
        decode_bytes(b"{", Block)


# --- the schemas come from the same records ---------------------------------------------


def test_schemas_carry_the_domain_constraints() -> None:
    _, components = schema_components([Transaction, Block, Receipt])
    proposal = components["Proposal"]
    assert proposal["additionalProperties"] is False
    assert proposal["properties"]["nonce"]["pattern"] == "^[0-9a-f]{32}$"
    assert proposal["properties"]["timestamp"]["minimum"] == 0
    assert set(proposal["required"]) == {
        "contract",
        "function",
        "args",
        "creator",
        "nonce",
        "timestamp",
    }
    signature = components["Endorsement"]["properties"]["signature"]
    assert signature["pattern"] == "^[A-Za-z0-9+/]{85}[AQgw]==$"
    assert components["BlockHeader"]["properties"]["prev_hash"]["pattern"] == "^[0-9a-f]{64}$"
    assert set(components["ValidationCode"]["enum"]) == {c.value for c in ValidationCode}
    assert components["Receipt"]["properties"]["valid"] == {"type": "boolean"}


def test_every_record_is_frozen() -> None:
    for record in (Transaction, Block, BlockHeader, Receipt, Checkpoint, Proposal):
        assert issubclass(record, Record)
        assert record.__struct_config__.frozen
        assert record.__struct_config__.forbid_unknown_fields
