"""Signed checkpoints (C2SP signed note, tlog-checkpoint body): the public signed-note
vector, a round trip, deliberately broken copies, and the comparison across peers."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from healthledger.apps.registry import installed_contracts
from healthledger.crypto.keys import SigningKey, verify_signature
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.node.checkpoint import (
    Checkpoint,
    CheckpointError,
    compare,
    key_id,
    note_signers,
    open_note,
    origin_of,
    sign_note,
)
from healthledger.node.checkpoint_exchange import DeliveryWatch
from healthledger.node.checkpoint_guard import CheckpointGuard, CheckpointState, RejectedNote
from healthledger.node.consortium_peer import found_consortium
from healthledger.node.embedded import KEYSTORE_FILE, LEDGER_FILE, EmbeddedNode
from healthledger.node.keystore import Keystore
from healthledger.node.selfcheck import ChainSelfCheck, TamperedBlock
from tests.support.founding import found
from tests.support.gs1 import gln

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


# --- the guard: verified notes of the other organisations, compared with one's own ---


@pytest.fixture(scope="module")
def founded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three organisations' peer folders with one genesis."""
    root = tmp_path_factory.mktemp("consortium")
    return found_consortium(root, plans=DEMO_ORGS[:3], contracts=installed_contracts())


def peer_key(folder: Path) -> tuple[str, SigningKey]:
    [(name, key)] = Keystore.load(folder / KEYSTORE_FILE).peers()
    return name, key


@pytest.fixture
def guard_setup(founded: dict[str, Path]) -> Iterator[tuple[CheckpointGuard, dict[str, Any]]]:
    orgs = sorted(founded)
    store = SqliteStore(founded[orgs[0]] / LEDGER_FILE)
    origin = origin_of(store.header(0))
    rejected: list[RejectedNote] = []
    guard = CheckpointGuard(
        org=orgs[0], orgs=orgs, state=store, origin=origin, on_reject=rejected.append
    )
    keys = {org: peer_key(founded[org]) for org in orgs}
    try:
        yield guard, {"orgs": orgs, "origin": origin, "keys": keys, "rejected": rejected}
    finally:
        store.close()


def note_of(keys: dict[str, tuple[str, SigningKey]], org: str, checkpoint: Checkpoint) -> str:
    name, key = keys[org]
    return sign_note(checkpoint, name=name, key=key)


def test_the_guard_stays_ok_while_every_checkpoint_agrees(
    guard_setup: tuple[CheckpointGuard, dict[str, Any]],
) -> None:
    guard, ctx = guard_setup
    _, b, c = ctx["orgs"]
    mine = replace(CHECKPOINT, origin=ctx["origin"])
    guard.own(mine)
    assert guard.receive(b, note_of(ctx["keys"], b, mine)) == mine
    assert guard.receive(c, note_of(ctx["keys"], c, replace(mine, height=44))) is not None
    assert guard.state is CheckpointState.OK and guard.refusal() is None
    view = guard.to_json()
    assert [p["agrees"] for p in view["peers"]] == [True, True, None]  # c: no common height


def test_one_disagreeing_peer_is_an_alarm_and_two_make_this_peer_the_minority(
    guard_setup: tuple[CheckpointGuard, dict[str, Any]],
) -> None:
    guard, ctx = guard_setup
    me, b, c = ctx["orgs"]
    mine = replace(CHECKPOINT, origin=ctx["origin"])
    fork = replace(mine, block_hash="00" * 32)
    guard.own(mine)
    guard.receive(b, note_of(ctx["keys"], b, fork))
    assert guard.state is CheckpointState.DIVERGED and guard.refusal() is None
    [divergence] = guard.to_json()["divergences"]
    # A tie: no group is larger, so both are named, and neither is a majority.
    assert divergence["minority"] == [me, b] and divergence["height"] == mine.height
    guard.receive(c, note_of(ctx["keys"], c, fork))
    assert guard.state is CheckpointState.MINORITY
    assert "differs from a majority" in (guard.refusal() or "")
    # It stays stopped when a later height agrees again: only an operator clears it.
    later = replace(mine, height=mine.height + 10)
    guard.own(later)
    guard.receive(b, note_of(ctx["keys"], b, later))
    assert guard.state is CheckpointState.MINORITY
    assert guard.divergence_count == 1


def test_a_peer_in_the_majority_names_the_minority_and_keeps_serving(
    guard_setup: tuple[CheckpointGuard, dict[str, Any]],
) -> None:
    guard, ctx = guard_setup
    _, b, c = ctx["orgs"]
    mine = replace(CHECKPOINT, origin=ctx["origin"])
    guard.own(mine)
    guard.receive(b, note_of(ctx["keys"], b, mine))
    guard.receive(c, note_of(ctx["keys"], c, replace(mine, state_root="11" * 32)))
    assert guard.state is CheckpointState.DIVERGED and guard.refusal() is None
    [divergence] = guard.to_json()["divergences"]
    assert divergence["minority"] == [c]


