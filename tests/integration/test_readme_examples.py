"""The README's shell examples run exactly as written.

Every command line of the README's ``sh`` blocks (but ``make demo`` and ``make test``,
which build the whole demo or run the suite) runs in bash, in order, with the installed
``healthledger`` on the path, in a folder where ``demo-data`` is the data folder of a
node being served (as in a second terminal beside ``make demo``) and
``HEALTHLEDGER_URL`` its address. Each line exits 0, or the code its comment documents
(``# exits 1``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthledger.apps.registry import installed_contracts
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import register_master_data
from tests.support.served import in_process, served

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent
SKIPPED = ("make demo", "make test")
"""Build the demo consortium or run the whole suite: other tests cover them."""
FENCE = re.compile(r"^```(sh|shell|bash|console)\s*$\n(.*?)^```\s*$", re.M | re.S)
DOCUMENTED_EXIT = re.compile(r"#.*\bexits? (\d+)\b")
SHELL = "|;&<>$`*?"
"""Characters a shell acts on: a line with one of them (but a final ``> FILE``) runs in bash."""


def shell_lines(text: str) -> list[str]:
    """The command lines of the shell blocks of ``text``, in order (comments kept: bash
    ignores them, and they document an exit code)."""
    lines = []
    for block in FENCE.finditer(text):
        for line in block[2].splitlines():
            command = line.strip()
            if command and not command.startswith("#") and not command.startswith(SKIPPED):
                lines.append(command)
    return lines


@pytest.fixture
def demo_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A working folder whose ``demo-data`` is a served node's data folder (every
    application, the demo's organisations, the supply master data), and its URL."""
    node = EmbeddedNode.create(
        tmp_path / "node",
        contracts=installed_contracts(),
        plans=DEMO_ORGS,
        batch_timeout_s=0.005,
    ).start()
    try:
        register_master_data(node)
        work = tmp_path / "terminal"
        work.mkdir()
        (work / "demo-data").symlink_to(node.data_dir, target_is_directory=True)
        with served(node) as url:
            yield work, url
    finally:
        node.stop()


def run(line: str, work: Path) -> subprocess.CompletedProcess[str]:
    """``line`` as a user's shell runs it in ``work``. A ``healthledger`` command (with
    at most its output redirected to a file) runs in this process: the same code as the
    installed command without an interpreter's start-up for each line (seconds on a
    busy machine); anything else runs in bash."""
    words = shlex.split(line, comments=True)
    redirected = len(words) > 2 and words[-2] == ">" and ">" not in words[:-2]
    command = words[:-2] if redirected else words
    if command[0] != "healthledger" or set(SHELL) & set("".join(command)):
        return subprocess.run(
            ["bash", "-o", "pipefail", "-c", line],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    done = in_process(*command[1:])
    if redirected:
        (work / words[-1]).write_text(done.stdout)
    return done


def test_the_readme_examples_run_as_written(
    demo_folder: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One after the other, as a user types them (a later line uses an earlier one's files)."""
    work, url = demo_folder
    monkeypatch.chdir(work)
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("HEALTHLEDGER_URL", url)
    monkeypatch.setenv("COLUMNS", "80")
    lines = shell_lines(README.read_text(encoding="utf-8"))
    assert sum(line.startswith("healthledger ") for line in lines) >= 5, lines
    for line in lines:
        done = run(line, work)
        documented = DOCUMENTED_EXIT.search(line)
        expected = int(documented[1]) if documented else 0
        output = done.stdout + done.stderr
        assert done.returncode == expected, f"{line}\n{output[-3000:]}"
        assert "Traceback" not in output, f"{line}\n{output[-3000:]}"
