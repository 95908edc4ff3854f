"""Signature checks of an audit made ahead of its replay, by worker processes.

Each worker reads a range of stored blocks and checks every signature with the key it
finds for the signer in the stored (untrusted) final state; the replay then looks up
the outcome of exactly the same check (same key, signature and message) and makes the
check itself whenever the workers did not, so what the workers read can only make the
audit slower, never wrong (see audit.py).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sqlite3
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from healthledger.crypto.canonical import canonical_json_unchecked
from healthledger.crypto.errors import CryptoError
from healthledger.crypto.hashing import sha256_hex
from healthledger.crypto.keys import decode_b64
from healthledger.ledger.state import HistoryEntry, VersionedValue
from healthledger.ledger.validation import IdentityResolver, check_signature

CHUNK_TRANSACTIONS = 1024
"""About this many transactions per unit of work sent to a worker process."""


def _digest(public_key: bytes, signature: bytes, message: bytes) -> bytes:
    """Names one check: a 32-byte key and a 64-byte signature make the split unambiguous."""
    return hashlib.sha256(public_key + signature + message).digest()


class SignatureOutcomes:
    """The checks worker processes found to verify, merged in block order."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self._verified: set[bytes] = set()
        self._pending: list[tuple[int, Future[list[bytes]]]] = []
        """(first height, checks of the blocks from there) in height order."""

    def schedule(self, pool: ProcessPoolExecutor, chunks: Sequence[tuple[int, int]]) -> None:
        """Send every chunk of heights to the workers."""
        self._pending = [
            (first, pool.submit(_worker_verify, first, last)) for first, last in chunks
        ]
        self._pending.reverse()

    def wait_for(self, height: int) -> None:
        """Merge the outcomes of every chunk that starts at or before ``height``."""
        while self._pending and self._pending[-1][0] <= height:
            _, future = self._pending.pop()
            try:
                self._verified.update(future.result())
            except Exception:  # noqa: BLE001, S112 - only hints are lost: the replay checks
                continue

    def check(self, public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
        """A SignatureCheck: a worker's positive outcome for this very check, or check now."""
        if _digest(public_key.public_bytes_raw(), signature, message) in self._verified:
            self.hits += 1
            return True
        self.misses += 1
        return check_signature(public_key, signature, message)


def worker_context() -> multiprocessing.context.BaseContext:
    # fork starts a worker in milliseconds and needs no importable __main__; workers
    # touch nothing the parent's other threads may hold (no console, no open store).
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def chunks(total_blocks: int, total_txs: int) -> list[tuple[int, int]]:
    """(first, last) height ranges of about CHUNK_TRANSACTIONS transactions each."""
    per_chunk = max(1, CHUNK_TRANSACTIONS * total_blocks // max(total_txs, 1))
    return [
        (first, min(first + per_chunk, total_blocks) - 1)
        for first in range(0, total_blocks, per_chunk)
    ]


class _StoredState:
    """The stored final world state, read-only: where workers look for signers' keys."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def get_state(self, ns: str, key: str) -> VersionedValue | None:
        """The stored value of a key."""
        row = self._db.execute(
            "SELECT value, height, idx FROM state WHERE ns=? AND key=?", (ns, key)
        ).fetchone()
        return None if row is None else VersionedValue(json.loads(row[0]), (row[1], row[2]))

    def range_state(
        self, ns: str, start: str, end: str, limit: int
    ) -> Iterator[tuple[str, VersionedValue]]:
        """Stored keys in [start, end)."""
        rows = self._db.execute(
            "SELECT key, value, height, idx FROM state WHERE ns=? AND key>=? "
            "AND (?='' OR key<?) ORDER BY key LIMIT ?",
            (ns, start, end, end, limit),
        )
        for key, value, height, idx in rows:
            yield key, VersionedValue(json.loads(value), (height, idx))

    def key_history(self, ns: str, key: str, limit: int) -> list[HistoryEntry]:
        """Not needed to find keys."""
        return []


class _Worker:
    """A worker process's read-only view of the store and the keys it has found."""

    def __init__(self, uri: str, identities: IdentityResolver) -> None:
        self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
        self._state = _StoredState(self._db)
        self._identities = identities
        self._keys: dict[str, tuple[Ed25519PublicKey, bytes] | None] = {}

    def verify_blocks(self, first: int, last: int) -> list[bytes]:
        """Digests of the signature checks of blocks first..last that verify."""
        verified: list[bytes] = []
        rows = self._db.execute(
            "SELECT body FROM blocks WHERE height BETWEEN ? AND ? ORDER BY height", (first, last)
        )
        for (body,) in rows:
            try:
                transactions = json.loads(body)["transactions"]
            except (LookupError, TypeError, ValueError):
                continue
            for tx in transactions if isinstance(transactions, list) else ():
                try:
                    self._verify_tx(tx, verified)
                except (LookupError, TypeError, ValueError, AttributeError, CryptoError):
                    continue  # malformed: the replay reports it
        return verified

    def _verify_tx(self, tx: Any, verified: list[bytes]) -> None:
        # The same bytes Transaction computes, straight from the parsed JSON: a block
        # body is canonical, so re-encoding a part gives that part's canonical form.
        signed = tx["signed_proposal"]
        signed_bytes = canonical_json_unchecked(signed["proposal"])
        self._verify(signed["proposal"]["creator"], signed["signature"], signed_bytes, verified)
        tx_id = sha256_hex(canonical_json_unchecked(signed))
        payload = (
            b'{"response":'
            + canonical_json_unchecked(tx["response"])
            + b',"tx_id":'
            + canonical_json_unchecked(tx_id)
            + b"}"
        )
        for endorsement in tx["endorsements"]:
            self._verify(endorsement["endorser"], endorsement["signature"], payload, verified)

    def _verify(
        self, identity_id: str, signature_b64: str, message: bytes, verified: list[bytes]
    ) -> None:
        if identity_id not in self._keys:
            identity = self._identities.resolve(identity_id, self._state)
            self._keys[identity_id] = (
                None
                if identity is None
                else (identity.public_key, identity.public_key.public_bytes_raw())
            )
        key = self._keys[identity_id]
        signature = decode_b64(signature_b64, what="signature")
        if key is not None and check_signature(key[0], signature, message):
            verified.append(_digest(key[1], signature, message))


# Set in each worker process by its pool's initializer; never used in the parent.
_worker: _Worker | None = None


def worker_start(uri: str, identities: IdentityResolver) -> None:
    """Open the store in a new worker process (the pool's initializer)."""
    global _worker
    _worker = _Worker(uri, identities)


def _worker_verify(first: int, last: int) -> list[bytes]:
    assert _worker is not None, "not a worker process"
    return _worker.verify_blocks(first, last)
