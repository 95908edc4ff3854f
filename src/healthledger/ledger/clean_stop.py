"""The record of a SQLite ledger store's clean stop, kept beside its file.

A node reads every page of its store at start (``PRAGMA quick_check``) only when the
file may have changed since the node last closed it cleanly: that scan costs about a
second per few hundred MB, minutes for a ledger of 10^7 transactions. Closing a store
folds its write-ahead log into the file, syncs it and writes ``<file>-clean``: the
file's identity (device, inode), size and times, and the head block's hash. A start
takes the record away before it opens the file (so a crash from then on leaves none)
and trusts the file without the scan only when the record is there and the file is
unchanged: no write-ahead log, the same inode, size, modification and change times.

A process killed, a power cut, a file copied or restored into place, or any byte
written to it after the stop (which moves its change time, and its modification time
away from the one the stop set) therefore brings the full scan back. What the record
cannot see is the disk changing bytes under the file system; the running node's
self-check sweep and ``healthledger verify`` read those.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from healthledger.ledger.durable import sync_path, write_durably

RECORD_SUFFIX = "-clean"
"""Appended to the store's file name, as SQLite appends ``-wal`` and ``-shm``."""
FORMAT = 1


@dataclass(frozen=True)
class FileStamp:
    """What identifies a file's contents without reading them."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        """The stamp of ``path`` now."""
        found = path.stat()
        return cls(found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


@dataclass(frozen=True)
class CleanStop:
    """A store closed cleanly: its file's stamp then, and its head block's hash."""

    stamp: FileStamp
    head: str | None


def record_path(path: Path) -> Path:
    """Where the clean-stop record of the store at ``path`` is kept."""
    return path.with_name(path.name + RECORD_SUFFIX)


def record_clean_stop(path: Path, *, head: str | None) -> bool:
    """Record that the store at ``path``, whose every connection is closed, stopped
    cleanly with head ``head``; False (and no record) if its write-ahead log is still
    there (another connection held it open, so it was not folded in).

    The file is synced first; its modification time is then set one nanosecond back,
    so that any later write, however soon, gives it another one (file systems stamp
    writes with a coarse clock)."""
    if Path(f"{path}-wal").exists():
        return False
    sync_path(path)
    before = path.stat()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns - 1))
    record = {"format": FORMAT, "head": head, "stamp": asdict(FileStamp.of(path))}
    write_durably(record_path(path), json.dumps(record).encode("utf-8"))
    return True


def take_clean_stop(path: Path) -> CleanStop | None:
    """The clean stop recorded for the store at ``path`` if its file has not changed
    since, else None; the record is removed (durably) either way, before the store is
    opened, so that only a later clean stop writes another."""
    target = record_path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    target.unlink()
    sync_path(path.parent)
    try:
        found = json.loads(text)
        if found.get("format") != FORMAT:
            return None
        stop = CleanStop(FileStamp(**found["stamp"]), found["head"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None  # a damaged record: the full check decides
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return None
    try:
        now = FileStamp.of(path)
    except FileNotFoundError:
        return None
    return stop if now == stop.stamp else None
