"""Unit and property tests for healthledger.ledger.merkle against an RFC 9162 reference."""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthledger.ledger.audit_replay import RightEdge
from healthledger.ledger.errors import ProofError, StorageError
from healthledger.ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    InMemoryNodes,
    LogAppend,
    MerkleLog,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# --------------------------------------------------------------------------------------------
# Reference implementation, transcribed from RFC 9162 sections 2.1.1, 2.1.3.1 and 2.1.4.1.
# Deliberately naive (recursive, slicing) and independent of the module under test.
# --------------------------------------------------------------------------------------------


def _ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _ref_k(n)
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _ref_k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _ref_k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


def hashes(data: Sequence[bytes]) -> list[bytes]:
    return [leaf_hash(x) for x in data]


def flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def build_log(data: Sequence[bytes], batch_sizes: Sequence[int]) -> tuple[MerkleLog, InMemoryNodes]:
    store = InMemoryNodes()
    log = MerkleLog(store, 0)
    pos = 0
    for size in batch_sizes:
        append = log.plan_append(hashes(data[pos : pos + size]))
        store.put_nodes(append.nodes)
        log.advance(append)
        pos += size
    assert pos == len(data)
    return log, store


def _leaves(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(0, 12)) for _ in range(n)]


def _lists_of_size(low: int, high: int) -> st.SearchStrategy[list[bytes]]:
    # The count is drawn first, which spreads sizes over the whole range (a plain st.lists
    # strategy mostly produces short lists and rarely reaches deep or ragged trees); the
    # leaves come from one drawn seed, not one draw each: Hypothesis' bookkeeping grows
    # with the square of the draws, and 300 leaves of 12 bytes cost a minute per test.
    return st.builds(_leaves, st.integers(low, high), st.integers(0, 2**32 - 1))


leaf_lists = _lists_of_size(0, 300)
nonempty_leaf_lists = _lists_of_size(1, 300)

# --------------------------------------------------------------------------------------------
# Known answers: RFC 6962 test tree (as used by certificate-transparency and
# transparency-dev/merkle)
# --------------------------------------------------------------------------------------------

