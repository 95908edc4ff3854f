"""Help screens people read: a flag shows no type, a value shows what it is in words
(``--port INTEGER``, ``--data PATH``), never Typer's ``<bool>``/``<int>`` type labels;
and sentences are whole, wrapped by the terminal and not where the docstring broke."""

from __future__ import annotations

import re
from typing import Any

WORDS = {"int": "INTEGER", "float": "NUMBER", "str": "TEXT", "bool": ""}
"""Typer's type labels and the words shown instead."""


def plain_help(command: Any) -> Any:
    """Give every parameter of a Typer ``command`` and of its subcommands a metavar in
    words (none for flags); returns ``command``."""
    for param in [*command.params, command.get_help_option(_NoContext())]:
        if param is None:
            continue
        words = _words(param)
        if param.param_type_name == "argument":
            # an argument keeps its name in the usage line; only its type column changes
            param.display_type_rich = lambda ctx, words=words: words or None
        elif param.metavar is None:
            param.metavar = words
    command.help = reflow(command.help)
    command.short_help = reflow(command.short_help)
    for param in command.params:
        if getattr(param, "help", None):
            param.help = reflow(param.help)
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    return command


def reflow(text: str | None) -> str | None:
    """A docstring's paragraphs as whole lines: the terminal wraps them, so a sentence
    is never broken where the source file happened to break it."""
    if not text:
        return text
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _words(param: Any) -> str:
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None:
        return ""
    if descriptor.is_choice:
        return "|".join(str(choice) for choice in descriptor.choices or ())
    if descriptor.is_path:
        return "PATH"
    label = WORDS.get(param.bare_type(), param.bare_type().upper())
    return label if param.nargs == 1 else f"{label}..."


class _NoContext:
    """Enough of a context for ``get_help_option``: the default help option names."""

    help_option_names = ("--help",)
