"""A PostgreSQL server's processes on this machine as /proc shows them: which they are
(the postmaster and its children), their CPU time and their resident memory, the server
figures the benchmarks print beside the node's."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()


def postmaster_of(url: str) -> int | None:
    """The postmaster's pid of the server of ``url``: the parent of a backend serving a
    new connection. None where the server's processes are not this machine's."""
    import psycopg

    # Read while the connection is open: its backend exits, /proc entry and all, once
    # the connection closes, and a read after that raced it and found nothing.
    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute("SELECT pg_backend_pid()").fetchone()
        try:
            master = int(proc_stat(int(row[0]) if row else 0)[1])
            name = Path(f"/proc/{master}/comm").read_text().strip()
        except (OSError, ValueError, IndexError):
            return None
    # A pid of another machine's backend may exist here as some other process.
    return master if name in {"postgres", "postmaster"} else None


def server_pids(master: int) -> tuple[int, list[int]]:
    """The postmaster's pid and its live children's."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(proc_stat(int(entry.name))[1]) == master:
                    children.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return master, children


def server_cpu_s(master: int) -> float:
    """CPU seconds the server's processes used so far (live ones, and exited backends
    through the postmaster's reaped-children counters)."""
    _, children = server_pids(master)
    fields = proc_stat(master)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    for pid in children:
        try:
            child = proc_stat(pid)
        except OSError:
            continue
        total += int(child[11]) + int(child[12])
    return total / TICK


def server_rss_mib(master: int) -> float:
    """Resident memory of the server's processes, MiB, shared memory counted once: the
    postmaster's resident pages plus each child's resident pages that are not shared."""
    _, children = server_pids(master)
    total = 0
    for i, pid in enumerate([master, *children]):
        try:
            _, resident, shared = map(int, Path(f"/proc/{pid}/statm").read_text().split()[:3])
        except OSError:
            continue
        total += resident if i == 0 else resident - shared
    return total * PAGE / 2**20