RFC6962_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
RFC6962_ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
# (leaf index, tree size) -> audit path
RFC6962_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}
# (size1, size2) -> consistency proof
RFC6962_CONSISTENCY = {
    (1, 8): RFC6962_INCLUSION[(0, 8)],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
    (6, 7): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


def test_constants_and_primitive_hashes() -> None:
    assert HASH_SIZE == 32
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert leaf_hash(b"").hex() == RFC6962_ROOTS[1]
    left, right = leaf_hash(b"\x00"), leaf_hash(b"\x10")
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    # Domain separation: a leaf whose data looks like two children must not hash as a node.
    assert leaf_hash(left + right) != node_hash(left, right)


@pytest.mark.parametrize("size", sorted(RFC6962_ROOTS))
def test_rfc6962_known_roots(size: int) -> None:
    want = bytes.fromhex(RFC6962_ROOTS[size])
    leaves = hashes(RFC6962_LEAVES[:size])
    assert ref_mth(RFC6962_LEAVES[:size]) == want
    assert root_of(leaves) == want
    log, _ = build_log(RFC6962_LEAVES, [3, 0, 1, 4])
    assert log.root(size) == want


@pytest.mark.parametrize(("index", "size"), sorted(RFC6962_INCLUSION))
def test_rfc6962_known_inclusion_proofs(index: int, size: int) -> None:
    want = [bytes.fromhex(h) for h in RFC6962_INCLUSION[(index, size)]]
    leaves = hashes(RFC6962_LEAVES)
    log, _ = build_log(RFC6962_LEAVES, [8])
    assert inclusion_proof(leaves[:size], index) == want
    assert log.inclusion_proof(index, size) == want
    verify_inclusion(
        leaf_index=index,
        tree_size=size,
        leaf_hash=leaves[index],
        proof=want,
        root=bytes.fromhex(RFC6962_ROOTS[size]),
    )


@pytest.mark.parametrize(("size1", "size2"), sorted(RFC6962_CONSISTENCY))
def test_rfc6962_known_consistency_proofs(size1: int, size2: int) -> None:
    want = [bytes.fromhex(h) for h in RFC6962_CONSISTENCY[(size1, size2)]]
    leaves = hashes(RFC6962_LEAVES)
    log, _ = build_log(RFC6962_LEAVES, [1, 1, 6])
    assert consistency_proof(leaves[:size2], size1) == want
    assert log.consistency_proof(size1, size2) == want
    verify_consistency(
        size1=size1,
        size2=size2,
        root1=bytes.fromhex(RFC6962_ROOTS[size1]),
        root2=bytes.fromhex(RFC6962_ROOTS[size2]),
        proof=want,
    )


# --------------------------------------------------------------------------------------------
# Exhaustive small trees, then Hypothesis up to 300 leaves
# --------------------------------------------------------------------------------------------


def test_exhaustive_small_trees_match_reference() -> None:
    data = [i.to_bytes(2, "big") for i in range(33)]
    leaves = hashes(data)
    log, _ = build_log(data, [1, 2, 3, 5, 8, 13, 1])
    for n in range(len(data) + 1):
        root = ref_mth(data[:n])
        assert root_of(leaves[:n]) == root
        assert log.root(n) == root
        for i in range(n):
            path = ref_path(i, data[:n])
            assert inclusion_proof(leaves[:n], i) == path
            assert log.inclusion_proof(i, n) == path
            verify_inclusion(leaf_index=i, tree_size=n, leaf_hash=leaves[i], proof=path, root=root)
        for m in range(1, n + 1):
            proof = ref_proof(m, data[:n])
            assert consistency_proof(leaves[:n], m) == proof
            assert log.consistency_proof(m, n) == proof
            verify_consistency(size1=m, size2=n, root1=ref_mth(data[:m]), root2=root, proof=proof)


@given(leaf_lists)
def test_root_matches_reference(data: list[bytes]) -> None:
    assert root_of(hashes(data)) == ref_mth(data)


@given(nonempty_leaf_lists, st.data())
def test_inclusion_proof_matches_reference_and_verifies(
    data: list[bytes], draw: st.DataObject
) -> None:
    index = draw.draw(st.integers(0, len(data) - 1), label="index")
    leaves = hashes(data)
    root = ref_mth(data)
    proof = inclusion_proof(leaves, index)
    assert proof == ref_path(index, data)
    n, leaf = len(data), leaves[index]
    assert (
        root_from_inclusion_proof(leaf_index=index, tree_size=n, leaf_hash=leaf, proof=proof)
        == root
    )
    verify_inclusion(leaf_index=index, tree_size=n, leaf_hash=leaf, proof=proof, root=root)


@given(nonempty_leaf_lists, st.data())
def test_consistency_proof_matches_reference_and_verifies(
    data: list[bytes], draw: st.DataObject
) -> None:
    size1 = draw.draw(st.integers(1, len(data)), label="size1")
    proof = consistency_proof(hashes(data), size1)
    assert proof == ref_proof(size1, data)
    verify_consistency(
        size1=size1, size2=len(data), root1=ref_mth(data[:size1]), root2=ref_mth(data), proof=proof
    )


@settings(max_examples=25, deadline=None)
@given(leaf_lists, st.integers(0, 2**32 - 1))
def test_merkle_log_batches_match_reference_at_every_size(data: list[bytes], seed: int) -> None:
    rng = random.Random(seed)  # batch sizes from one draw, as the leaves (see _lists_of_size)
    store = InMemoryNodes()
    log = MerkleLog(store, 0)
    pos = 0

    @functools.cache
    def mth(lo: int, hi: int) -> bytes:
        # Each range once: the reference recomputed per batch made this test quadratic.
        return ref_mth(data[lo:hi])

    while True:
        batch = rng.choice((0, 1, rng.randint(0, len(data) - pos))) if pos < len(data) else 0
        old = log.size
        stored_before = len(store)
        append = log.plan_append(hashes(data[pos : pos + batch]))
        assert len(store) == stored_before, "plan_append must not write"
        assert log.size == old, "plan_append must not move the log"
        new = old + batch
        assert append.size == new
        assert append.root == mth(0, new)
        # Exactly the perfect subtrees completed by this batch, each with its reference hash.
        want_nodes = {
            (k, j): mth(j << k, (j + 1) << k)
            for k in range(new.bit_length())
            for j in range(old >> k, new >> k)
        }
        got_nodes = {(k, j): h for k, j, h in append.nodes}
        assert len(got_nodes) == len(append.nodes), "a node was planned twice"
        assert got_nodes == want_nodes
        store.put_nodes(append.nodes)
        log.advance(append)
        assert log.size == new
        pos = new
        if pos == len(data) and (batch == 0 or rng.random() < 0.5):
            break

    n = len(data)
    leaves = hashes(data)
    for size in range(n + 1):
        root = ref_mth(data[:size])
        assert log.root(size) == root
        if size == 0:
            assert log.consistency_proof(0, 0) == []
            continue
        index = rng.randint(0, size - 1)
        path = log.inclusion_proof(index, size)
        assert path == ref_path(index, data[:size])
        verify_inclusion(
            leaf_index=index, tree_size=size, leaf_hash=leaves[index], proof=path, root=root
        )
        size1 = rng.randint(1, size)
        proof = log.consistency_proof(size1, size)
        assert proof == ref_proof(size1, data[:size])
        verify_consistency(
            size1=size1, size2=size, root1=ref_mth(data[:size1]), root2=root, proof=proof
        )
    for i in range(n):
        assert log.leaf(i) == leaves[i]
    assert log.root() == ref_mth(data)

    # A log reopened over the same store must agree with the one that built it.
    reopened = MerkleLog(store, n)
    assert reopened.root() == log.root()


# --------------------------------------------------------------------------------------------
# Tampering: any single-bit flip, dropped or added element must be rejected
# --------------------------------------------------------------------------------------------


def _assert_inclusion_rejected(
    index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> None:
    with pytest.raises(ProofError):
        verify_inclusion(leaf_index=index, tree_size=size, leaf_hash=leaf, proof=proof, root=root)


def _assert_consistency_rejected(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> None:
    with pytest.raises(ProofError):
        verify_consistency(size1=size1, size2=size2, root1=root1, root2=root2, proof=proof)


@settings(max_examples=30, deadline=None)
@given(nonempty_leaf_lists, st.data())
def test_tampered_inclusion_proofs_are_rejected(data: list[bytes], draw: st.DataObject) -> None:
    n = len(data)
    index = draw.draw(st.integers(0, n - 1), label="index")
    leaves = hashes(data)
    leaf, root = leaves[index], root_of(leaves)
    proof = inclusion_proof(leaves, index)
    verify_inclusion(leaf_index=index, tree_size=n, leaf_hash=leaf, proof=proof, root=root)

    for bit in range(HASH_SIZE * 8):
        _assert_inclusion_rejected(index, n, flip(leaf, bit), proof, root)
        _assert_inclusion_rejected(index, n, leaf, proof, flip(root, bit))
        for i in range(len(proof)):
            bad = list(proof)
            bad[i] = flip(bad[i], bit)
            _assert_inclusion_rejected(index, n, leaf, bad, root)
    extra = draw.draw(st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE), label="extra")
    for i in range(len(proof)):
        _assert_inclusion_rejected(index, n, leaf, proof[:i] + proof[i + 1 :], root)
    for i in range(len(proof) + 1):
        for element in (extra, root, leaf, b""):
            _assert_inclusion_rejected(index, n, leaf, [*proof[:i], element, *proof[i:]], root)


@settings(max_examples=30, deadline=None)
@given(nonempty_leaf_lists, st.data())
def test_tampered_consistency_proofs_are_rejected(data: list[bytes], draw: st.DataObject) -> None:
    n = len(data)
    size1 = draw.draw(st.integers(1, n), label="size1")
    leaves = hashes(data)
    root1, root2 = root_of(leaves[:size1]), root_of(leaves)
    proof = consistency_proof(leaves, size1)
    verify_consistency(size1=size1, size2=n, root1=root1, root2=root2, proof=proof)

    for bit in range(HASH_SIZE * 8):
        _assert_consistency_rejected(size1, n, flip(root1, bit), root2, proof)
        _assert_consistency_rejected(size1, n, root1, flip(root2, bit), proof)
        for i in range(len(proof)):
            bad = list(proof)
            bad[i] = flip(bad[i], bit)
            _assert_consistency_rejected(size1, n, root1, root2, bad)
    extra = draw.draw(st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE), label="extra")
    for i in range(len(proof)):
        _assert_consistency_rejected(size1, n, root1, root2, proof[:i] + proof[i + 1 :])
    for i in range(len(proof) + 1):
        for element in (extra, root1, root2, b""):
            _assert_consistency_rejected(size1, n, root1, root2, [*proof[:i], element, *proof[i:]])


# --------------------------------------------------------------------------------------------
# Edge cases of the verifiers and generators
# --------------------------------------------------------------------------------------------

H = [leaf_hash(bytes([i])) for i in range(8)]
ROOT8 = root_of(H)


def test_list_generators_reject_bad_arguments() -> None:
    assert root_of([]) == EMPTY_ROOT
    with pytest.raises(ValueError, match="32"):
        root_of([b"raw entry"])
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof(H, 8)
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof(H, -1)
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof([], 0)
    assert consistency_proof(H, 8) == []
    assert consistency_proof([], 0) == []
    with pytest.raises(ValueError, match="size1 <= size2"):
        consistency_proof(H, 9)
    with pytest.raises(ValueError, match="size1 <= size2"):
        consistency_proof(H, -1)
    with pytest.raises(ValueError, match="empty tree"):
        consistency_proof(H, 0)


def test_single_leaf_tree() -> None:
    assert root_of(H[:1]) == H[0]
    assert inclusion_proof(H[:1], 0) == []
    verify_inclusion(leaf_index=0, tree_size=1, leaf_hash=H[0], proof=[], root=H[0])
    _assert_inclusion_rejected(0, 1, H[0], [H[1]], H[0])


@pytest.mark.parametrize(
    ("index", "size"), [(8, 8), (9, 8), (-1, 8), (0, 0), (0, -1), (2**64 - 1, 8)]
)
def test_inclusion_index_out_of_range(index: int, size: int) -> None:
    _assert_inclusion_rejected(index, size, H[0], inclusion_proof(H, 0), ROOT8)


def test_inclusion_rejects_wrong_length_hashes() -> None:
    proof = inclusion_proof(H, 3)
    verify_inclusion(leaf_index=3, tree_size=8, leaf_hash=H[3], proof=proof, root=ROOT8)
    for bad in (b"", H[3][:31], H[3] + b"\x00"):
        _assert_inclusion_rejected(3, 8, bad, proof, ROOT8)
        _assert_inclusion_rejected(3, 8, H[3], proof, bad)
        _assert_inclusion_rejected(3, 8, H[3], [bad, *proof[1:]], ROOT8)
    with pytest.raises(ProofError, match="32-byte"):
        root_from_inclusion_proof(leaf_index=3, tree_size=8, leaf_hash=b"", proof=proof)


def test_inclusion_rejects_wrong_proof_length_with_clear_message() -> None:
    proof = inclusion_proof(H, 3)
    with pytest.raises(ProofError, match="too many"):
        root_from_inclusion_proof(leaf_index=3, tree_size=8, leaf_hash=H[3], proof=[*proof, H[0]])
    with pytest.raises(ProofError, match="too few"):
        root_from_inclusion_proof(leaf_index=3, tree_size=8, leaf_hash=H[3], proof=proof[:-1])


def test_inclusion_rejects_proof_for_another_index_or_size() -> None:
    proof = inclusion_proof(H, 3)
    _assert_inclusion_rejected(2, 8, H[3], proof, ROOT8)
    # Only sizes that change the tree's shape can be caught: the signed root, not the proof,
    # binds the size (a size-8 path for leaf 3 also has a size-7 shape).
    _assert_inclusion_rejected(3, 4, H[3], proof, ROOT8)
    _assert_inclusion_rejected(3, 16, H[3], proof, ROOT8)
    _assert_inclusion_rejected(3, 8, H[2], proof, ROOT8)


def test_consistency_equal_sizes() -> None:
    verify_consistency(size1=8, size2=8, root1=ROOT8, root2=ROOT8, proof=[])
    verify_consistency(size1=0, size2=0, root1=EMPTY_ROOT, root2=EMPTY_ROOT, proof=[])
    _assert_consistency_rejected(8, 8, ROOT8, ROOT8, [ROOT8])
    _assert_consistency_rejected(8, 8, ROOT8, H[0], [])
    _assert_consistency_rejected(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    # Equal roots are not enough for the empty tree: its root is fixed.
    _assert_consistency_rejected(0, 0, ROOT8, ROOT8, [])


def test_consistency_bad_sizes() -> None:
    proof = consistency_proof(H, 3)
    root3 = root_of(H[:3])
    verify_consistency(size1=3, size2=8, root1=root3, root2=ROOT8, proof=proof)
    _assert_consistency_rejected(8, 3, ROOT8, root3, proof)
    _assert_consistency_rejected(-1, 8, root3, ROOT8, proof)
    _assert_consistency_rejected(3, -8, root3, ROOT8, proof)
    _assert_consistency_rejected(0, 8, EMPTY_ROOT, ROOT8, [])
    _assert_consistency_rejected(0, 8, EMPTY_ROOT, ROOT8, proof)
    _assert_consistency_rejected(3, 8, root3, ROOT8, [])
    _assert_consistency_rejected(2, 8, root3, ROOT8, proof)
    _assert_consistency_rejected(3, 4, root3, ROOT8, proof)
    _assert_consistency_rejected(3, 16, root3, ROOT8, proof)


def test_consistency_rejects_wrong_length_hashes() -> None:
    proof = consistency_proof(H, 4)  # size1 a power of two: root1 seeds the path
    root4 = root_of(H[:4])
    verify_consistency(size1=4, size2=8, root1=root4, root2=ROOT8, proof=proof)
    for bad in (b"", root4[:31], root4 + b"\x00"):
        _assert_consistency_rejected(4, 8, bad, ROOT8, proof)
        _assert_consistency_rejected(4, 8, root4, bad, proof)
        _assert_consistency_rejected(4, 8, root4, ROOT8, [bad, *proof[1:]])


# --------------------------------------------------------------------------------------------
# MerkleLog and InMemoryNodes specifics
# --------------------------------------------------------------------------------------------


def test_merkle_log_rejects_out_of_range_arguments() -> None:
    log, _ = build_log([bytes([i]) for i in range(8)], [5, 3])
    with pytest.raises(ValueError, match="out of range"):
        log.root(9)
    with pytest.raises(ValueError, match="out of range"):
        log.root(-1)
    with pytest.raises(ValueError, match="out of range"):
        log.inclusion_proof(8)
    with pytest.raises(ValueError, match="out of range"):
        log.inclusion_proof(5, 5)
    with pytest.raises(ValueError, match="out of range"):
        log.inclusion_proof(0, 9)
    with pytest.raises(ValueError, match="size1 <= size2"):
        log.consistency_proof(6, 5)
    with pytest.raises(ValueError, match="out of range"):
        log.consistency_proof(1, 9)
    with pytest.raises(ValueError, match="empty tree"):
        log.consistency_proof(0, 4)
    with pytest.raises(ValueError, match="out of range"):
        log.leaf(8)
    with pytest.raises(ValueError, match="out of range"):
        log.leaf(-1)
    with pytest.raises(ValueError, match=">= 0"):
        MerkleLog(InMemoryNodes(), -1)
    with pytest.raises(ValueError, match="32"):
        log.plan_append([b"not a hash"])
    assert log.consistency_proof(8) == []


def test_empty_log_and_empty_append() -> None:
    store = InMemoryNodes()
    log = MerkleLog(store, 0)
    assert log.root() == EMPTY_ROOT
    append = log.plan_append([])
    assert append == LogAppend(size=0, root=EMPTY_ROOT, nodes=())
    log.advance(append)
    assert log.size == 0
    with pytest.raises(ValueError):
        log.inclusion_proof(0)


def test_advance_rejects_stale_or_unpersisted_plans() -> None:
    store = InMemoryNodes()
    log = MerkleLog(store, 0)
    first = log.plan_append(H[:3])
    stale = log.plan_append(H[:2])
    with pytest.raises(StorageError):
        log.advance(first)  # nodes not persisted yet
    assert log.size == 0
    store.put_nodes(first.nodes)
    log.advance(first)
    with pytest.raises(ValueError, match="plan again"):
        log.advance(stale)
    assert log.size == 3
    assert log.root() == root_of(H[:3])


def test_missing_node_is_a_storage_error() -> None:
    log = MerkleLog(InMemoryNodes(), 5)
    with pytest.raises(StorageError, match="missing"):
        log.root()
    with pytest.raises(StorageError, match="missing"):
        log.inclusion_proof(0)
    with pytest.raises(StorageError, match="missing"):
        log.leaf(0)


def test_in_memory_nodes_is_append_only() -> None:
    store = InMemoryNodes()
    store.put_nodes([(0, 0, H[0]), (0, 1, H[1])])
    store.put_nodes([(0, 0, H[0])])  # identical rewrite is harmless
    with pytest.raises(ValueError, match="append-only"):
        store.put_nodes([(0, 2, H[2]), (0, 0, H[1])])
    assert store.get_node(0, 2) is None, "a rejected batch must not be partly written"
    assert store.get_node(0, 0) == H[0]
    assert store.get_node(5, 0) is None
    assert len(store) == 2


class _CountingNodes:
    """Answers every read with a synthetic hash and counts reads; hashes are not consistent."""

    def __init__(self) -> None:
        self.reads = 0

    def get_node(self, level: int, index: int) -> bytes:
        self.reads += 1
        return hashlib.sha256(f"{level}/{index}".encode()).digest()


def test_merkle_log_reads_are_logarithmic_at_a_million_leaves() -> None:
    nodes = _CountingNodes()
    n = 1_000_000
    log = MerkleLog(nodes, n)
    rng = random.Random(9162)
    for _ in range(200):
        index = rng.randrange(n)
        size = rng.randrange(index + 1, n + 1)
        nodes.reads = 0
        log.inclusion_proof(index, size)
        assert nodes.reads <= 2 * 20 + 1
        nodes.reads = 0
        log.consistency_proof(rng.randrange(1, size + 1), size)
        assert nodes.reads <= 2 * 20 + 2
        nodes.reads = 0
        log.root(size)
        assert nodes.reads <= 20
    nodes.reads = 0
    append = log.plan_append([leaf_hash(i.to_bytes(4, "big")) for i in range(1000)])
    assert nodes.reads <= 2 * 21
    assert append.size == n + 1000
    assert sum(1 for level, _, _ in append.nodes if level == 0) == 1000


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=25))
def test_a_log_over_its_right_edge_appends_as_over_every_node(batches: list[int]) -> None:
    # The audit's replay keeps only the right edge; every append and root must come out
    # as from a store holding every node, with one node kept per set bit of the size.
    full_nodes, edge = InMemoryNodes(), RightEdge()
    full, lean = MerkleLog(full_nodes, 0), MerkleLog(edge, 0)
    leaf = 0
    for count in batches:
        leaves = [hashlib.sha256(f"leaf {leaf + i}".encode()).digest() for i in range(count)]
        leaf += count
        planned, lean_planned = full.plan_append(leaves), lean.plan_append(leaves)
        assert lean_planned == planned
        full_nodes.put_nodes(planned.nodes)
        full.advance(planned)
        edge.advance(lean_planned.nodes, lean_planned.size)
        lean.advance(lean_planned)
        assert lean.root() == full.root()
        assert len(edge) == bin(leaf).count("1")
