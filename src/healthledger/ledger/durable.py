"""Replacing a file so that the replacement survives a crash.

The new bytes go to a temporary file beside the target (the same folder, so the same
file system), which is flushed and fsynced, then renamed onto the target with
``os.replace``; the folder is fsynced last, so that the rename itself is on disk. A
crash at any moment leaves the old file or the new one at the path, never a mix and
never a truncated file; when a call returns, both the bytes and the rename are on disk.
"""

from __future__ import annotations

import os
from pathlib import Path


def sync_path(path: Path) -> None:
    """Flush ``path`` to disk: a file's bytes, or a folder's entries (a rename or an
    unlink in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Make ``data`` the content of the file ``path``, durably: when this returns, the
    bytes and the rename that put them in place are on disk; a crash before then
    leaves the old file (or none) at ``path``, never a mix of the two.

    ``mode``: the permission bits of the new file, set when it is created, before any
    byte is written (the umask still applies, as for ``os.open``); None makes it as
    ``open`` would (0o666 less the umask). If writing raises, ``path`` is left as it
    was and the temporary file is removed."""
    # A name of its own per call: two writers of one path never write into each
    # other's temporary file (the last rename wins, whole).
    temporary = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    sync_path(path.parent)


def replace_durably(written: Path, path: Path) -> None:
    """Put the file ``written`` (made beside ``path`` by a writer of its own: a
    database, a large copy) in place of ``path``, durably: its bytes are synced, it is
    renamed onto ``path`` and the folder is synced, so that when this returns the new
    file is on disk under ``path``, and a crash before then leaves the old one.

    Its permissions are those ``written`` has. If this raises, ``written`` may still be
    there; its writer, which knows its side files, removes it."""
    sync_path(written)
    os.replace(written, path)
    sync_path(path.parent)
