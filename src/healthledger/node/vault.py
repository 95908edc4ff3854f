"""The private-data vault of one organisation.

A value written with ``ctx.put_private`` never goes on chain: the chain holds
SHA-256(key) and SHA-256(salt || canonical value), the salt an HMAC under the
vault's secret so nobody else can test guesses. The value is sealed with
AES-256-GCM under a fresh data key, which is wrapped with the vault's X25519
key (one ephemeral key agreement serves a few hundred wraps, each with its own
nonce). Erasing a value's wrapped data key (``shred``) erases the value for good
while the chain stays intact.

Staged values are written before the transaction is ordered, marked pending,
and confirmed or dropped when its block commits, so nothing is lost to a crash.
A value's sealed row is written once; its pending mark is a small row of its own
that settling deletes (``vault_schema``: the tables and their format versions).
A value staged for the peer's own endorsement may wait in memory
(``durable=False``); the peer calls ``sync`` before it orders the transaction,
and one SQLite transaction and one fsync write every value staged so far (group
commit). A value lost with the process before its sync belonged to a transaction
that was never ordered. Settling needs no fsync of its own: a settle lost to a
crash is redone from the ledger when the peer starts.

In a consortium each peer holds only its own organisation's vault. A peer that
simulates a proposal may still write to a collection of the organisation of the
proposal's creator (``ProposalStaging`` with ``disclose``): it computes the commitment
and hands the value, the salt and the key back to the creator's gateway only (a
``Disclosure``), which checks it against the commitment and stages it in the
creator's vault (``Vault.stage_disclosed``). The requester sent those values itself,
so returning them leaks nothing; any other organisation's collection is refused.
So that every endorser of a proposal (the creator's own peer among them) commits to
the same salt, a write to a creator's collection from a proposal with a transient map
is salted with an HMAC keyed by a hash of that map (which carries a random ``_salt``
and is known only to the requester and the endorsers), not by one vault's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthledger.contracts.errors import AccessDenied
from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.envelope import (
    KeyWrapper,
    Sealed,
    VaultKey,
    WrappedKey,
    open_sealed,
    seal,
    unwrap_key,
)
from healthledger.crypto.errors import DecryptionError
from healthledger.errors import HealthledgerError
from healthledger.ledger.transaction import PrivateWrite
from healthledger.node.vault_schema import open_schema

WRAPS_PER_AGREEMENT = 256
"""Data keys wrapped under one ephemeral X25519 agreement before a new one is drawn: the
agreement is most of a value's sealing cost, and random nonces stay far from
colliding under one key-encryption key."""


def key_hash(key: str) -> str:
    """The on-chain hash of a private key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def value_hash(salt: bytes, value: Any) -> str:
    """The on-chain commitment to a private value."""
    return hashlib.sha256(salt + canonical_json(value)).hexdigest()


def transient_salt_key(transient: Mapping[str, Any] | None) -> bytes | None:
    """The key that salts writes to the proposal creator's collections: SHA-256 over a
    domain tag and the canonical transient map; None without a transient map."""
    if transient is None:
        return None
    return hashlib.sha256(b"healthledger/private-salt\n" + canonical_json(dict(transient))).digest()


def derived_salt(salt_key: bytes, tx_id: str, collection: str, key: str) -> bytes:
    """The salt of ``key`` of ``collection`` in ``tx_id`` under ``salt_key``."""
    return hmac.new(salt_key, f"{tx_id}\n{collection}\n{key}".encode(), hashlib.sha256).digest()


def collection_org(collection: str) -> str:
    """The organisation whose vault holds ``collection`` (``org/name``)."""
    return collection.split("/", 1)[0]


class DisclosureError(ValueError, HealthledgerError):
    """A disclosed private value is malformed or does not match its commitment."""


