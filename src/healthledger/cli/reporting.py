"""How the ``healthledger`` commands report: results on stdout, progress on stderr, and
every failure as one red line on stderr with an exit code, never a traceback."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

import click
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from healthledger.errors import HealthledgerError
from healthledger.network.errors import NetworkError

EXIT_FAILED = 1
"""The ledger failed verification, or the operation could not be done."""
EXIT_UNUSABLE = 2
"""The input is not usable: no such path, not a ledger, an unreadable file."""


class BenchmarkFailed(HealthledgerError):
    """A benchmark run did not commit every transaction on every peer in time."""


class CliError(HealthledgerError):
    """A failure to report as one line, with the exit code to end with."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def stdout() -> Console:
    """The console for results."""
    return Console(highlight=False, soft_wrap=True)


def stderr() -> Console:
    """The console for errors and progress."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int) -> NoReturn:
    """End the command with ``message`` as one red line on stderr and exit ``code``."""
    line = " ".join(message.split()) or "failed"
    stderr().print(Text(f"error: {line}", style="bold red"))
    raise typer.Exit(code)


@contextmanager
def reported(unusable: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Turn any error into one red line and an exit code; ``unusable``: exception types
    that say the input is not usable (a malformed file the command was given)."""
    try:
        yield
    except (
        typer.Exit,
        click.exceptions.Exit,
        click.exceptions.ClickException,
        click.exceptions.Abort,
    ):
        raise
    except (CliError, NetworkError) as exc:
        fail(str(exc), exc.code)
    except unusable as exc:
        fail(str(exc), EXIT_UNUSABLE)
    except BrokenPipeError:
        closed_stdout()
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename or ''}".strip(": "), EXIT_UNUSABLE)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_FAILED)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        fail(*_described(exc))


def _described(exc: Exception) -> tuple[str, int]:
    """The line and exit code for an error from the layers below.

    Their error classes are imported here, on the way out: a command that does not fail
    does not pay for importing the client library and the node to name them."""
    from healthledger.client.errors import ClientError, IdentityError
    from healthledger.contracts.errors import ContractError
    from healthledger.crypto.errors import CryptoError
    from healthledger.ledger.errors import InvalidBlock, LedgerError, StorageError
    from healthledger.node.errors import NodeError
    from healthledger.node.parts import DataDirError
    from healthledger.ordering.orderer import OrderingError

    if isinstance(exc, IdentityError):
        return str(exc), EXIT_UNUSABLE
    if isinstance(exc, ClientError | InvalidBlock | BenchmarkFailed):
        return str(exc), EXIT_FAILED
    if isinstance(exc, StorageError | DataDirError | sqlite3.DatabaseError):
        return str(exc), EXIT_UNUSABLE
    if isinstance(exc, LedgerError | NodeError | ContractError | CryptoError | OrderingError):
        return str(exc), EXIT_FAILED
    return f"internal error: {type(exc).__name__}: {exc}", EXIT_FAILED


EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a tool whose reader went away."""


def closed_stdout() -> NoReturn:
    """The reader of our output went away (``healthledger proof | head``): say nothing
    more, as Unix tools do, and keep Python from failing again on flushing stdout."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(EXIT_BROKEN_PIPE)


@contextmanager
def progress(enabled: bool, description: str) -> Iterator[Callable[[int, int], None] | None]:
    """A Rich progress bar on stderr, given to the work as ``update(done, total)``."""
    console = stderr()
    # Off the terminal a live bar only adds stray lines to logs and captured output.
    if not enabled or not console.is_terminal:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update
