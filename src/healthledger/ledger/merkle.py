"""RFC 9162 Merkle trees: leaf and node hashing, audit paths, consistency proofs, and the
persistent append-only log that the block store keeps over every committed transaction.

Hashes are raw 32-byte SHA-256 digests with the RFC 9162 section 2.1.1 domain separation:
``leaf = SHA-256(0x00 || data)`` and ``node = SHA-256(0x01 || left || right)``; the empty
tree's root is ``SHA-256("")``.

Proof *generation* (both for a list of leaf hashes and for :class:`MerkleLog`) follows the
recursive definitions PATH and PROOF of RFC 9162 sections 2.1.3.1 and 2.1.4.1. Proof
*verification* follows the iterative algorithms of sections 2.1.3.2 and 2.1.4.2 step by step;
verifiers return ``None`` or raise :class:`~healthledger.ledger.errors.ProofError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from healthledger.ledger.errors import ProofError, StorageError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "InMemoryNodes",
    "LogAppend",
    "MerkleLog",
    "NodeReader",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final[int] = 32
EMPTY_ROOT: Final[bytes] = hashlib.sha256(b"").digest()

_LEAF_PREFIX: Final[bytes] = b"\x00"
_NODE_PREFIX: Final[bytes] = b"\x01"

# (level, index) -> hash of the perfect subtree over leaves [index * 2**level, (index+1) * 2**level)
_NodeGetter = Callable[[int, int], bytes]


# --------------------------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash ``SHA-256(0x00 || data)`` of one log entry."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash ``SHA-256(0x01 || left || right)``.

    No length check is made here: this is the inner loop of every proof computation, and all
    public entry points validate hash lengths before they reach it.
    """
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


# --------------------------------------------------------------------------------------------
# Internal helpers shared by the list functions and MerkleLog
# --------------------------------------------------------------------------------------------


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (``n >= 2``): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_hash(get: _NodeGetter, start: int, end: int) -> bytes:
    """MTH of leaves ``[start, end)`` from at most log2(end - start) + 1 perfect-subtree reads.

    Only valid for ranges that arise in the RFC recursion: ``start`` is a multiple of a power
    of two that is ``>= end - start``. Such a range splits, by the binary digits of its width
    from the highest down, into aligned perfect subtrees, and because the RFC always splits at
    the largest power of two below the width, the MTH is the right fold of those pieces.
    """
    if start == end:
        return EMPTY_ROOT
    pieces: list[bytes] = []
    pos = start
    remaining = end - start
    while remaining:
        level = remaining.bit_length() - 1
        pieces.append(get(level, pos >> level))
        pos += 1 << level
        remaining -= 1 << level
    acc = pieces.pop()
    while pieces:
        acc = node_hash(pieces.pop(), acc)
    return acc


def _perfect(get: _NodeGetter, start: int, width: int) -> bytes:
    level = width.bit_length() - 1
    return get(level, start >> level)


def _path(get: _NodeGetter, index: int, size: int) -> list[bytes]:
    """RFC 9162 PATH(index, D[0:size]), unrolled from the root down and reversed at the end.

    Every left sibling met on the way down is a perfect subtree (one read); a right sibling
    can be imperfect, but only the first one is, since after turning left the walk stays
    inside a perfect subtree. So this costs O(log size) reads whatever the backing store.
    """
    proof: list[bytes] = []
    start, n = 0, size
    while n > 1:
        k = _split(n)
        if index - start < k:
            proof.append(_range_hash(get, start + k, start + n))
            n = k
        else:
            proof.append(_perfect(get, start, k))
            start += k
            n -= k
    proof.reverse()
    return proof


def _subproof(get: _NodeGetter, size1: int, size2: int) -> list[bytes]:
    """RFC 9162 PROOF(size1, D[0:size2]) = SUBPROOF(size1, D[0:size2], true), unrolled."""
    proof: list[bytes] = []
    start, m, n = 0, size1, size2
    # RFC's flag b: while true, the subtree [start, start+m) is the verifier's old tree itself,
    # whose root it already holds, so that root is left out of the proof.
    old_root_known = True
    while m != n:
        k = _split(n)
        if m <= k:
            proof.append(_range_hash(get, start + k, start + n))
            n = k
        else:
            proof.append(_perfect(get, start, k))
            start += k
            m -= k
            n -= k
            old_root_known = False
    if not old_root_known:
        proof.append(_range_hash(get, start, start + n))
    proof.reverse()
    return proof


