"""Signed checkpoints (C2SP signed note, tlog-checkpoint body): the public signed-note
vector, a round trip, deliberately broken copies, and the comparison across peers."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace

import pytest

from healthledger.crypto.keys import SigningKey, verify_signature
from healthledger.node.checkpoint import (
    Checkpoint,
    CheckpointError,
    compare,
    key_id,
    note_signers,
    open_note,
    sign_note,
)

# golang.org/x/mod/sumdb/note documentation example (the signed-note reference code).
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
GO_SIGNATURE = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)

ORIGIN = "healthledger/" + "ab" * 32
KEY = SigningKey.from_seed(bytes(range(32)))
NAME = "gd-cdc/peer0"
CHECKPOINT = Checkpoint(
    origin=ORIGIN,
    log_size=1234,
    log_root=bytes(range(32)),
    height=40,
    block_hash="cd" * 32,
    state_root="ef" * 32,
)


def test_key_id_and_signature_match_the_go_signed_note_vector() -> None:
    name, hash_hex, encoded = GO_VERIFIER_KEY.split("+")
    raw = base64.b64decode(encoded)
    assert raw[0] == 0x01  # Ed25519
    assert key_id(name, raw[1:]).hex() == hash_hex
    signature = base64.b64decode(GO_SIGNATURE)
    assert signature[:4].hex() == hash_hex
    verify_signature(raw[1:], signature[4:], GO_TEXT)


def test_a_signed_checkpoint_opens_to_itself() -> None:
    note = sign_note(CHECKPOINT, name=NAME, key=KEY)
    assert note.startswith(f"{ORIGIN}\n1234\n")
    assert "\nheight 40\nblock " in note and "\n\n\u2014 gd-cdc/peer0 " in note
    assert note_signers(note) == [NAME]
    assert open_note(note, name=NAME, public_key=KEY.public_bytes(), origin=ORIGIN) == CHECKPOINT
    assert Checkpoint.parse(CHECKPOINT.body()) == CHECKPOINT


def _flip_root_bit(note: str) -> str:
    lines = note.split("\n")
    root = bytearray(base64.b64decode(lines[2]))
    root[0] ^= 1
    lines[2] = base64.b64encode(bytes(root)).decode()
    return "\n".join(lines)


BROKEN: dict[str, Callable[[str], str]] = {
    "modified-root-bit": _flip_root_bit,
    "modified-height": lambda n: n.replace("height 40", "height 41"),
    "non-canonical-size": lambda n: n.replace("\n1234\n", "\n01234\n"),
    "extra-body-line": lambda n: n.replace("\n\n\u2014", "\nextra line\n\n\u2014"),
    "trailing-garbage": lambda n: n + "garbage",
    "no-signature": lambda n: n.split("\n\n")[0] + "\n\n",
    "other-signer": lambda n: n.replace(NAME, "gd-cdc/peer1"),
    "signature-char": lambda n: n[:-20] + ("A" if n[-20] != "A" else "B") + n[-19:],
    "not-a-note": lambda n: n.split("\n\n")[0],
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_note_is_refused(case: str) -> None:
    note = BROKEN[case](sign_note(CHECKPOINT, name=NAME, key=KEY))
    with pytest.raises(CheckpointError):
        open_note(note, name=NAME, public_key=KEY.public_bytes(), origin=ORIGIN)


def test_a_note_for_another_chain_or_key_is_refused() -> None:
    note = sign_note(CHECKPOINT, name=NAME, key=KEY)
    with pytest.raises(CheckpointError, match="another chain"):
        open_note(note, name=NAME, public_key=KEY.public_bytes(), origin=ORIGIN + "x")
    other = SigningKey.from_seed(bytes(32))
    with pytest.raises(CheckpointError, match="no signature"):
        open_note(note, name=NAME, public_key=other.public_bytes(), origin=ORIGIN)


def test_compare_names_the_minority() -> None:
    forked = replace(CHECKPOINT, block_hash="00" * 32)
    views = {
        "a": {40: CHECKPOINT, 50: CHECKPOINT},
        "b": {40: CHECKPOINT},
        "c": {40: forked},
    }
    [divergence] = compare(views)
    assert divergence.height == 40
    assert divergence.minority == ("c",)
    assert compare({"a": {40: CHECKPOINT}, "b": {40: CHECKPOINT}}) == []
    [tie] = compare({"a": {40: CHECKPOINT}, "b": {40: forked}})
    assert tie.minority == ("a", "b")