def test_notes_that_cannot_be_trusted_are_reported_and_ignored(
    guard_setup: tuple[CheckpointGuard, dict[str, Any]],
) -> None:
    guard, ctx = guard_setup
    _, b, c = ctx["orgs"]
    keys = ctx["keys"]
    mine = replace(CHECKPOINT, origin=ctx["origin"])
    fork = replace(mine, block_hash="00" * 32)
    guard.own(mine)
    stranger = SigningKey.from_seed(bytes(32))
    cases = {
        "other-chain": (b, note_of(keys, b, replace(fork, origin=ORIGIN))),
        "unknown-key": (b, sign_note(fork, name=keys[b][0], key=stranger)),
        "malformed": (b, "not a note"),
        "bad-signature": (b, _flip_root_bit(note_of(keys, b, fork))),
        # c's note on b's subject: not signed by a peer of b.
        "unknown-key-org": (b, note_of(keys, c, fork)),
        "non-member": ("nobody", note_of(keys, c, fork)),
    }
    for org, note in cases.values():
        assert guard.receive(org, note) is None
    reasons = [r.reason for r in ctx["rejected"]]
    assert reasons == [
        "other-chain",
        "unknown-key",
        "malformed",
        "bad-signature",
        "unknown-key",
        "unknown-key",
    ]
    assert guard.state is CheckpointState.OK and guard.rejected_count == len(cases)
    assert len(guard.to_json()["rejected"]) == len(cases)


# --- self-check: a stored block must re-derive ---------------------------------------


@pytest.fixture
def committed(tmp_path: Path) -> Iterator[EmbeddedNode]:
    """An embedded node with a few committed blocks of real transactions."""
    node = found(tmp_path / "node", contracts=installed_contracts(), plans=DEMO_ORGS[:3]).start()
    org = DEMO_ORGS[0].id
    try:
        for i in range(4):
            node.invoke(
                f"{org}/admin",
                "supply",
                "register_location",
                {"gln": gln(org, i), "name": f"site {i}"},
            )
        yield node
    finally:
        node.stop()


def rewrite_body(node: EmbeddedNode, height: int, change: Callable[[bytes], bytes]) -> None:
    db = sqlite3.connect(node.data_dir / LEDGER_FILE, timeout=10)
    try:
        body = bytes(db.execute("SELECT body FROM blocks WHERE height=?", (height,)).fetchone()[0])
        with db:
            db.execute("UPDATE blocks SET body=? WHERE height=?", (change(body), height))
    finally:
        db.close()


def test_the_self_check_re_derives_an_intact_chain(committed: EmbeddedNode) -> None:
    store = committed.peer.store
    head = store.head()
    assert head is not None
    check = ChainSelfCheck(store, sweep=2)
    for _ in range(4):  # the sweep wraps around the chain
        check.check(head)
    assert check.verified == head


TAMPERING: dict[str, Callable[[bytes], bytes]] = {
    "transaction-bytes": lambda b: b.replace(b'"name":"site ', b'"name":"SITE ', 1),
    "validation-code": lambda b: b.replace(b'"codes":["VALID"]', b'"codes":["MVCC_READ_CONFLICT"]'),
    "header-timestamp": lambda b: b.replace(b'"timestamp":', b'"timestamp":1', 1),
    "not-json": lambda b: b[:-1],
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_a_block_tampered_on_disk_fails_the_self_check(committed: EmbeddedNode, case: str) -> None:
    store = committed.peer.store
    head = store.head()
    assert head is not None
    rewrite_body(committed, 2, TAMPERING[case])
    assert store.block_bytes(2) != b""
    with pytest.raises(TamperedBlock) as found:
        ChainSelfCheck(store).check(head)
    assert found.value.height == 2 and found.value.reason == "tampered"


def test_a_checkpoint_behind_the_checked_head_is_not_a_false_alarm(
    committed: EmbeddedNode,
) -> None:
    store = committed.peer.store
    head = store.head()
    assert head is not None
    check = ChainSelfCheck(store)
    check.check(head)  # an idle check ran ahead of a queued checkpoint
    check.check(store.header(head.height - 1))
    assert check.verified == head
    forged = replace(store.header(head.height - 1), timestamp=1)
    with pytest.raises(TamperedBlock, match="changed after commit"):
        check.check(forged)


def test_the_sweep_finds_a_block_tampered_after_it_was_checked(committed: EmbeddedNode) -> None:
    store = committed.peer.store
    head = store.head()
    assert head is not None
    check = ChainSelfCheck(store, sweep=1)
    check.check(head)
    rewrite_body(committed, 1, TAMPERING["transaction-bytes"])
    with pytest.raises(TamperedBlock, match="stored block 1"):
        for _ in range(head.height + 2):
            check.check(head)


# --- delivery watch ----------------------------------------------------------------


def test_delivery_is_stuck_only_when_waiting_transactions_see_no_progress() -> None:
    now = [0.0]
    watch = DeliveryWatch(stuck_after_s=10.0, clock=lambda: now[0])
    assert not watch.observe(last_tx_seq=None, position=0)  # stream not read yet
    assert not watch.observe(last_tx_seq=5, position=5)  # idle, up to date
    now[0] = 100.0
    assert not watch.observe(last_tx_seq=5, position=7)  # trailing ticks only
    assert not watch.observe(last_tx_seq=20, position=7)  # a transaction waits
    now[0] = 105.0
    assert not watch.observe(last_tx_seq=40, position=15)  # progress: not stuck
    now[0] = 114.0
    assert not watch.observe(last_tx_seq=60, position=15)
    now[0] = 116.0
    assert watch.observe(last_tx_seq=60, position=15)  # 11 s without progress
    assert watch.waiting_s() == 11.0
    assert not watch.observe(last_tx_seq=60, position=60)  # caught up