@dataclass(frozen=True)
class Disclosure:
    """A private value written by a peer that does not hold its collection's vault,
    returned to the creator's gateway beside the endorsement (never on chain, never
    in the transaction, never logged)."""

    collection: str
    """``org/name``: the collection of the proposal creator's organisation."""
    key: str
    """The key in the clear (the chain holds its hash)."""
    salt: bytes
    """The salt the endorsing peer committed with."""
    value: Any
    """The value in the clear."""

    def commitment(self) -> PrivateWrite:
        """The on-chain commitment, computed as the vault computes it."""
        return PrivateWrite(self.collection, key_hash(self.key), value_hash(self.salt, self.value))

    def to_json(self) -> dict[str, Any]:
        """The JSON form (salt in hex)."""
        return {
            "collection": self.collection,
            "key": self.key,
            "salt": self.salt.hex(),
            "value": self.value,
        }

    @classmethod
    def from_json(cls, raw: Any) -> Disclosure:
        """Parse the JSON form; DisclosureError naming the field, never the value."""
        if not isinstance(raw, Mapping) or set(raw) != {"collection", "key", "salt", "value"}:
            raise DisclosureError(
                "a private value is an object with collection, key, salt and value"
            )
        collection, key, salt = raw["collection"], raw["key"], raw["salt"]
        if not isinstance(collection, str) or "/" not in collection:
            raise DisclosureError("a private value's collection is not 'org/name'")
        if not isinstance(key, str) or not key:
            raise DisclosureError(f"a private value of {collection!r} has no key")
        try:
            salt_bytes = bytes.fromhex(salt) if isinstance(salt, str) else b""
        except ValueError:
            salt_bytes = b""
        if len(salt_bytes) != hashlib.sha256().digest_size:
            raise DisclosureError(f"a private value of {collection!r} has no 32-byte hex salt")
        if raw["value"] is None:
            raise DisclosureError(f"a private value of {collection!r} is null")
        return cls(collection, key, salt_bytes, raw["value"])


def match_disclosures(disclosures: Sequence[Disclosure], writes: Sequence[PrivateWrite]) -> None:
    """Check that every disclosure is one of ``writes`` (same collection, key hash and
    salted value hash, computed as the vault computes them); DisclosureError naming
    the collection otherwise."""
    committed = set(writes)
    for disclosure in disclosures:
        if disclosure.commitment() not in committed:
            raise DisclosureError(
                f"returned a value for collection {disclosure.collection!r} that does not "
                "match the commitment in the read/write set"
            )


