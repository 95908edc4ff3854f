"""Regenerate the ledger test vectors under tests/vectors/{tx,block,state_root,receipt,checkpoint}/.

Run from the repository root::

    python tests/vectors/generate_ledger_vectors.py [OUTPUT_DIR]

OUTPUT_DIR defaults to this file's folder. The output is deterministic: keys come from
fixed seeds and Ed25519 signatures are deterministic, so a re-run rewrites identical
files unless the cases below or the code under test changed.

Expected values (transaction ids, block hashes, roots, proofs, note key ids) are worked
out here with hashlib and json alone, never read back from the code under test; before
writing anything the script checks that the code agrees with every case (valid ones
verify, broken ones raise the error named in ``wantErr`` with ``wantErrContains`` in
its message) and exits non-zero, writing nothing, if it does not. Layout follows
transparency-dev/merkle: one case per file, happy paths plus deliberately broken copies
named for their defect.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from healthledger import verify
from healthledger.crypto.keys import SigningKey
from healthledger.ledger.block import Block, BlockHeader, EncodedBlock, verify_block
from healthledger.ledger.checkpoint import open_note
from healthledger.ledger.transaction import (
    KeyRead,
    KeyWrite,
    Proposal,
    ProposalResponse,
    ReadWriteSet,
    SignedProposal,
    Transaction,
    sign_endorsement,
)

Case = dict[str, Any]
FOLDERS = ("tx", "block", "state_root", "receipt", "checkpoint")

# --------------------------------------------------------------------------- helpers


def _fixed(label: str, size: int = 32) -> bytes:
    """Fixed bytes named by ``label``: reproducible, and obviously not a real key."""
    return hashlib.sha256(b"healthledger/ledger-vectors/" + label.encode("ascii")).digest()[:size]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _canonical(value: Any) -> bytes:
    """The canonical JSON of the values used here (no floats, ASCII keys): sorted and
    compact is the whole of the profile for them."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _leaf(data: bytes) -> bytes:
    return _sha256(b"\x00" + data)


def _node(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right)


