"""A reader that goes away (``healthledger proof | head``) ends a command quietly, as
Unix tools end: no "error: Broken pipe", no traceback, exit 141 (128 + SIGPIPE)."""

from __future__ import annotations

import subprocess
import sys

from healthledger.cli.reporting import EXIT_BROKEN_PIPE

WRITER = """
from healthledger.cli.reporting import reported
with reported():
    for i in range(200_000):
        print("line", i)
"""


def test_a_closed_reader_ends_the_command_quietly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == b"line 0\n"
    process.stdout.close()  # as head does after its lines
    errors = process.stderr.read()
    assert process.wait(timeout=60) == EXIT_BROKEN_PIPE
    assert errors == b""