class Vault:
    """An organisation's encrypted private-data store, in its own SQLite file."""

    def __init__(self, path: Path | str, *, org: str, key: VaultKey, secret: bytes) -> None:
        self.org = org
        self._key = key
        self._secret = secret
        self._wrap_lock = threading.Lock()
        self._wrapper: KeyWrapper | None = None
        self._wraps_left = 0
        self._lock = threading.Lock()
        """Held while the writing connection is used (a write may wait for an fsync)."""
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            open_schema(self._db, path)
        except BaseException:
            self._db.close()
            raise
        # Reads use their own connection, so they never wait for a write's fsync.
        self._read_lock = threading.Lock()
        self._reader = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._buffer_lock = threading.Lock()
        self._buffer: list[tuple[Any, ...]] = []
        """Rows staged with ``durable=False``, written by the next ``sync``."""
        self._staged = 0
        """Rows ever staged (numbering them in staging order)."""
        self._written = 0
        """Rows staged, in order, that are written and synced."""
        self.committed_valid: Callable[[str], bool] = lambda _tx_id: False
        """Whether a transaction is committed VALID on the ledger (set by the peer), so a
        value read between a block's commit and the settling of its vaults is found."""

    def owns(self, collection: str) -> bool:
        """True if ``collection`` (``org/name``) belongs to this vault's organisation."""
        return collection.split("/", 1)[0] == self.org

    def salt(self, tx_id: str, collection: str, key: str) -> bytes:
        """The salt this vault commits ``key`` of ``collection`` with in ``tx_id``: an
        HMAC under the vault's secret, so nobody else can test guesses."""
        return hmac.new(
            self._secret, f"{tx_id}\n{collection}\n{key}".encode(), hashlib.sha256
        ).digest()

    def stage(
        self,
        tx_id: str,
        collection: str,
        key: str,
        value: Any,
        *,
        durable: bool = True,
        salt: bytes | None = None,
    ) -> PrivateWrite:
        """Seal ``value`` as pending for ``tx_id`` and return its on-chain commitment
        (salted with ``salt``, by default this vault's own); with ``durable=False`` it is
        written only at the next ``sync``, which must come before the transaction is
        ordered."""
        if salt is None:
            salt = self.salt(tx_id, collection, key)
        encoded = canonical_json(value)  # once: sealed and committed to
        self._stage_row(tx_id, collection, key, encoded, salt, durable=durable)
        committed = hashlib.sha256(salt + encoded).hexdigest()
        return PrivateWrite(collection, key_hash(key), committed)

    def stage_disclosed(
        self, tx_id: str, disclosure: Disclosure, *, durable: bool = True
    ) -> PrivateWrite:
        """Seal a value another peer committed to (with its own salt) as pending for
        ``tx_id``, as ``stage`` does; AccessDenied if the collection is not ours."""
        if not self.owns(disclosure.collection):
            raise AccessDenied(f"collection {disclosure.collection!r} is not of {self.org}")
        self._stage_row(
            tx_id,
            disclosure.collection,
            disclosure.key,
            canonical_json(disclosure.value),
            disclosure.salt,
            durable=durable,
        )
        return disclosure.commitment()

    def _stage_row(
        self, tx_id: str, collection: str, key: str, encoded: bytes, salt: bytes, *, durable: bool
    ) -> None:
        aad = f"{collection}\n{key}".encode()
        sealed, data_key = seal(encoded, associated_data=aad)
        wrapped = self._wrap(data_key)
        row = (
            collection,
            key,
            tx_id,
            salt,
            json.dumps(sealed.to_json()),
            json.dumps(wrapped.to_json()),
        )
        with self._buffer_lock:
            self._buffer.append(row)
            self._staged += 1
        if durable:
            self.sync()

    def _wrap(self, data_key: bytes) -> WrappedKey:
        """``data_key`` wrapped for this vault's key; one ephemeral key agreement serves
        ``WRAPS_PER_AGREEMENT`` values (each still has a data key of its own)."""
        with self._wrap_lock:
            if self._wrapper is None or self._wraps_left <= 0:
                self._wrapper = KeyWrapper(self._key.public_bytes())
                self._wraps_left = WRAPS_PER_AGREEMENT
            self._wraps_left -= 1
            wrapper = self._wrapper
        return wrapper.wrap(data_key)

    def sync(self) -> bool:
        """Write and fsync every value staged so far; False if there was none.

        Group commit: one SQLite transaction and one fsync hold every row staged up to
        the moment it starts; a caller that finds a sync under way waits for it and
        then writes what was staged meanwhile, unless that sync already held it."""
        with self._buffer_lock:
            wanted = self._staged
        if self._written >= wanted:
            return False
        with self._lock:
            if self._written >= wanted:
                return False
            with self._buffer_lock:
                rows, self._buffer = self._buffer, []
                upto = self._staged
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR REPLACE INTO private VALUES (?, ?, ?, ?, ?, ?)", rows
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO pending VALUES (?, ?, ?)",
                    [(tx_id, collection, key) for collection, key, tx_id, *_ in rows],
                )
                self._db.execute("COMMIT")
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                with self._buffer_lock:
                    self._buffer[:0] = rows  # keep them for the next attempt
                raise
            self._written = upto
            return True

    @property
    def unsynced(self) -> int:
        """Values staged and not yet written durably."""
        return self._staged - self._written

    def settle(self, tx_id: str, *, valid: bool) -> None:
        """Confirm a committed transaction's staged values, or drop an invalid one's."""
        self.settle_many([(tx_id, valid)])

    def settle_many(self, outcomes: Sequence[tuple[str, bool]]) -> None:
        """Settle several transactions (id, valid) in one SQLite transaction: a valid
        one's pending marks are deleted, an invalid one's values with their marks; no
        sealed value is rewritten. It is not synced on its own: a settle lost to a crash
        is redone when the peer starts."""
        if not outcomes:
            return
        confirmed = [(tx_id,) for tx_id, valid in outcomes if valid]
        dropped = [(tx_id,) for tx_id, valid in outcomes if not valid]
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("DELETE FROM pending WHERE tx_id=?", confirmed)
                self._db.executemany(
                    "DELETE FROM private WHERE (collection, key, tx_id) IN "
                    "(SELECT collection, key, tx_id FROM pending WHERE tx_id=?)",
                    dropped,
                )
                self._db.executemany("DELETE FROM pending WHERE tx_id=?", dropped)
                self._db.execute("COMMIT")
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            finally:
                self._db.execute("PRAGMA synchronous=FULL")

    def pending_tx_ids(self) -> list[str]:
        """Transactions with staged values not yet settled (for recovery after a restart)."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT tx_id FROM pending")
            return [r[0] for r in rows]

    def read(self, collection: str, key: str) -> Any | None:
        """The latest committed value of ``key``, None if absent, shredded or not ours."""
        entry = self.entry(collection, key)
        return None if entry is None else entry["value"]

    def entry(self, collection: str, key: str) -> dict[str, Any] | None:
        """The latest committed value with its salt and transaction, for disclosure."""
        if not self.owns(collection):
            return None
        with self._read_lock:
            cursor = self._reader.execute(
                "SELECT p.tx_id, p.salt, p.sealed, p.wrapped_key, m.tx_id IS NOT NULL "
                "FROM private AS p LEFT JOIN pending AS m "
                "ON m.tx_id = p.tx_id AND m.collection = p.collection AND m.key = p.key "
                "WHERE p.collection=? AND p.key=? ORDER BY p.rowid DESC",
                (collection, key),
            )
            try:
                row = None
                for candidate in cursor:
                    # A pending value counts once its transaction committed VALID: the
                    # ledger commits a block just before the peer settles its vaults.
                    if not candidate[4] or self.committed_valid(candidate[0]):
                        row = candidate
                        break
            finally:
                cursor.close()
        if row is None or row[3] is None:
            return None
        tx_id, salt, sealed, wrapped, _ = row
        try:
            data_key = unwrap_key(WrappedKey.from_json(json.loads(wrapped)), self._key)
            plain = open_sealed(
                Sealed.from_json(json.loads(sealed)),
                data_key,
                associated_data=f"{collection}\n{key}".encode(),
            )
        except DecryptionError:
            return None
        return {"tx_id": tx_id, "salt": bytes(salt).hex(), "value": json.loads(plain)}

    def shred(self, collection: str, key: str) -> int:
        """Erase every data key of ``key``: its values can never be read again."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE private SET wrapped_key=NULL WHERE collection=? AND key=?",
                (collection, key),
            )
            return cursor.rowcount

    def close(self) -> None:
        """Write what is staged, then close the vault."""
        with self._read_lock:
            self._reader.close()
        self.sync()
        with self._lock:
            self._db.close()


class VaultSet:
    """The vaults a peer holds (one in a consortium peer; every org's in the demo).

    Implements contracts.context.PrivateData for simulation."""

    def __init__(self, vaults: dict[str, Vault]) -> None:
        self._vaults = vaults

    def follow(self, committed_valid: Callable[[str], bool]) -> None:
        """Tell every vault how to ask the ledger whether a transaction committed VALID."""
        for vault in self._vaults.values():
            vault.committed_valid = committed_valid

    def vault(self, org: str) -> Vault | None:
        """The vault of ``org`` if this peer holds it."""
        return self._vaults.get(org)

    def read(self, collection: str, key: str) -> Any | None:
        """Committed value, if this peer holds the collection's vault."""
        vault = self._vaults.get(collection.split("/", 1)[0])
        return None if vault is None else vault.read(collection, key)

    def stage(
        self,
        tx_id: str,
        collection: str,
        key: str,
        value: Any,
        *,
        durable: bool = True,
        salt: bytes | None = None,
    ) -> PrivateWrite:
        """Stage a value in the owning organisation's vault (see ``Vault.stage``)."""
        vault = self._vaults.get(collection_org(collection))
        if vault is None:
            raise AccessDenied(f"this peer holds no vault for collection {collection!r}")
        return vault.stage(tx_id, collection, key, value, durable=durable, salt=salt)

    def stage_disclosed(self, tx_id: str, disclosures: Sequence[Disclosure]) -> None:
        """Stage values other peers committed to for ``tx_id`` in the owning vaults, all
        durable (one sync per vault) before this returns; AccessDenied, staging none, if
        this peer holds the vault of none of them."""
        for disclosure in disclosures:
            if collection_org(disclosure.collection) not in self._vaults:
                raise AccessDenied(
                    f"this peer holds no vault for collection {disclosure.collection!r}: its "
                    "private values can be kept only by that organisation's peer"
                )
        for disclosure in disclosures:
            vault = self._vaults[collection_org(disclosure.collection)]
            vault.stage_disclosed(tx_id, disclosure, durable=False)
        self.sync()

    def for_proposal(
        self,
        creator: str,
        transient: Mapping[str, Any] | None,
        *,
        durable: bool,
        disclose: bool = False,
    ) -> ProposalStaging:
        """These vaults as a contract sees them while one proposal of ``creator`` is
        simulated (see ``ProposalStaging``); with ``durable=False`` ``sync`` must run
        before a transaction that staged through them is ordered."""
        return ProposalStaging(
            self, creator.split("/", 1)[0], transient, durable=durable, disclose=disclose
        )

    def sync(self) -> int:
        """Make every staged value durable; the number of vaults that had to sync."""
        return sum(1 for vault in self._vaults.values() if vault.unsynced and vault.sync())

    def settle(self, tx_id: str, *, valid: bool) -> None:
        """Settle ``tx_id`` in every vault."""
        self.settle_many([(tx_id, valid)])

    def settle_many(self, outcomes: Sequence[tuple[str, bool]]) -> None:
        """Settle several transactions (id, valid) in every vault, one SQLite
        transaction per vault."""
        if not outcomes:
            return
        for vault in self._vaults.values():
            vault.settle_many(outcomes)

    def settle_block(self, outcomes: Sequence[tuple[str, bool, Sequence[PrivateWrite]]]) -> None:
        """Settle a block's transactions (id, valid, private writes), each in the vaults
        of the collections it wrote, one SQLite transaction per vault."""
        by_org: dict[str, list[tuple[str, bool]]] = {}
        for tx_id, valid, writes in outcomes:
            for org in dict.fromkeys(w.collection.split("/", 1)[0] for w in writes):
                by_org.setdefault(org, []).append((tx_id, valid))
        for org, settled in by_org.items():
            vault = self._vaults.get(org)
            if vault is not None:
                vault.settle_many(settled)

    def all(self) -> list[Vault]:
        """Every vault held."""
        return list(self._vaults.values())

    def close(self) -> None:
        """Close every vault."""
        for vault in self._vaults.values():
            vault.close()


