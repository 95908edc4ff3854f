"""The SQLite write-ahead log of a store, read before SQLite opens it.

SQLite takes as committed every WAL frame up to the last commit frame whose checksum
chain holds, and silently drops the rest: by design, since a crash mid-commit leaves
an incomplete trailing transaction that was never acknowledged. The same rule makes a
WAL that lost *committed* frames (truncated by a bad copy or a failing disk, or a flip
in a synced frame) open as an older, shorter ledger with no error at all.

The wal-index (the ``-shm`` file) says how many frames the last writer committed. It
is updated only after those frames were synced (``synchronous=FULL``), so whatever
version of it survives a crash or a power cut never counts more committed frames than
the synced log holds. :func:`lost_frames` compares the two before the first connection
opens (SQLite resets the wal-index when it does) and reports committed frames the log
no longer holds. Without a wal-index, or one of another log generation, the loss
cannot be told from a crash; the chain self-check and the checkpoints remain.

Formats: https://www.sqlite.org/fileformat2.html#walformat and #walindexformat.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from pathlib import Path

WAL_MAGIC = 0x377F0682
"""The WAL header's magic; its low bit set means big-endian checksums."""
WAL_HEADER_SIZE = 32
FRAME_HEADER_SIZE = 24
INDEX_HEADER_SIZE = 48
"""One copy of the wal-index header; the file starts with two copies."""
INDEX_VERSION = 3007000
_MASK = 0xFFFFFFFF


@dataclass(frozen=True)
class WalReading:
    """What the log and the wal-index of a store say was committed."""

    log_frames: int
    """Frames up to the last valid commit frame of the log: what SQLite will read."""
    index_frames: int | None
    """Frames the wal-index records as committed in the same log generation; None if
    there is no usable wal-index, or it is of another generation."""
    backfilled: int = 0
    """Frames the wal-index records as already copied into the database file."""

    @property
    def lost(self) -> int:
        """Committed frames the log no longer holds (0 if none, or if unknown).

        A log with no valid frame at all is read as empty, which loses only what was
        not yet copied into the database file; a log that still has some frames is
        read up to there, and its older frames would hide pages copied since."""
        if self.index_frames is None:
            return 0
        if self.log_frames == 0:
            return max(0, self.index_frames - self.backfilled)
        return max(0, self.index_frames - self.log_frames)


def checksum(data: bytes, seed: tuple[int, int], *, big_endian: bool) -> tuple[int, int]:
    """SQLite's WAL checksum of ``data`` (a multiple of 8 bytes), continued from ``seed``."""
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    s1, s2 = seed
    for i in range(0, len(words), 2):
        s1 = (s1 + words[i] + s2) & _MASK
        s2 = (s2 + words[i + 1] + s1) & _MASK
    return s1, s2


def _index_header(shm: bytes) -> tuple[int, bytes, int] | None:
    """(committed frames, the log's salts, frames copied into the database) of a valid
    wal-index header, else None.

    SQLite writes the header in native byte order, twice, then the checkpoint record
    (whose first word counts the frames copied back); a valid header has both copies
    equal, ``isInit`` set and its checksum (native order) right."""
    if len(shm) < 2 * INDEX_HEADER_SIZE + 4:
        return None
    first, second = shm[:INDEX_HEADER_SIZE], shm[INDEX_HEADER_SIZE : 2 * INDEX_HEADER_SIZE]
    if first != second:
        return None
    order = "<" if sys.byteorder == "little" else ">"
    version, _, _, is_init, _, _, frames, _, _, _, _, _, sum1, sum2 = struct.unpack(
        f"{order}3I2BH8I", first
    )
    if version != INDEX_VERSION or not is_init:
        return None
    if checksum(first[:40], (0, 0), big_endian=order == ">") != (sum1, sum2):
        return None
    (backfilled,) = struct.unpack_from(f"{order}I", shm, 2 * INDEX_HEADER_SIZE)
    # The salts are the log header's bytes, copied as they are.
    return frames, first[32:40], backfilled


def read_wal(wal: bytes, *, stop_after: int | None = None) -> tuple[int, bytes | None]:
    """(frames up to the last valid commit frame, the log header's salts) of a WAL
    file's bytes, as SQLite's recovery counts them; stops early once a commit frame at
    or past ``stop_after`` frames is found."""
    if len(wal) < WAL_HEADER_SIZE:
        return 0, None
    magic, _, page_size, _, _, _, sum1, sum2 = struct.unpack(">8I", wal[:32])
    if magic & ~1 != WAL_MAGIC or page_size < 512 or page_size & (page_size - 1):
        return 0, None
    big_endian = bool(magic & 1)
    running = checksum(wal[:24], (0, 0), big_endian=big_endian)
    if running != (sum1, sum2):
        return 0, None
    frame_size = FRAME_HEADER_SIZE + page_size
    committed = 0
    frame = 0
    offset = WAL_HEADER_SIZE
    while offset + frame_size <= len(wal):
        page, after, _, _, f_sum1, f_sum2 = struct.unpack(
            ">6I", wal[offset : offset + FRAME_HEADER_SIZE]
        )
        if page == 0 or wal[offset + 8 : offset + 16] != wal[16:24]:
            break
        running = checksum(wal[offset : offset + 8], running, big_endian=big_endian)
        body = wal[offset + FRAME_HEADER_SIZE : offset + frame_size]
        running = checksum(body, running, big_endian=big_endian)
        if running != (f_sum1, f_sum2):
            break
        frame += 1
        offset += frame_size
        if after:
            committed = frame
            if stop_after is not None and committed >= stop_after:
                break
    return committed, wal[16:24]


def read_store_wal(path: Path) -> WalReading:
    """What the log and the wal-index beside the store at ``path`` say; a missing file
    reads as empty."""
    wal_path = path.with_name(path.name + "-wal")
    shm_path = path.with_name(path.name + "-shm")
    index = None
    if shm_path.is_file():
        with shm_path.open("rb") as shm:
            index = _index_header(shm.read(2 * INDEX_HEADER_SIZE + 4))
    wal = wal_path.read_bytes() if wal_path.is_file() else b""
    log_frames, salts = read_wal(wal, stop_after=None if index is None else index[0])
    if index is None:
        return WalReading(log_frames, None)
    frames, index_salts, backfilled = index
    if salts is not None and salts != index_salts:
        # Another generation of the log: the index says nothing about this one.
        return WalReading(log_frames, None)
    return WalReading(log_frames, frames, backfilled)
