"""A command group that imports a subcommand's module only when that subcommand runs.

Importing every command's module (the applications, the web layer, the benchmarks)
costs about 3 s of CPU on the machines here, and most runs of ``healthledger`` need one
of them: ``network status`` need not load the console. A group names its lazy
subcommands in :attr:`LazyGroup.loaders` (name to a function that imports and returns
the command) and may name a :attr:`LazyGroup.discover` function for commands whose
names are known only once loaded (the installed applications'). Help screens, shell
completion and "did you mean" list every command, and so load them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import typer

# Typer (0.29) ships its own copy of click, and its commands are of that copy's classes.
from typer import _click as click
from typer.core import TyperGroup

Loader = Callable[[], "typer.Typer | click.Command"]
"""Imports a subcommand's module and returns its Typer app or click command."""


def as_command(name: str, loaded: typer.Typer | click.Command) -> click.Command:
    """``loaded`` as a click command called ``name``."""
    command = loaded if isinstance(loaded, click.Command) else typer.main.get_command(loaded)
    command.name = name
    return command


def single(callback: Callable[..., Any], name: str) -> click.Command:
    """The Typer command of one function (its docstring its help)."""
    holder = typer.Typer()
    holder.command(name)(callback)
    return as_command(name, holder)


class LazyGroup(TyperGroup):
    """A Typer group whose :attr:`loaders` are imported on first use."""

    loaders: ClassVar[Mapping[str, Loader]] = {}
    """Subcommands by name, each imported when first asked for."""
    discover: ClassVar[Callable[[], Iterable[tuple[str, click.Command]]] | None] = None
    """Further subcommands found by loading (called once, for a name no loader has)."""
    prepare: ClassVar[Callable[[click.Command], click.Command] | None] = None
    """Applied to every subcommand as it is loaded (the help text's plain words)."""

    def _add(self, name: str, command: click.Command) -> click.Command:
        prepared = type(self).prepare
        self.commands[name] = prepared(command) if prepared is not None else command
        return self.commands[name]

    def _discovered(self) -> None:
        discover = type(self).discover
        if discover is not None and not getattr(self, "_discovery_done", False):
            self._discovery_done = True
            for name, command in discover():
                if name not in self.commands:
                    self._add(name, command)

    def _load_all(self) -> None:
        for name in self.loaders:
            self.get_command(click.Context(self), name)
        self._discovered()

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every subcommand, loading those not yet loaded (help screens ask this)."""
        self._load_all()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The subcommand ``cmd_name``, imported now if it was not yet."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        loader = self.loaders.get(cmd_name)
        if loader is not None:
            return self._add(cmd_name, as_command(cmd_name, loader()))
        self._discovered()
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """As Typer resolves it; an unknown name first loads every command, so the
        "did you mean" suggestion can name any of them."""
        if args and self.get_command(ctx, args[0]) is None:
            self._load_all()
        return super().resolve_command(ctx, args)