def _as_leaf_hashes(leaf_hashes: Sequence[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for i, h in enumerate(leaf_hashes):
        if len(h) != HASH_SIZE:
            raise ValueError(
                f"leaf hash #{i} is {len(h)} bytes, expected {HASH_SIZE}; "
                "pass leaf_hash(data), not the raw entry"
            )
        out.append(bytes(h))
    return out


def _levels_getter(leaf_hashes: Sequence[bytes]) -> tuple[_NodeGetter, int]:
    """Build every perfect-subtree level of a list of leaves (O(n) hashes) and a reader."""
    levels = [_as_leaf_hashes(leaf_hashes)]
    while len(levels[-1]) >= 2:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def get(level: int, index: int) -> bytes:
        return levels[level][index]

    return get, len(levels[0])


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, expected a {HASH_SIZE}-byte SHA-256 hash")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for i, p in enumerate(proof):
        _check_hash(f"proof element {i}", p)


# --------------------------------------------------------------------------------------------
# Trees over an explicit list of leaf hashes
# --------------------------------------------------------------------------------------------


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return MTH(D[n]) for already-hashed leaves; ``EMPTY_ROOT`` for no leaves.

    Raises ``ValueError`` if a leaf hash is not 32 bytes.
    """
    # A running stack of perfect-subtree roots keeps memory at O(log n) for big inputs.
    stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing
    for h in _as_leaf_hashes(leaf_hashes):
        level, acc = 0, h
        while stack and stack[-1][0] == level:
            acc = node_hash(stack.pop()[1], acc)
            level += 1
        stack.append((level, acc))
    if not stack:
        return EMPTY_ROOT
    acc = stack.pop()[1]
    while stack:
        acc = node_hash(stack.pop()[1], acc)
    return acc


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path PATH(index, D[n]) of RFC 9162 section 2.1.3.1, leaf side first.

    Raises ``ValueError`` unless ``0 <= index < len(leaf_hashes)``.
    """
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} is out of range for a tree of {n} leaves")
    get, _ = _levels_getter(leaf_hashes)
    return _path(get, index, n)


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """Return PROOF(size1, D[n]) of RFC 9162 section 2.1.4.1, with ``n = len(leaf_hashes)``.

    ``size1 == n`` gives the empty proof. ``size1 == 0 < n`` raises ``ValueError``: the RFC
    defines no proof from the empty tree, and :func:`verify_consistency` rejects one.
    """
    n = len(leaf_hashes)
    _check_consistency_sizes(size1, n)
    if size1 == n:
        _as_leaf_hashes(leaf_hashes)
        return []
    get, _ = _levels_getter(leaf_hashes)
    return _subproof(get, size1, n)


def _check_consistency_sizes(size1: int, size2: int) -> None:
    if not 0 <= size1 <= size2:
        raise ValueError(f"consistency proof needs 0 <= size1 <= size2, got {size1} and {size2}")
    if size1 == 0 and size2 > 0:
        raise ValueError(
            "no consistency proof exists from the empty tree (RFC 9162 requires 0 < size1): "
            "every tree extends it, so there is nothing to prove"
        )


# --------------------------------------------------------------------------------------------
# Verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2)
# --------------------------------------------------------------------------------------------


def root_from_inclusion_proof(
    *, leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """Run RFC 9162 section 2.1.3.2 and return the root the inclusion proof leads to.

    Raises ``ProofError`` if the index is out of range, a hash is not 32 bytes, or the proof
    has the wrong number of elements for ``(leaf_index, tree_size)``.
    """
    if leaf_index < 0 or tree_size < 0:
        raise ProofError(f"negative leaf index or tree size ({leaf_index}, {tree_size})")
    if leaf_index >= tree_size:
        raise ProofError(f"leaf index {leaf_index} is not below tree size {tree_size}")
    _check_hash("leaf hash", leaf_hash)
    _check_proof_hashes(proof)

    fn, sn = leaf_index, tree_size - 1
    r = bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            raise ProofError(
                f"inclusion proof has {len(proof)} elements, too many for leaf {leaf_index} "
                f"of a tree of size {tree_size}"
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # On the right border the RFC tree skips levels where this node has no sibling.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(
            f"inclusion proof has {len(proof)} elements, too few for leaf {leaf_index} "
            f"of a tree of size {tree_size}"
        )
    return r


def verify_inclusion(
    *, leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` sits at ``leaf_index`` of the tree of ``tree_size`` with ``root``.

    Returns ``None`` on success and raises ``ProofError`` on any malformed or failing proof.
    """
    _check_hash("root", root)
    calculated = root_from_inclusion_proof(
        leaf_index=leaf_index, tree_size=tree_size, leaf_hash=leaf_hash, proof=proof
    )
    if calculated != root:
        raise ProofError(
            f"inclusion proof for leaf {leaf_index} of tree size {tree_size} leads to root "
            f"{calculated.hex()}, not the expected {bytes(root).hex()}"
        )


def verify_consistency(
    *, size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the tree of ``size1``/``root1``.

    Follows RFC 9162 section 2.1.4.2 for ``0 < size1 < size2``. Outside that range:
    ``size1 == size2`` needs an empty proof and equal roots (the empty tree's root when both are
    0); ``size1 == 0 < size2`` is rejected, as no proof from the empty tree exists.
    Returns ``None`` on success and raises ``ProofError`` otherwise.
    """
    if size1 < 0 or size2 < 0:
        raise ProofError(f"negative tree size ({size1}, {size2})")
    if size1 > size2:
        raise ProofError(f"size1 {size1} is larger than size2 {size2}: a log cannot shrink")
    if size1 == size2:
        if proof:
            raise ProofError(f"trees of equal size need an empty proof, got {len(proof)} elements")
        if root1 != root2:
            raise ProofError(f"trees of equal size {size1} have different roots")
        # Nothing else pins root1 when both trees are empty, but the empty root is fixed.
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise ProofError("the root of the empty tree must be SHA-256 of the empty string")
        return
    if size1 == 0:
        raise ProofError(
            "a consistency proof from the empty tree proves nothing (RFC 9162 needs 0 < size1)"
        )
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    _check_proof_hashes(proof)
    if not proof:
        raise ProofError(f"empty consistency proof between sizes {size1} and {size2}")

    path = list(proof)
    if size1 & (size1 - 1) == 0:
        # The old tree is a perfect subtree of the new one, so its root is the proof's seed.
        path.insert(0, bytes(root1))
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(
                f"consistency proof has {len(proof)} elements, too many for sizes "
                f"{size1} and {size2}"
            )
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(
            f"consistency proof has {len(proof)} elements, too few for sizes {size1} and {size2}"
        )
    if fr != root1:
        raise ProofError(f"consistency proof does not lead to root1 of the tree of size {size1}")
    if sr != root2:
        raise ProofError(f"consistency proof does not lead to root2 of the tree of size {size2}")


# --------------------------------------------------------------------------------------------
# Persistent append-only log
# --------------------------------------------------------------------------------------------


class NodeReader(Protocol):
    """Read access to stored perfect-subtree hashes.

    Level 0 holds leaf hashes; node ``(level k, index i)`` is the root of the perfect subtree
    over leaves ``[i * 2**k, (i + 1) * 2**k)``. Missing nodes are reported as ``None``.
    """

    def get_node(self, level: int, index: int) -> bytes | None:
        """Return the stored hash of node ``(level, index)``, or ``None`` if absent."""
        ...


@dataclass(frozen=True)
class LogAppend:
    """The outcome of :meth:`MerkleLog.plan_append`, to be persisted with its block.

    ``nodes`` lists ``(level, index, hash)`` for every leaf appended and every perfect subtree
    that the append completes, lowest level first.
    """

    size: int
    root: bytes
    nodes: tuple[tuple[int, int, bytes], ...]


class InMemoryNodes:
    """Dict-backed :class:`NodeReader` for tests and for ledgers that fit in memory."""

    def __init__(self) -> None:
        """Create an empty node store."""
        self._nodes: dict[tuple[int, int], bytes] = {}

    def get_node(self, level: int, index: int) -> bytes | None:
        """Return the stored hash of node ``(level, index)``, or ``None`` if absent."""
        return self._nodes.get((level, index))

    def put_nodes(self, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        """Store nodes, all or none; rewriting a node with a different hash is a ``ValueError``.

        The log is append-only, so a conflicting rewrite can only mean a plan made from a stale
        log; refusing it keeps the store from silently forking.
        """
        batch = list(nodes)
        for level, index, h in batch:
            old = self._nodes.get((level, index))
            if old is not None and old != h:
                raise ValueError(
                    f"node (level {level}, index {index}) is already stored with a "
                    "different hash; the log is append-only"
                )
        for level, index, h in batch:
            self._nodes[(level, index)] = bytes(h)

    def __len__(self) -> int:
        """Return how many nodes are stored."""
        return len(self._nodes)


class MerkleLog:
    """An RFC 9162 log over a :class:`NodeReader` that holds every perfect-subtree hash.

    Roots and proofs at any size combine stored perfect subtrees, so each costs O(log n) reads
    and hashes, whatever the log size. Writing is left to the caller, so nodes reach storage in
    the same transaction as the block they belong to:
    ``plan_append`` -> persist ``LogAppend.nodes`` -> ``advance``.
    """

    def __init__(self, nodes: NodeReader, size: int) -> None:
        """Open a log whose first ``size`` leaves (and their perfect subtrees) are stored."""
        if size < 0:
            raise ValueError(f"log size must be >= 0, got {size}")
        self._nodes = nodes
        self._size = size

    @property
    def size(self) -> int:
        """Number of leaves in the log."""
        return self._size

    def _read(self, level: int, index: int) -> bytes:
        h = self._nodes.get_node(level, index)
        if h is None:
            raise StorageError(
                f"Merkle node (level {level}, index {index}) is missing from the node store "
                f"of a log of size {self._size}"
            )
        if len(h) != HASH_SIZE:
            raise StorageError(f"Merkle node (level {level}, index {index}) is {len(h)} bytes")
        return h

    def _resolve_size(self, size: int | None) -> int:
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise ValueError(f"tree size {size} is out of range for a log of size {self._size}")
        return size

    def plan_append(self, leaf_hashes: Sequence[bytes]) -> LogAppend:
        """Compute, without writing, the nodes and root after appending ``leaf_hashes``.

        Costs about two hashes per leaf plus O(log n) reads. Raises ``ValueError`` if a leaf
        hash is not 32 bytes.
        """
        old = self._size
        batch = _as_leaf_hashes(leaf_hashes)
        if not batch:
            return LogAppend(size=old, root=self.root(), nodes=())
        new = old + len(batch)
        sha256 = hashlib.sha256

        # new_levels[k] holds the new nodes of level k, which start at index old >> k.
        new_levels: list[list[bytes]] = [batch]
        nodes: list[tuple[int, int, bytes]] = [(0, old + i, h) for i, h in enumerate(batch)]
        level = 0
        while True:
            lo, hi = old >> (level + 1), new >> (level + 1)
            if lo >= hi:
                break
            below, below_lo = new_levels[level], old >> level
            parents: list[bytes] = []
            for j in range(lo, hi):
                left_index = 2 * j
                # Only the leftmost parent can have an already-stored left child.
                left = (
                    below[left_index - below_lo]
                    if left_index >= below_lo
                    else self._read(level, left_index)
                )
                h = sha256(_NODE_PREFIX + left + below[left_index + 1 - below_lo]).digest()
                parents.append(h)
                nodes.append((level + 1, j, h))
            new_levels.append(parents)
            level += 1

        def get(lvl: int, index: int) -> bytes:
            first_new = old >> lvl
            if index >= first_new and lvl < len(new_levels):
                return new_levels[lvl][index - first_new]
            return self._read(lvl, index)

        return LogAppend(size=new, root=_range_hash(get, 0, new), nodes=tuple(nodes))

    def advance(self, append: LogAppend) -> None:
        """Move the log to ``append.size`` once ``append.nodes`` are persisted.

        Raises ``ValueError`` if the plan was made from a different log size, and
        ``StorageError`` if the store does not yield the planned root (nodes not persisted).
        """
        added = sum(1 for level, _, _ in append.nodes if level == 0)
        if append.size - added != self._size:
            raise ValueError(
                f"append plan goes from size {append.size - added} to {append.size}, but the log "
                f"is at size {self._size}; plan again from the current log"
            )
        if _range_hash(self._read, 0, append.size) != append.root:
            raise StorageError(
                f"stored nodes give a different root at size {append.size} than planned"
            )
        self._size = append.size

    def root(self, size: int | None = None) -> bytes:
        """Return the root at ``size`` leaves (default: current size); ``EMPTY_ROOT`` at 0.

        Raises ``ValueError`` if ``size`` is negative or beyond the current log size.
        """
        return _range_hash(self._read, 0, self._resolve_size(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return PATH(index, D[size]) for the log at ``size`` (default: current size).

        Raises ``ValueError`` unless ``0 <= index < size <= self.size``.
        """
        n = self._resolve_size(size)
        if not 0 <= index < n:
            raise ValueError(f"leaf index {index} is out of range for tree size {n}")
        return _path(self._read, index, n)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """Return PROOF(size1, D[size2]) (default ``size2``: current size).

        Empty when ``size1 == size2``. Raises ``ValueError`` unless
        ``0 < size1 <= size2 <= self.size`` or ``size1 == size2 == 0``.
        """
        n = self._resolve_size(size2)
        _check_consistency_sizes(size1, n)
        if size1 == n:
            return []
        return _subproof(self._read, size1, n)

    def leaf(self, index: int) -> bytes:
        """Return the leaf hash at ``index``; ``ValueError`` unless ``0 <= index < size``."""
        if not 0 <= index < self._size:
            raise ValueError(f"leaf index {index} is out of range for a log of size {self._size}")
        return self._read(0, index)