def _root(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1 Merkle tree hash over leaf hashes."""
    if not leaves:
        return _sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    return _node(_root(leaves[:split]), _root(leaves[split:]))


def _flip_hex(text: str, position: int = 0) -> str:
    digit = int(text[position], 16) ^ 1
    return text[:position] + f"{digit:x}" + text[position + 1 :]


def _flip_b64(text: str, byte: int = 0, bit: int = 0) -> str:
    data = bytearray(base64.b64decode(text))
    data[byte] ^= 1 << bit
    return _b64(bytes(data))


# -------------------------------------------------------------------- a tiny chain

ZERO = "0" * 64
ALICE = SigningKey.from_seed(_fixed("alice"))
PEER = SigningKey.from_seed(_fixed("peer"))


def _transaction(key: str, value: int, *, reads: int = 0) -> dict[str, Any]:
    proposal = Proposal(
        contract="bench",
        function="put",
        args={"key": key, "value": value},
        creator="org1/alice",
        nonce=_fixed(f"nonce-{key}", 16).hex(),
        timestamp=1_750_000_000_000 + value,
    )
    signed = SignedProposal.sign(proposal, ALICE)
    rwset = ReadWriteSet(
        reads=tuple(KeyRead("bench", key, (reads, 0)) for _ in range(1 if reads else 0)),
        writes=(KeyWrite("bench", key, value),),
    )
    response = ProposalResponse(rwset)
    endorsement = sign_endorsement(signed.tx_id, response, endorser="org1/peer", key=PEER)
    return Transaction(signed, response, (endorsement,)).to_json()


def _tx_id(tx: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(tx["signed_proposal"])).hexdigest()


def _tx_leaf(tx: dict[str, Any]) -> bytes:
    return _leaf(_sha256(_canonical(tx)))


def _block(
    previous: dict[str, Any] | None,
    txs: list[dict[str, Any]],
    codes: list[str],
    timestamp: int,
    log: list[bytes],
) -> dict[str, Any]:
    """The block after ``previous``; ``log`` is the global log's leaves so far (extended)."""
    leaves = [_tx_leaf(tx) for tx in txs]
    log.extend(leaves)
    tx_root = _root(leaves).hex()
    prev_state = ZERO if previous is None else previous["state_root"]
    state_root = hashlib.sha256(
        _canonical({"prev": prev_state, "tx_root": tx_root, "codes": codes})
    ).hexdigest()
    header = {
        "height": 0 if previous is None else previous["height"] + 1,
        "prev_hash": ZERO if previous is None else _header_hash(previous),
        "tx_root": tx_root,
        "state_root": state_root,
        "log_size": len(log),
        "log_root": _root(log).hex(),
        "timestamp": timestamp,
    }
    return {"version": 1, "header": header, "transactions": txs, "codes": codes}


def _header_hash(header: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(header)).hexdigest()


LOG: list[bytes] = []
TXS = [_transaction("genesis", 0), *(_transaction(f"k{i}", i, reads=1) for i in range(1, 4))]
GENESIS = _block(None, TXS[:1], ["VALID"], 1_750_000_000_000, LOG)
BLOCK1 = _block(
    GENESIS["header"], TXS[1:], ["VALID", "MVCC_READ_CONFLICT", "VALID"], 1_750_000_001_000, LOG
)


# ------------------------------------------------------------------- transaction ids


def tx_cases() -> dict[str, Case]:
    """Transaction ids: the hex SHA-256 of the canonical signed proposal."""
    tx = TXS[1]
    valid = {"description": "a transaction and its id", "transaction": tx, "txId": _tx_id(tx)}

    def broken(description: str, want: str, contains: str, edit: Callable[[Case], None]) -> Case:
        case = copy.deepcopy(valid)
        edit(case)
        return {**case, "description": description, "wantErr": want, "wantErrContains": contains}

    def set_arg(name: str, value: Any) -> Callable[[Case], None]:
        def edit(case: Case) -> None:
            case["transaction"]["signed_proposal"]["proposal"]["args"][name] = value

        return edit

    def drop(name: str) -> Callable[[Case], None]:
        def edit(case: Case) -> None:
            del case["transaction"]["signed_proposal"]["proposal"][name]

        return edit

    def flip_signature(case: Case) -> None:
        signed = case["transaction"]["signed_proposal"]
        signed["signature"] = _flip_b64(signed["signature"])

    return {
        "valid": valid,
        "valid-second-transaction": {
            "description": "another transaction and its id",
            "transaction": TXS[2],
            "txId": _tx_id(TXS[2]),
        },
        "wrong-tx-id": broken(
            "the id of another transaction",
            "VerificationError",
            "not " + _tx_id(TXS[2]),
            lambda case: case.update(txId=_tx_id(TXS[2])),
        ),
        "modified-tx-id-bit": broken(
            "one hex digit of the id flipped",
            "VerificationError",
            "the transaction's id is",
            lambda case: case.update(txId=_flip_hex(case["txId"], 63)),
        ),
        "modified-signature-bit": broken(
            "the proposal's signature has one bit flipped: the id covers the signature",
            "VerificationError",
            "the transaction's id is",
            flip_signature,
        ),
        "modified-args": broken(
            "an argument changed after signing: the id covers the proposal",
            "VerificationError",
            "the transaction's id is",
            set_arg("value", 1000),
        ),
        "float-in-args": broken(
            "a float in the arguments: outside the canonical profile",
            "InvalidTransaction",
            "float",
            set_arg("value", 1.5),
        ),
        "missing-nonce": broken(
            "the proposal has no nonce",
            "InvalidTransaction",
            "nonce",
            drop("nonce"),
        ),
        "extra-field": broken(
            "the transaction carries a field the format does not have",
            "InvalidTransaction",
            "transaction",
            lambda case: case["transaction"].update(note="hello"),
        ),
    }


def check_tx_case(case: Case) -> None:
    """Valid: the id verifies; broken: VerificationError (the parser's error its cause)."""
    verify.transaction(transaction=case["transaction"], tx_id=case["txId"])


# ----------------------------------------------------------------- blocks, state roots


def _block_case(description: str, previous: dict[str, Any] | None, block: Case) -> Case:
    return {
        "description": description,
        "previous": previous,
        "block": block,
        "blockHash": _header_hash(block["header"]),
        "stateRoot": block["header"]["state_root"],
    }


def _broken_block(
    valid: Case, description: str, contains: str, edit: Callable[[Case], None]
) -> Case:
    case = copy.deepcopy(valid)
    edit(case)
    del case["blockHash"], case["stateRoot"]
    return {
        **case,
        "description": description,
        "wantErr": "InvalidBlock",
        "wantErrContains": contains,
    }


def _header_edit(name: str, value: Callable[[Any], Any]) -> Callable[[Case], None]:
    def edit(case: Case) -> None:
        header = case["block"]["header"]
        header[name] = value(header[name])

    return edit


def block_cases() -> dict[str, Case]:
    """Block hashes and links: verify_block(previous, block)."""
    genesis = _block_case("the genesis block: no previous block", None, GENESIS)
    nxt = _block_case("block 1 after the genesis block", GENESIS["header"], BLOCK1)

    def broken(description: str, contains: str, edit: Callable[[Case], None]) -> Case:
        return _broken_block(nxt, description, contains, edit)

    def change_transaction(case: Case) -> None:
        proposal = case["block"]["transactions"][0]["signed_proposal"]["proposal"]
        proposal["args"]["value"] += 1

    def previous_timestamp(case: Case) -> None:
        case["previous"]["timestamp"] += 1

    def second_genesis_transaction(case: Case) -> None:
        case["block"]["transactions"].append(TXS[1])
        case["block"]["codes"].append("VALID")

    return {
        "valid-genesis": genesis,
        "valid-next": nxt,
        "wrong-prev-hash": broken(
            "prev_hash is the hash of another block (the genesis block's prev_hash)",
            "prev_hash",
            _header_edit("prev_hash", lambda _: ZERO),
        ),
        "modified-prev-hash-bit": broken(
            "one hex digit of prev_hash flipped",
            "prev_hash",
            _header_edit("prev_hash", _flip_hex),
        ),
        "modified-previous-header": broken(
            "the previous header's timestamp changed: its hash is no longer prev_hash",
            "prev_hash",
            previous_timestamp,
        ),
        "modified-tx-root-bit": broken(
            "one hex digit of tx_root flipped",
            "tx_root",
            _header_edit("tx_root", _flip_hex),
        ),
        "modified-transaction": broken(
            "a transaction's argument changed: the tx_root no longer covers it",
            "tx_root",
            change_transaction,
        ),
        "swapped-transactions": broken(
            "two transactions swapped: the tx_root fixes their order",
            "tx_root",
            lambda case: case["block"]["transactions"].reverse(),
        ),
        "wrong-height": broken(
            "the header says height 2 after block 0",
            "height",
            _header_edit("height", lambda h: h + 1),
        ),
        "wrong-log-size": broken(
            "log_size one larger than the previous log plus the block's transactions",
            "log_size",
            _header_edit("log_size", lambda s: s + 1),
        ),
        "missing-validation-code": broken(
            "one validation code fewer than transactions",
            "validation code",
            lambda case: case["block"]["codes"].pop(),
        ),
        "genesis-with-two-transactions": _broken_block(
            genesis,
            "a genesis block holds exactly the one founding transaction",
            "genesis must hold exactly one transaction",
            second_genesis_transaction,
        ),
        "genesis-after-a-block": _broken_block(
            genesis,
            "the genesis block checked as if it followed another block",
            "height",
            lambda case: case.update(previous=BLOCK1["header"]),
        ),
    }


def state_root_cases() -> dict[str, Case]:
    """State roots: SHA-256 over the previous state root, the tx_root and the codes."""
    valid = _block_case(
        "a block with a transaction refused for an MVCC conflict", GENESIS["header"], BLOCK1
    )

    def broken(description: str, edit: Callable[[Case], None]) -> Case:
        return _broken_block(valid, description, "state_root", edit)

    def set_code(index: int, code: str) -> Callable[[Case], None]:
        def edit(case: Case) -> None:
            case["block"]["codes"][index] = code

        return edit

    def swap_codes(case: Case) -> None:
        codes = case["block"]["codes"]
        codes[0], codes[1] = codes[1], codes[0]

    return {
        "valid": valid,
        "valid-genesis": _block_case(
            "the genesis block's state root follows the all-zero root", None, GENESIS
        ),
        "flipped-validation-code": broken(
            "the refused transaction recorded as VALID, header unchanged", set_code(1, "VALID")
        ),
        "other-refusal-code": broken(
            "the refusal recorded under another code", set_code(1, "BAD_ENDORSEMENT")
        ),
        "swapped-validation-codes": broken(
            "two validation codes swapped: the state root fixes their order", swap_codes
        ),
        "modified-state-root-bit": broken(
            "one hex digit of state_root flipped", _header_edit("state_root", _flip_hex)
        ),
        "state-root-of-the-previous-block": broken(
            "the state root left as the previous block's",
            _header_edit("state_root", lambda _: GENESIS["header"]["state_root"]),
        ),
    }


def check_block_case(case: Case) -> None:
    """Valid: both ways of reading a block verify and hash to blockHash and stateRoot;
    broken: InvalidBlock from verify_block."""
    previous = None if case["previous"] is None else BlockHeader.from_json(case["previous"])
    block = Block.from_json(case["block"])
    # The self-check's way of reading a stored block (transactions never parsed).
    encoded = EncodedBlock.decode(block.canonical)
    if block.canonical != _canonical(case["block"]):
        raise AssertionError("the block's canonical encoding is not sorted compact JSON")
    try:
        verify_block(previous, encoded)
    except Exception as exc:
        if "wantErr" not in case or type(exc).__name__ != case["wantErr"]:
            raise
    else:
        if "wantErr" in case:
            raise AssertionError("the self-check's reading of the block verifies")
    verify_block(previous, block)
    if block.hash != case["blockHash"] or block.header.state_root != case["stateRoot"]:
        raise AssertionError("the block verifies, but hashes to other values")


# ------------------------------------------------------------------------- receipts


def _inclusion_proof(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 audit path."""
    if len(leaves) <= 1:
        return []
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    if index < split:
        return [*_inclusion_proof(index, leaves[:split]), _root(leaves[split:])]
    return [*_inclusion_proof(index - split, leaves[split:]), _root(leaves[:split])]


def receipt_cases() -> dict[str, Case]:
    """Receipts checked against the transaction, the block's header and a proof."""
    header = BLOCK1["header"]
    tx = TXS[2]
    log_index = 2
    receipt = {
        "tx_id": _tx_id(tx),
        "height": 1,
        "index": 1,
        "code": "MVCC_READ_CONFLICT",
        "valid": False,
        "block_hash": _header_hash(header),
        "log_index": log_index,
        "timestamp": header["timestamp"],
    }
    proof = {
        "leafIdx": log_index,
        "treeSize": header["log_size"],
        "root": _b64(bytes.fromhex(header["log_root"])),
        "leafHash": _b64(_tx_leaf(tx)),
        "proof": [_b64(p) for p in _inclusion_proof(log_index, LOG)],
    }
    valid = {
        "description": "a refused transaction's receipt, with its block header and proof",
        "receipt": receipt,
        "transaction": tx,
        "header": header,
        "proof": proof,
    }

    def broken(description: str, contains: str, edit: Callable[[Case], None]) -> Case:
        case = copy.deepcopy(valid)
        edit(case)
        return {
            **case,
            "description": description,
            "wantErr": "VerificationError",
            "wantErrContains": contains,
        }

    def other_index(case: Case) -> None:
        case["receipt"]["log_index"] = case["proof"]["leafIdx"] = 3

    def flip_proof(case: Case) -> None:
        case["proof"]["proof"][0] = _flip_b64(case["proof"]["proof"][0])

    return {
        "valid": valid,
        "wrong-leaf": broken(
            "the proof's leaf is another transaction's",
            "leaf",
            lambda case: case["proof"].update(leafHash=_b64(_tx_leaf(TXS[1]))),
        ),
        "modified-proof[0]-bit": broken(
            "one bit of the audit path flipped", "inclusion proof", flip_proof
        ),
        "wrong-log-index": broken(
            "the receipt and the proof both claim the next log entry",
            "inclusion proof",
            other_index,
        ),
        "other-transaction": broken(
            "the transaction given is not the one the receipt names",
            "the receipt is for",
            lambda case: case.update(transaction=TXS[1]),
        ),
        "modified-block-hash-bit": broken(
            "one hex digit of the receipt's block hash flipped",
            "block_hash",
            lambda case: case["receipt"].update(block_hash=_flip_hex(receipt["block_hash"])),
        ),
        "wrong-height": broken(
            "the receipt names the genesis block",
            "height",
            lambda case: case["receipt"].update(height=0),
        ),
        "wrong-timestamp": broken(
            "the receipt's time is not the block's",
            "timestamp",
            lambda case: case["receipt"].update(timestamp=header["timestamp"] + 1),
        ),
        "proof-at-another-size": broken(
            "the proof is for a log of another size than the block's",
            "entries",
            lambda case: case["proof"].update(treeSize=3),
        ),
        "modified-root-bit": broken(
            "one bit of the proof's root flipped: not the header's log root",
            "log root",
            lambda case: case["proof"].update(root=_flip_b64(proof["root"])),
        ),
        "malformed-proof-hash": broken(
            "an audit path entry that is not base64",
            "malformed proof",
            lambda case: case["proof"]["proof"].__setitem__(0, "not base64!"),
        ),
    }


def check_receipt_case(case: Case) -> None:
    """Valid: the receipt verifies; broken: VerificationError."""
    verify.receipt(
        receipt=case["receipt"],
        transaction=case["transaction"],
        header=case["header"],
        proof=case["proof"],
    )


# ---------------------------------------------------------------------- checkpoints

NOTE_NAME = "org1/peer0"
NOTE_KEY = SigningKey.from_seed(_fixed("checkpoint-signer"))
ORIGIN = "healthledger/" + _header_hash(GENESIS["header"])


def _note_body(header: dict[str, Any], *, size: str | None = None) -> str:
    return (
        "\n".join(
            [
                ORIGIN,
                size if size is not None else str(header["log_size"]),
                _b64(bytes.fromhex(header["log_root"])),
                f"height {header['height']}",
                f"block {_header_hash(header)}",
                f"state {header['state_root']}",
            ]
        )
        + "\n"
    )


def _signed(body: str, *, name: str = NOTE_NAME, key: SigningKey = NOTE_KEY) -> str:
    """A C2SP signed note: key id is SHA-256(name, LF, 0x01, public key)[:4]."""
    key_id = _sha256(name.encode() + b"\n\x01" + key.public_bytes())[:4]
    signature = key_id + key.sign(body.encode())
    return body + "\n" + f"\u2014 {name} {_b64(signature)}\n"


def checkpoint_cases() -> dict[str, Case]:
    """C2SP checkpoint notes signed by one peer key."""
    note = _signed(_note_body(BLOCK1["header"]))
    valid = {
        "description": "a checkpoint at block 1, signed by one peer",
        "note": note,
        "name": NOTE_NAME,
        "publicKey": _b64(NOTE_KEY.public_bytes()),
        "origin": ORIGIN,
    }

    def broken(description: str, contains: str, **changes: str) -> Case:
        return {
            **valid,
            **changes,
            "description": description,
            "wantErr": "CheckpointError",
            "wantErrContains": contains,
        }

    signature_line = note.split("\n\n")[1]
    encoded = signature_line.split(" ")[2].strip()
    stranger = SigningKey.from_seed(_fixed("stranger"))
    cosigned = note + _signed(_note_body(BLOCK1["header"]), name="org2/peer0").split("\n\n")[1]
    return {
        "valid": valid,
        "valid-cosigned": {
            **valid,
            "description": "the same checkpoint with a second signer's line after it",
            "note": cosigned,
        },
        "trailing-garbage": broken(
            "text after the last signature line", "malformed signature line", note=note + "x\n"
        ),
        "modified-signature-bit": broken(
            "one bit of the Ed25519 signature flipped",
            "bad signature",
            note=note.replace(encoded, _flip_b64(encoded, 10)),
        ),
        "modified-key-id-bit": broken(
            "one bit of the key id flipped: no line of this key",
            "no signature by",
            note=note.replace(encoded, _flip_b64(encoded, 0)),
        ),
        "modified-height": broken(
            "the body's height changed after signing",
            "bad signature",
            note=note.replace("height 1\n", "height 2\n"),
        ),
        "wrong-origin": broken(
            "the checkpoint of another chain", "another chain", origin=ORIGIN + "0"
        ),
        "unknown-key": broken(
            "signed under the same name by another key",
            "no signature by",
            note=_signed(_note_body(BLOCK1["header"]), key=stranger),
        ),
        "wrong-name": broken(
            "the key is asked for under another name", "no signature by", name="org1/peer1"
        ),
        "leading-zero-size": broken(
            "the tree size written with a leading zero (signed as such)",
            "malformed checkpoint",
            note=_signed(_note_body(BLOCK1["header"], size="04")),
        ),
        "missing-signature": broken(
            "the body alone, no signature lines",
            "not a signed note",
            note=_note_body(BLOCK1["header"]),
        ),
        "too-large": broken(
            "a note larger than 8192 bytes", "too large", note=note + ("\u2014 x y\n" * 1000)
        ),
    }


def check_checkpoint_case(case: Case) -> None:
    """Valid: the note opens; broken: CheckpointError."""
    open_note(
        case["note"],
        name=case["name"],
        public_key=base64.b64decode(case["publicKey"]),
        origin=case["origin"],
    )
    verify.checkpoint(
        note=case["note"],
        name=case["name"],
        public_key=base64.b64decode(case["publicKey"]),
        origin=case["origin"],
    )


# ------------------------------------------------------------------------- writing

CHECKS: dict[str, Callable[[Case], None]] = {
    "tx": check_tx_case,
    "block": check_block_case,
    "state_root": check_block_case,
    "receipt": check_receipt_case,
    "checkpoint": check_checkpoint_case,
}


def cases() -> dict[str, dict[str, Case]]:
    """Every case, by folder and file name."""
    return {
        "tx": tx_cases(),
        "block": block_cases(),
        "state_root": state_root_cases(),
        "receipt": receipt_cases(),
        "checkpoint": checkpoint_cases(),
    }


def check(folder: str, case: Case) -> str | None:
    """What is wrong with ``case`` as the code sees it, or None if the code agrees."""
    try:
        CHECKS[folder](case)
    except Exception as exc:  # noqa: BLE001 - every outcome is compared with the case
        want = case.get("wantErr")
        if want is None:
            return f"should verify, but raised {type(exc).__name__}: {exc}"
        # The public surface wraps the ledger's error: the named one is then its cause.
        # It is that class or a narrower one (a decoding refusal that names the field).
        named = exc.__cause__ if isinstance(exc, verify.VerificationError) else exc
        if want != "VerificationError" and want not in {c.__name__ for c in type(named).__mro__}:
            return f"should raise {want}, but raised {type(exc).__name__}: {exc}"
        if want == "VerificationError" and not isinstance(exc, verify.VerificationError):
            return f"should raise {want}, but raised {type(exc).__name__}: {exc}"
        if case["wantErrContains"] not in str(exc):
            return f"raised {type(exc).__name__}: {exc}, not naming {case['wantErrContains']!r}"
        return None
    if "wantErr" in case:
        return f"should raise {case['wantErr']}, but verifies"
    return None


def main(argv: list[str]) -> int:
    """Check every case against the code, then write them under the output folder."""
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    every = cases()
    problems = [
        f"{folder}/{name}: {problem}"
        for folder, by_name in every.items()
        for name, case in by_name.items()
        if (problem := check(folder, case)) is not None
    ]
    if problems:
        print("the code disagrees with these cases; nothing written:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    for folder, by_name in every.items():
        target = root / folder
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*.json"):
            old.unlink()
        for name, case in by_name.items():
            text = json.dumps(case, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
            (target / f"{name}.json").write_text(text, encoding="utf-8")
        print(f"{folder}: {len(by_name)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
