"""A small real filesystem a test controls: a size-limited tmpfs or a loop-mounted ext4
image, mounted for the test and always unmounted after it, and a filler file that
takes every free byte (and gives them back)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

KINDS = ("tmpfs", "ext4")
"""The filesystems a test can ask for."""


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


def _unmount(mountpoint: Path) -> None:
    if _run("umount", str(mountpoint)).returncode != 0:
        # Something (a leaked handle) still holds it: detach it so the test run ends.
        _run("umount", "-l", str(mountpoint))


@contextlib.contextmanager
def small_disk(root: Path, kind: str, *, size_mib: int) -> Iterator[Path]:
    """A mounted filesystem of ``size_mib`` MiB under ``root``; skips the test, saying
    why, where this machine cannot mount one (not root, no loop device)."""
    mountpoint = root / f"{kind}-disk"
    mountpoint.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    if kind == "tmpfs":
        mounted = _run("mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(mountpoint))
    elif kind == "ext4":
        image = root / "ext4.img"
        with image.open("wb") as handle:
            handle.truncate(size_mib * 1024 * 1024)
        if shutil.which("mkfs.ext4") is None:
            pytest.skip("mkfs.ext4 is not installed (e2fsprogs)")
        made = _run("mkfs.ext4", "-q", "-F", str(image))
        if made.returncode != 0:
            pytest.skip(f"mkfs.ext4 failed: {made.stderr.strip()}")
        mounted = _run("mount", "-o", "loop", str(image), str(mountpoint))
    else:
        raise ValueError(f"unknown filesystem kind {kind!r}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a {kind} filesystem here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        _unmount(mountpoint)


class Filler:
    """A file that takes every free byte of a filesystem until released."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fill(self) -> int:
        """Write until the filesystem refuses (ENOSPC); the bytes written."""
        written = 0
        with self.path.open("ab", buffering=0) as handle:
            for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
                block = b"\xa5" * chunk
                while True:
                    try:
                        written += handle.write(block) or 0
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
            with contextlib.suppress(OSError):
                os.fsync(handle.fileno())
        return written

    def release(self) -> None:
        """Give the space back."""
        self.path.unlink(missing_ok=True)


def free_bytes(path: Path) -> int:
    """Bytes free for writing on the filesystem holding ``path``."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize
