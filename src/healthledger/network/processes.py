"""The processes of a network on this machine: which of them run, how our own children
ended, stopping them, and whether a port is free.

A :class:`Processes` object keeps the peer processes it launched and the exit codes of
the children it reaped; one belongs to one operation (``up``, ``join``, ``status``), so
nothing is shared between operations through module state.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

CommandLine = Callable[[int], bytes]


def command_line(pid: int) -> bytes:
    """The command line of ``pid``, its arguments joined by spaces (OSError without /proc)."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")


def process_state(pid: int) -> tuple[str | None, int | None]:
    """The state letter (R, S, D, Z, ...) and parent process id of ``pid`` in
    ``/proc``; None for what cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None, None
    # "pid (comm) S ppid ...": the name may hold spaces and parentheses.
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 2 or not fields[1].isdigit():
        return (fields[0] if fields else None), None
    return fields[0], int(fields[1])


def port_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers themselves bind: a port left in TIME_WAIT by the last run is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Processes:
    """Processes of one network, told apart from others by ``marker`` (the network's
    folder, which every one of its command lines names)."""

    def __init__(self, marker: str, *, read_command_line: CommandLine = command_line) -> None:
        self.marker = marker
        self._command_line = read_command_line
        self._launched: dict[int, subprocess.Popen[bytes]] = {}
        """Children this object started, kept so that the ``subprocess`` module never
        reaps one behind ``alive``'s back (it reaps dropped children at the next launch,
        and the exit status, which says how a peer ended, would be lost)."""
        self._ended: dict[int, int] = {}
        """Exit codes of our children reaped by ``alive`` (negative: killed by that signal)."""

    def launched(self, proc: subprocess.Popen[bytes]) -> int:
        """Keep ``proc``, just started, as ours; its process id."""
        self._launched[proc.pid] = proc
        return proc.pid

    def ended_how(self, pid: int | None) -> str:
        """How our child ``pid`` ended, in words, if ``alive`` reaped it; else ''."""
        code = self._ended.get(pid) if pid is not None else None
        if code is None:
            return ""
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def alive(self, pid: int | None) -> bool:
        """True if ``pid`` runs and is ours (its command line mentions the marker, so a
        recycled process id after a reboot is never signalled)."""
        if pid is None:
            return False
        launched = self._launched.get(pid)
        if launched is not None:
            code = launched.poll()
            if code is None:
                return True  # our own running child (perhaps still inside exec)
            self._ended[pid] = code
            del self._launched[pid]
            return False
        try:
            # Reap it if it is our own finished child (a zombie still answers kill 0).
            reaped, status = os.waitpid(pid, os.WNOHANG)
            if reaped == pid:
                self._ended[pid] = os.waitstatus_to_exitcode(status)
                return False
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        try:
            cmdline = self._command_line(pid)
        except OSError:
            return True  # no /proc: trust the recorded id
        if not cmdline:
            # Our own child read while it execs: Popen has returned but the new program's
            # arguments are not in place yet (seen under load right after a launch). It
            # is starting, unless it is a zombie: ended and not yet reaped.
            state, parent = process_state(pid)
            return parent == os.getpid() and state not in ("Z", "X")
        return self.marker.encode() in cmdline

    def terminate(self, pids: Sequence[int | None], *, timeout: float) -> int:
        """SIGTERM every live process of ``pids``, then SIGKILL those still running
        after ``timeout`` seconds; returns how many were running."""
        running = [pid for pid in pids if pid is not None and self.alive(pid)]
        for pid in running:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(self.alive(pid) for pid in running) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in running:
            if self.alive(pid):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while any(self.alive(pid) for pid in running) and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(running)


def alive(pid: int | None, marker: str) -> bool:
    """True if ``pid`` runs and its command line names ``marker`` (a one-off check by a
    process that did not launch it)."""
    return Processes(marker).alive(pid)
