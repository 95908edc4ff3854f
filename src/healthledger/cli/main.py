"""The ``healthledger`` command (ARCHITECTURE.md section 7).

Every failure a user can cause (a bad path, a folder that is not a ledger, a
corrupt file, a tampered block) ends as one red line on stderr and exit code 1
(the ledger or the operation failed) or 2 (the input is not usable), never a
stack trace.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import typer
from rich.text import Text

# Typer (0.29) ships its own copy of click, and its commands are of that copy's classes.
from typer import _click as click
from typer.core import TyperGroup

from healthledger.cli.help_text import plain_help
from healthledger.cli.lazy import LazyGroup, Loader, as_command, single
from healthledger.cli.reporting import EXIT_FAILED, EXIT_UNUSABLE, stderr

__all__ = ["EXIT_FAILED", "EXIT_UNUSABLE", "app", "main"]

CREDENTIALS_HELP = "Health credentials (EU DCC, SMART Health Cards, SD-JWT VC), verified offline."


@functools.cache
def _node_commands() -> TyperGroup:
    """The commands of ``cli/node_commands.py``, converted once for all four."""
    from healthledger.cli.node_commands import commands

    group = typer.main.get_command(commands)
    assert isinstance(group, TyperGroup)
    return group


def _node_command(name: str) -> Loader:
    return lambda: _node_commands().commands[name]


def _bench() -> typer.Typer:
    from healthledger.cli.bench_commands import bench_app

    return bench_app


def _network() -> typer.Typer:
    from healthledger.cli.network import network_app

    return network_app


def _identity() -> typer.Typer:
    from healthledger.cli.identity import identity_app

    return identity_app


def _staff() -> typer.Typer:
    from healthledger.cli.staff import staff_app

    return staff_app


def _invoke() -> click.Command:
    from healthledger.cli.calls import invoke

    return single(invoke, "invoke")


def _query() -> click.Command:
    from healthledger.cli.calls import query

    return single(query, "query")


def _credentials() -> click.Command:
    from healthledger.cli.credentials import build_cli
    from healthledger.cli.healthcode import verify_code_command

    credentials = build_cli()
    credentials.command("verify-code")(verify_code_command)
    command = as_command("credentials", credentials)
    command.help = CREDENTIALS_HELP
    return command


def _applications() -> Iterator[tuple[str, click.Command]]:
    """Each installed application's own command group, named after it."""
    from healthledger.cli.apps import INSTALLED_APPS

    for installed in INSTALLED_APPS:
        if installed.cli is not None:
            command = as_command(installed.name, installed.cli())
            command.help = command.help or installed.title
            yield installed.name, command


class Commands(LazyGroup):
    """``healthledger``'s commands, in the order its help lists them."""

    loaders = {
        "demo": _node_command("demo"),
        "node": _node_command("node"),
        "verify": _node_command("verify"),
        "proof": _node_command("proof"),
        "bench": _bench,
        "network": _network,
        "identity": _identity,
        "staff": _staff,
        "invoke": _invoke,
        "query": _query,
        "credentials": _credentials,
    }
    discover = staticmethod(_applications)
    prepare = staticmethod(plain_help)  # type: ignore[assignment]  # returns what it is given


app = typer.Typer(
    name="healthledger",
    help="A permissioned consortium ledger for public health.",
    cls=Commands,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """A permissioned consortium ledger for public health."""


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``healthledger`` console script."""
    try:
        command = plain_help(typer.main.get_command(app))
        command.main(args=None if argv is None else list(argv), prog_name="healthledger")
    except Exception as exc:  # noqa: BLE001 - nothing reaches the user as a traceback
        stderr().print(
            Text(f"error: internal error: {type(exc).__name__}: {exc}", style="bold red")
        )
        raise SystemExit(EXIT_FAILED) from None


if __name__ == "__main__":
    main()
