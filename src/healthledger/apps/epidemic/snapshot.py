"""A saved copy of the monitoring read model, so a node's dashboards answer at once
after a restart instead of replaying every block (issue 16, item 6).

The read model lives in memory. Once replaying the blocks since its last snapshot
took ``SNAPSHOT_COST_RATIO`` times as long as writing that snapshot (or after
``SNAPSHOT_EVERY_TX`` transactions), the dashboard's model writes its tables to
``cases.duckdb`` in the application's folder and then ``cases.json`` beside it: the
block height and hash the tables are complete up to, the last event applied, the
schema's hash and the file's SHA-256 and size. Both are synced before they replace
the previous pair. A model starting up loads the pair only if every one of those
still holds (the chain has that block with that hash, the file is the one written,
the schema is this code's) and then replays the blocks after it; otherwise it says
why in one log line and replays the chain from the start, as it would without a
snapshot. A snapshot holds what the read model holds: events' payloads, nothing
personal.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from healthledger.errors import HealthledgerError
from healthledger.ledger.durable import replace_durably, write_durably
from healthledger.node.seam import AppNode

SNAPSHOT_FILE = "cases.duckdb"
RECORD_FILE = "cases.json"
SNAPSHOT_EVERY_TX = 20_000
"""Transactions applied after which a snapshot is written in any case."""
SNAPSHOT_COST_RATIO = 8
"""A snapshot is also written once applying the blocks since the last one took this
many times as long as writing that one: writing costs at most an eighth of keeping
up, and a restart replays at most about eight writes' worth (about 1 s for 10^4
cases on a loaded 2-core machine), however large the ledger."""
FORMAT = 1
TABLES = ("cases", "alerts", "labs", "doses", "cursor")


class SnapshotRefused(HealthledgerError):
    """A snapshot that is not loaded; the message says why."""

    def __init__(self, why: str, *, missing: bool = False) -> None:
        super().__init__(why)
        self.missing = missing
        """True when there is no snapshot at all (a new node, or one never written)."""


@dataclass(frozen=True)
class SnapshotRecord:
    """What ``cases.json`` says of ``cases.duckdb``."""

    format: int
    height: int
    """Every event of blocks up to this one is in the snapshot, none after."""
    block_hash: str
    last_event: str
    schema: str
    """SHA-256 of the read model's schema: a snapshot of another schema is refused."""
    sha256: str
    bytes: int


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def schema_hash(schema: str) -> str:
    """The hash a snapshot records of the read model's schema."""
    return hashlib.sha256(schema.encode("utf-8")).hexdigest()


def save_snapshot(
    db: duckdb.DuckDBPyConnection,
    folder: Path,
    *,
    height: int,
    block_hash: str,
    last_event: str,
    schema: str,
) -> SnapshotRecord:
    """Write the read model's tables (``db``, its caller holding it still) as the
    snapshot at block ``height`` under ``folder``, durably; its record."""
    folder.mkdir(parents=True, exist_ok=True)
    target, record_path = folder / SNAPSHOT_FILE, folder / RECORD_FILE
    tmp = folder / f".{SNAPSHOT_FILE}.tmp"
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    db.execute(f"ATTACH {_quoted(tmp)} AS snapshot")
    try:
        for table in TABLES:
            db.execute(f"CREATE TABLE snapshot.{table} AS SELECT * FROM main.{table}")  # noqa: S608 - TABLES
    finally:
        db.execute("DETACH snapshot")
    sha256, size = _file_digest(tmp)
    record = SnapshotRecord(
        format=FORMAT,
        height=height,
        block_hash=block_hash,
        last_event=last_event,
        schema=schema_hash(schema),
        sha256=sha256,
        bytes=size,
    )
    replace_durably(tmp, target)
    write_durably(record_path, json.dumps(asdict(record)).encode("utf-8"))
    return record


def read_record(folder: Path, *, node: AppNode, schema: str) -> SnapshotRecord:
    """The record of the snapshot under ``folder`` once the snapshot checks out against
    the chain of ``node`` and this ``schema``; SnapshotRefused saying why otherwise."""
    target, record_path = folder / SNAPSHOT_FILE, folder / RECORD_FILE
    try:
        found: dict[str, Any] = json.loads(record_path.read_text(encoding="utf-8"))
        record = SnapshotRecord(**found)
    except FileNotFoundError as exc:
        raise SnapshotRefused("there is none", missing=True) from exc
    except (OSError, ValueError, TypeError) as exc:
        raise SnapshotRefused(f"its record does not read ({exc})") from exc
    if record.format != FORMAT:
        raise SnapshotRefused(f"it has format {record.format}, not {FORMAT}")
    if record.schema != schema_hash(schema):
        raise SnapshotRefused("it was written with another schema")
    on_chain = node.block_hash(record.height)
    if on_chain is None:
        raise SnapshotRefused(f"it is at block {record.height}, above this chain's head")
    if on_chain != record.block_hash:
        raise SnapshotRefused(f"block {record.height} of this chain is not the one it saw")
    if not record.last_event.split(":", 1)[0] == str(record.height):
        raise SnapshotRefused("its last event is not in its block")
    try:
        sha256, size = _file_digest(target)
    except OSError as exc:
        raise SnapshotRefused(f"its file does not read ({exc})") from exc
    if (sha256, size) != (record.sha256, record.bytes):
        raise SnapshotRefused("its file is not the one written (size or SHA-256 differs)")
    return record


def load_snapshot(db: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Fill the read model's empty tables (``db``) from the snapshot under ``folder``,
    checked first by :func:`read_record`; SnapshotRefused if DuckDB refuses it."""
    try:
        db.execute(f"ATTACH {_quoted(folder / SNAPSHOT_FILE)} AS snapshot (READ_ONLY)")
    except duckdb.Error as exc:
        raise SnapshotRefused(f"DuckDB does not open it ({exc})") from exc
    try:
        db.execute("BEGIN")
        try:
            for table in TABLES:
                db.execute(f"INSERT INTO main.{table} SELECT * FROM snapshot.{table}")  # noqa: S608 - TABLES
            db.execute("COMMIT")
        except duckdb.Error as exc:
            db.execute("ROLLBACK")
            raise SnapshotRefused(f"DuckDB does not read it ({exc})") from exc
    finally:
        db.execute("DETACH snapshot")
