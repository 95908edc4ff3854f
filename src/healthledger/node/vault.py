"""The private-data vault of one organisation.

A value written with ``ctx.put_private`` never goes on chain: the chain holds
SHA-256(key) and SHA-256(salt || canonical value), the salt an HMAC under the
vault's secret so nobody else can test guesses. The value is sealed with
AES-256-GCM under a fresh data key, which is wrapped with the vault's X25519
key. Erasing a value's wrapped data key (``shred``) erases the value for good
while the chain stays intact.

Staged values are written before the transaction is ordered, marked pending,
and confirmed or dropped when its block commits, so nothing is lost to a crash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from healthledger.contracts.errors import AccessDenied
from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.envelope import (
    Sealed,
    VaultKey,
    WrappedKey,
    open_sealed,
    seal,
    unwrap_key,
    wrap_key,
)
from healthledger.crypto.errors import DecryptionError
from healthledger.ledger.transaction import PrivateWrite

SCHEMA = """
CREATE TABLE IF NOT EXISTS private (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    tx_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'committed')),
    salt BLOB NOT NULL,
    sealed TEXT NOT NULL,
    wrapped_key TEXT,
    PRIMARY KEY (collection, key, tx_id)
);
CREATE INDEX IF NOT EXISTS private_by_tx ON private (tx_id);
"""


def key_hash(key: str) -> str:
    """The on-chain hash of a private key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def value_hash(salt: bytes, value: Any) -> str:
    """The on-chain commitment to a private value."""
    return hashlib.sha256(salt + canonical_json(value)).hexdigest()


class Vault:
    """An organisation's encrypted private-data store, in its own SQLite file."""

    def __init__(self, path: Path | str, *, org: str, key: VaultKey, secret: bytes) -> None:
        self.org = org
        self._key = key
        self._secret = secret
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def owns(self, collection: str) -> bool:
        """True if ``collection`` (``org/name``) belongs to this vault's organisation."""
        return collection.split("/", 1)[0] == self.org

    def stage(self, tx_id: str, collection: str, key: str, value: Any) -> PrivateWrite:
        """Seal ``value`` as pending for ``tx_id`` and return its on-chain commitment."""
        salt = hmac.new(
            self._secret, f"{tx_id}\n{collection}\n{key}".encode(), hashlib.sha256
        ).digest()
        aad = f"{collection}\n{key}".encode()
        sealed, data_key = seal(canonical_json(value), associated_data=aad)
        wrapped = wrap_key(data_key, self._key.public_bytes())
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO private VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                (
                    collection,
                    key,
                    tx_id,
                    salt,
                    json.dumps(sealed.to_json()),
                    json.dumps(wrapped.to_json()),
                ),
            )
        return PrivateWrite(collection, key_hash(key), value_hash(salt, value))

    def settle(self, tx_id: str, *, valid: bool) -> None:
        """Confirm a committed transaction's staged values, or drop an invalid one's."""
        with self._lock:
            if valid:
                self._db.execute(
                    "UPDATE private SET status='committed' WHERE tx_id=? AND status='pending'",
                    (tx_id,),
                )
            else:
                self._db.execute("DELETE FROM private WHERE tx_id=? AND status='pending'", (tx_id,))

    def pending_tx_ids(self) -> list[str]:
        """Transactions with staged values not yet settled (for recovery after a restart)."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT tx_id FROM private WHERE status='pending'")
            return [r[0] for r in rows]

    def read(self, collection: str, key: str) -> Any | None:
        """The latest committed value of ``key``, None if absent, shredded or not ours."""
        entry = self.entry(collection, key)
        return None if entry is None else entry["value"]

    def entry(self, collection: str, key: str) -> dict[str, Any] | None:
        """The latest committed value with its salt and transaction, for disclosure."""
        if not self.owns(collection):
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT tx_id, salt, sealed, wrapped_key FROM private "
                "WHERE collection=? AND key=? AND status='committed' ORDER BY rowid DESC LIMIT 1",
                (collection, key),
            ).fetchone()
        if row is None or row[3] is None:
            return None
        tx_id, salt, sealed, wrapped = row
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
        """Close the vault."""
        with self._lock:
            self._db.close()


class VaultSet:
    """The vaults a peer holds (one in a consortium peer; every org's in the demo).

    Implements contracts.context.PrivateData for simulation."""

    def __init__(self, vaults: dict[str, Vault]) -> None:
        self._vaults = vaults

    def vault(self, org: str) -> Vault | None:
        """The vault of ``org`` if this peer holds it."""
        return self._vaults.get(org)

    def read(self, collection: str, key: str) -> Any | None:
        """Committed value, if this peer holds the collection's vault."""
        vault = self._vaults.get(collection.split("/", 1)[0])
        return None if vault is None else vault.read(collection, key)

    def stage(self, tx_id: str, collection: str, key: str, value: Any) -> PrivateWrite:
        """Stage a value in the owning organisation's vault."""
        vault = self._vaults.get(collection.split("/", 1)[0])
        if vault is None:
            raise AccessDenied(f"this peer holds no vault for collection {collection!r}")
        return vault.stage(tx_id, collection, key, value)

    def settle(self, tx_id: str, *, valid: bool) -> None:
        """Settle ``tx_id`` in every vault."""
        for vault in self._vaults.values():
            vault.settle(tx_id, valid=valid)

    def all(self) -> list[Vault]:
        """Every vault held."""
        return list(self._vaults.values())

    def close(self) -> None:
        """Close every vault."""
        for vault in self._vaults.values():
            vault.close()
