"""What the disk under a folder allows: the floor of a durable commit, printed beside
the benchmarks whose blocks each wait for one."""

from __future__ import annotations

import os
import time
from pathlib import Path


def fsync_per_s(folder: Path, *, syncs: int = 100) -> float:
    """Rounds of a small write (4 KiB) and an fsync per second on the disk under
    ``folder``; the probe file is removed after."""
    path = folder / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        started = time.perf_counter()
        for _ in range(syncs):
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        return syncs / (time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
