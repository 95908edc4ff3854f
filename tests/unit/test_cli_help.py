"""Every command's help reads as sentences with values in words: no Typer type labels
(``<bool>``, ``<int>``…) and no docstring line breaks in the middle of a sentence."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer

from healthledger.cli.help_text import reflow
from healthledger.cli.main import app, main


def command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command's words, the lazily loaded ones too (as a help screen lists them)."""
    paths = [prefix]
    if hasattr(command, "list_commands"):
        context = typer.Context(command)
        for name in command.list_commands(context):
            paths.extend(command_paths(command.get_command(context, name), (*prefix, name)))
    return paths


PATHS = command_paths(typer.main.get_command(app))
TYPE_LABEL = re.compile(r"<(bool|int|float|str|path|file|directory)>")


def test_there_are_commands_to_check() -> None:
    assert ("demo",) in PATHS and ("network", "status") in PATHS


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "healthledger")
def test_help_has_no_type_labels(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main([*path, "--help"])
    assert ended.value.code == 0
    shown = capsys.readouterr().out
    assert "Usage: healthledger" in shown
    assert TYPE_LABEL.search(shown) is None, TYPE_LABEL.search(shown)


def test_flags_show_no_type_and_values_show_words(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    lines = capsys.readouterr().out.splitlines()
    port = next(line for line in lines if "--port" in line)
    no_serve = next(line for line in lines if "--no-serve" in line)
    assert "INTEGER" in port
    assert re.search(r"--no-serve\s+Build", no_serve), no_serve


def test_reflow_joins_lines_of_a_paragraph_and_keeps_paragraphs() -> None:
    text = "Found the demo, run traffic,\n    serve the console.\n\n    Second paragraph\n    here."
    assert (
        reflow(text) == "Found the demo, run traffic, serve the console.\n\nSecond paragraph here."
    )
    assert reflow(None) is None and reflow("") == ""
