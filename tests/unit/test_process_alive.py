"""``alive``: a recorded process runs and is ours. Right after a launch the child may
be read mid-exec, with an empty command line: it is starting, not gone (the cause of a
peer started twice by ``network up`` under load)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from healthledger.network.processes import Processes, alive, process_state

MARKER = "hl-alive-test-marker"


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["/bin/sh", "-c", "sleep 30", MARKER])
    yield proc
    proc.kill()
    proc.wait()


def test_a_running_child_is_alive_and_a_finished_one_is_not(
    child: subprocess.Popen[bytes],
) -> None:
    assert alive(child.pid, MARKER)
    assert not alive(child.pid, "another-network")
    child.kill()
    child.wait()
    assert not alive(child.pid, MARKER)


def test_a_child_read_mid_exec_is_alive_but_nobody_elses_is(
    child: subprocess.Popen[bytes],
) -> None:
    mid_exec = Processes(MARKER, read_command_line=lambda _pid: b"")
    assert mid_exec.alive(child.pid)  # our child, starting
    assert not mid_exec.alive(os.getppid())  # not ours: an empty line proves nothing


def test_every_child_is_alive_right_after_its_launch() -> None:
    children = []
    try:
        for _ in range(200):
            proc = subprocess.Popen(["/bin/sh", "-c", "sleep 30", MARKER])
            children.append(proc)
            assert alive(proc.pid, MARKER)
            proc.kill()
    finally:
        for proc in children:
            proc.kill()
            proc.wait()


def test_process_state_reads_state_and_parent() -> None:
    state, parent = process_state(os.getpid())
    assert state == "R" and parent == os.getppid()
    assert process_state(2**22 + 7) == (None, None)
