"""`reported()` turns each kind of failure into its exit code and one line; an exit a
command asked for passes through untouched."""

from __future__ import annotations

import sqlite3

import pytest
import typer

from healthledger.cli.reporting import (
    EXIT_FAILED,
    EXIT_UNUSABLE,
    BenchmarkFailed,
    CliError,
    reported,
)
from healthledger.client.errors import IdentityError
from healthledger.ledger.errors import InvalidBlock
from healthledger.node.parts import DataDirError


def ended(error: BaseException, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The exit code and the stderr of a command that failed with ``error``."""
    with pytest.raises(typer.Exit) as stopped, reported():
        raise error
    return stopped.value.exit_code, capsys.readouterr().err


def test_an_exit_the_command_asked_for_passes_through() -> None:
    with pytest.raises(typer.Exit) as stopped, reported():
        raise typer.Exit(3)
    assert stopped.value.exit_code == 3


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (CliError("no such thing", EXIT_UNUSABLE), EXIT_UNUSABLE),
        (IdentityError("wrong passphrase"), EXIT_UNUSABLE),
        (InvalidBlock("block 3: bad hash"), EXIT_FAILED),
        (BenchmarkFailed("nothing committed"), EXIT_FAILED),
        (DataDirError("not a data folder"), EXIT_UNUSABLE),
        (sqlite3.DatabaseError("file is not a database"), EXIT_UNUSABLE),
        (FileNotFoundError(2, "No such file or directory", "x.json"), EXIT_UNUSABLE),
        (RuntimeError("boom"), EXIT_FAILED),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_each_failure_is_one_line_with_its_code(
    error: BaseException, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code, err = ended(error, capsys)
    assert exit_code == code
    [line] = err.splitlines()
    assert line.startswith("error: ")
    if isinstance(error, RuntimeError):
        assert line == "error: internal error: RuntimeError: boom"
