"""``healthledger supply ...``: command-line tools of the supply application."""

from __future__ import annotations

from pathlib import Path

import typer

from healthledger.apps.supply.event_hash import EpcisDocumentError, event_hashes


def build_cli() -> typer.Typer:
    """The ``supply`` command group."""
    cli = typer.Typer(no_args_is_help=True, add_completion=False)

    @cli.callback()
    def supply() -> None:
        """Supply traceability: EPCIS 2.0 events, custody, verification."""

    @cli.command("event-hash")
    def event_hash(
        file: Path = typer.Argument(..., help="EPCIS 2.0 document, JSON-LD or XML"),
    ) -> None:
        """Print the CBV 2.0 event hash of each event of FILE, one per line, in document order."""
        try:
            data = file.read_bytes()
        except OSError as exc:
            typer.echo(f"error: cannot read {file}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None
        fmt = "xml" if file.suffix.lower() == ".xml" else None
        try:
            hashes = event_hashes(data, fmt=fmt)
        except (EpcisDocumentError, UnicodeDecodeError) as exc:
            typer.echo(f"error: {file} is not a valid EPCIS 2.0 document: {exc}", err=True)
            raise typer.Exit(1) from None
        for item in hashes:
            typer.echo(item.hash)

    return cli
