"""Signature checks of an audit made ahead of its replay, by worker processes.

The audit decodes each block before it replays it (ledger.audit); as it does, it sends
the block's signature checks (key, signature, message) in large batches to worker
processes, which only verify. The signer's key is the one the stored (untrusted) final
state names; the replay then looks up the outcome of exactly the same check (same key,
signature and message) and makes the check itself whenever the workers did not, so
what the workers were sent can only make the audit slower, never wrong.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from healthledger.crypto.errors import CryptoError
from healthledger.ledger.audit_source import StoredDb
from healthledger.ledger.block import Block
from healthledger.ledger.errors import LedgerError
from healthledger.ledger.state import HistoryEntry, VersionedValue
from healthledger.ledger.transaction import unique_endorsers
from healthledger.ledger.validation import IdentityResolver, check_signature

BATCH_SIGNATURES = 1024
"""Signature checks sent to a worker process at once."""

Check = tuple[bytes, bytes, bytes]
"""(raw public key, signature, message) of one Ed25519 check."""


class SignatureOutcomes:
    """Checks sent ahead to worker processes, and the outcomes the replay looks up."""

    def __init__(
        self, pool: ProcessPoolExecutor, identities: IdentityResolver, db: StoredDb
    ) -> None:
        self.hits = 0
        self.misses = 0
        self._pool = pool
        self._identities = identities
        self._state = _StoredState(db)
        self._keys: dict[str, bytes | None] = {}
        self._batch: list[Check] = []
        self._batch_first = 0
        """Height of the first block with checks in the batch being gathered."""
        self._pending: deque[tuple[int, list[Check], Future[list[bool]]]] = deque()
        """(first height, checks, their outcomes) of the batches sent, in height order."""
        self._verified: dict[tuple[bytes, bytes], bytes] = {}
        """(signature, message) -> raw key, for each check a worker found to verify."""

    def send(self, height: int, block: Block) -> None:
        """Gather the checks of block ``height``; send each batch that is full."""
        if not self._batch:
            self._batch_first = height
        for tx in block.transactions:
            try:
                signed = tx.signed_proposal
                self._add(tx.proposal.creator, signed.signature, signed.signed_bytes)
                payload = tx.endorsed_bytes
                for endorsement in unique_endorsers(tx.endorsements):
                    self._add(endorsement.endorser, endorsement.signature, payload)
            except (LedgerError, CryptoError, LookupError, TypeError, ValueError):
                continue  # the replay finds out what is wrong and says so
        if len(self._batch) >= BATCH_SIGNATURES:
            self._flush()

    def wait_for(self, height: int) -> None:
        """Merge the outcomes of every batch with checks of blocks up to ``height``."""
        if self._batch and self._batch_first <= height:
            self._flush()
        while self._pending and self._pending[0][0] <= height:
            _, checks, future = self._pending.popleft()
            try:
                outcomes = future.result()
            except Exception:  # noqa: BLE001, S112 - only hints are lost: the replay checks
                continue
            for (key, signature, message), ok in zip(checks, outcomes, strict=False):
                if ok:
                    self._verified[(signature, message)] = key

    def check(self, public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
        """A SignatureCheck: a worker's positive outcome for this very check, or check now."""
        key = self._verified.pop((signature, message), None)
        if key is not None and key == public_key.public_bytes_raw():
            self.hits += 1
            return True
        self.misses += 1
        return check_signature(public_key, signature, message)

    def _add(self, identity_id: str, signature: bytes, message: bytes) -> None:
        if identity_id not in self._keys:
            identity = self._identities.resolve(identity_id, self._state)
            self._keys[identity_id] = (
                None if identity is None else identity.public_key.public_bytes_raw()
            )
        key = self._keys[identity_id]
        if key is not None:
            self._batch.append((key, bytes(signature), message))

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        self._pending.append((self._batch_first, batch, self._pool.submit(_verify_batch, batch)))


def worker_context() -> multiprocessing.context.BaseContext:
    # fork starts a worker in milliseconds and needs no importable __main__; workers
    # touch nothing the parent's other threads may hold (no console, no open store).
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class _StoredState:
    """The stored final world state, read-only: where the signers' keys are looked up."""

    def __init__(self, db: StoredDb) -> None:
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


# A worker process's keys parsed so far (a few signers sign most transactions); only
# ever filled in the worker processes.
_keys: dict[bytes, Ed25519PublicKey] = {}


def worker_start() -> None:
    """Start a worker process with no keys parsed (the pool's initializer)."""
    _keys.clear()


def _verify_batch(checks: list[Check]) -> list[bool]:
    outcomes = []
    for raw, signature, message in checks:
        key = _keys.get(raw)
        if key is None:
            key = _keys[raw] = Ed25519PublicKey.from_public_bytes(raw)
        outcomes.append(check_signature(key, signature, message))
    return outcomes
