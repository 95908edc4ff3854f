"""The storage interface of the ledger: blocks, transaction index, world state, log nodes.

SQLite (ledger.sqlite_store) is the default implementation; PostgreSQL
(ledger.postgres_store) is the other, for a peer that outgrows one file.
:func:`open_store` opens either from where the store lives: a file path, or a
``postgresql://`` connection URL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from healthledger.ledger.block import Block, BlockHeader
from healthledger.ledger.merkle import LogAppend
from healthledger.ledger.state import HistoryEntry, StateUpdate, VersionedValue
from healthledger.ledger.transaction import ValidationCode


@dataclass(frozen=True)
class TxLocation:
    """Where a transaction sits in the chain."""

    tx_id: str
    height: int
    index: int
    code: ValidationCode
    log_index: int
    """Position of the transaction in the global log."""


@dataclass(frozen=True)
class BlockCommit:
    """Everything one block changes, written in a single atomic step."""

    block: Block
    block_bytes: bytes
    """Canonical encoding of the block, stored as is."""
    updates: Sequence[StateUpdate]
    log_append: LogAppend
    """The global log's new nodes, size and root."""
    stream_seq: int | None = None
    """Ordering stream position of the message that closed this block (``jetstream``),
    recorded with the block so that a restarted peer resumes right after it."""


class LedgerStore(Protocol):
    """Durable storage of one peer's copy of the ledger."""

    def height(self) -> int:
        """Number of committed blocks (the next block's height)."""
        ...

    def head(self) -> BlockHeader | None:
        """Header of the last committed block, or None before genesis."""
        ...

    def block_bytes(self, height: int) -> bytes:
        """The stored canonical encoding of block ``height``; NotFound if absent."""
        ...

    def header(self, height: int) -> BlockHeader:
        """Header of block ``height``; NotFound if absent."""
        ...

    def tx_location(self, tx_id: str) -> TxLocation | None:
        """The first committed occurrence of ``tx_id``, or None."""
        ...

    def tx_at_log_index(self, log_index: int) -> TxLocation:
        """The transaction at a global log position; NotFound if absent."""
        ...

    def get_node(self, level: int, index: int) -> bytes | None:
        """A perfect-subtree node of the global log (merkle.NodeReader)."""
        ...

    def committed_among(self, tx_ids: Sequence[str]) -> set[str]:
        """Those of ``tx_ids`` that appear in a committed block (one query for a block)."""
        ...

    def get_states(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], VersionedValue]:
        """Current values of several (namespace, key) pairs; absent keys are left out."""
        ...

    def get_state(self, ns: str, key: str) -> VersionedValue | None:
        """Current value of a key."""
        ...

    def range_state(
        self, ns: str, start: str, end: str, limit: int
    ) -> Iterator[tuple[str, VersionedValue]]:
        """Keys in [start, end) in order; end "" means no upper bound."""
        ...

    def key_history(self, ns: str, key: str, limit: int) -> list[HistoryEntry]:
        """Changes of a key, newest first."""
        ...

    def ordering_position(self) -> int:
        """Ordering stream position recorded with the last block that carried one; 0 if none."""
        ...

    def commit(self, commit: BlockCommit) -> None:
        """Write a block, its transaction index, state changes and log nodes atomically
        and durably; raise StorageError and change nothing if that fails."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


POSTGRES_SCHEMES = ("postgresql://", "postgres://")
"""How a store location names a PostgreSQL database (libpq connection URLs)."""


def is_postgres_location(location: str | Path) -> bool:
    """True if ``location`` is a PostgreSQL connection URL rather than a file path."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def open_store(
    location: str | Path, *, synchronous: str = "FULL", startup_check: bool = False
) -> LedgerStore:
    """The ledger store at ``location``: a PostgreSQL database for a ``postgresql://``
    URL, else an SQLite file (``synchronous`` and ``startup_check`` as SqliteStore
    takes them; a PostgreSQL server is always durable and checks its own pages)."""
    if is_postgres_location(location):
        try:
            from healthledger.ledger.postgres_store import PostgresStore
        except ImportError as exc:
            from healthledger.ledger.errors import StorageError

            raise StorageError(
                "a PostgreSQL ledger store needs the psycopg driver: "
                "pip install 'healthledger[postgresql]'"
            ) from exc
        return PostgresStore(str(location))
    from healthledger.ledger.sqlite_store import SqliteStore

    return SqliteStore(location, synchronous=synchronous, startup_check=startup_check)