class ProposalStaging:
    """A VaultSet's contract-facing side (contracts.context.PrivateData) for one
    proposal. A write to a collection this peer holds is staged in its vault (durably,
    or at the next ``VaultSet.sync``); with ``disclose`` (this peer endorses for the
    creator's gateway), one to a collection of the creator's organisation that this
    peer does not hold is kept in ``disclosures`` to travel back to that gateway only;
    any other collection is refused. Writes to the creator's collections are salted
    from the transient map, so every endorser commits to the same salt."""

    def __init__(
        self,
        vaults: VaultSet,
        creator_org: str,
        transient: Mapping[str, Any] | None,
        *,
        durable: bool,
        disclose: bool,
    ) -> None:
        self._vaults = vaults
        self._creator_org = creator_org
        self._salt_key = transient_salt_key(transient)
        self._durable = durable
        self._disclose = disclose
        self.disclosures: list[Disclosure] = []
        """The values written to the creator's collections, in order."""

    def read(self, collection: str, key: str) -> Any | None:
        """Committed value, if this peer holds the collection's vault."""
        return self._vaults.read(collection, key)

    def stage(self, tx_id: str, collection: str, key: str, value: Any) -> PrivateWrite:
        """Stage a value this peer may keep, or disclose one of the creator's."""
        org = collection_org(collection)
        salt = None
        if org == self._creator_org and self._salt_key is not None:
            salt = derived_salt(self._salt_key, tx_id, collection, key)
        if self._vaults.vault(org) is not None or not self._disclose:
            return self._vaults.stage(
                tx_id, collection, key, value, durable=self._durable, salt=salt
            )
        held = self._vaults.all()
        if org != self._creator_org or (salt is None and not held):
            raise AccessDenied(
                f"this peer holds no vault for collection {collection!r}, and it is not a "
                f"collection of the proposal creator's organisation ({self._creator_org}): "
                "a peer writes only to its own or the requester's collections"
            )
        if salt is None:
            salt = held[0].salt(tx_id, collection, key)
        disclosure = Disclosure(collection, key, salt, value)
        self.disclosures.append(disclosure)
        return disclosure.commitment()
