"""``healthledger supply ...``: command-line tools of the supply application."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from healthledger.appkit.client_commands import (
    CERT,
    IDENTITY,
    PASSPHRASE,
    URL,
    CommandInputError,
    committed_and_proved,
    one_line_errors,
    read_input,
    signing_client,
)
from healthledger.apps import bench_status, print_figures
from healthledger.apps.supply.event_check import (
    StoredEventError,
    check_stored_event,
    describe_check,
)
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

    @cli.command("capture")
    def capture(
        file: Path = typer.Argument(..., help="EPCIS 2.0 document, JSON-LD or XML."),
        evidence: Path | None = typer.Option(
            None, "--evidence", help="Also write the receipt and its proof here (JSON)."
        ),
        url: str = URL,
        identity: Path = IDENTITY,
        cert: Path | None = CERT,
        passphrase_file: Path | None = PASSPHRASE,
    ) -> None:
        """Check an EPCIS 2.0 document against the EPCIS JSON Schema, sign the capture
        of all its events here (one transaction, all or nothing), submit it and print
        its receipt, with the receipt's inclusion proof checked offline. Events the
        contract refuses (a pack dispensed twice, ...) are recorded as evidence and
        reported as an error."""
        from healthledger.apps.supply.schema import EpcisSchema, default_schema_path
        from healthledger.apps.supply.service import CONTRACT, document_steps, xml_document_steps

        with one_line_errors():
            data = read_input(file)
            schema = EpcisSchema(path=default_schema_path())
            if file.suffix.lower() == ".xml" or data.lstrip().startswith(b"<"):
                _, steps = xml_document_steps(schema, data)
            else:
                try:
                    document = json.loads(data)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise CommandInputError(f"{file} is neither JSON-LD nor XML: {exc}") from exc
                steps = document_steps(schema, document)
            with signing_client(url, identity, cert, passphrase_file) as client:
                committed = client.invoke(CONTRACT, "capture", {"steps": steps})
                answer = committed_and_proved(
                    client,
                    committed,
                    what=f"{len(steps)} EPCIS event{'' if len(steps) == 1 else 's'} captured",
                )
            if evidence is not None:
                evidence.write_text(json.dumps(answer["evidence"], indent=2))

    @cli.command("check")
    def check(
        event: str = typer.Argument(
            ..., help="Event hash (ni:///sha-256;...?ver=CBV2.0) or the event's EPCIS eventID."
        ),
        data: Path = typer.Option(..., "--data", help="Data folder of the node."),
        json_output: bool = typer.Option(False, "--json", help="Print the check as JSON."),
    ) -> None:
        """Check a stored EPCIS event against its on-chain anchor and inclusion proof.

        Recomputes the event's CBV 2.0 hash, compares it with the anchor on chain and
        gives the anchoring transaction's RFC 9162 inclusion proof. Exit 0 when intact,
        1 when tampered or unanchored, 2 when it cannot be checked."""
        try:
            report = check_stored_event(data, event)
        except StoredEventError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        if json_output:
            typer.echo(json.dumps(report, indent=2))
        else:
            for line in describe_check(report):
                typer.echo(line)
        if report["verdict"] != "intact":
            raise typer.Exit(1)

    @cli.command("bench")
    def bench(
        events: int = typer.Option(2_000, "--events", min=1, help="EPCIS events to ingest."),
        per_document: int = typer.Option(50, "--per-document", min=1, max=1000),
        clients: int = typer.Option(4, "--clients", min=1, max=64, help="Capturing threads."),
        store_events: int = typer.Option(
            100_000, "--store-events", min=1, help="Read-model size for the trace (goal 10^6)."
        ),
        samples: int = typer.Option(500, "--samples", min=10, help="Trace and verify samples."),
        lifecycle: bool = typer.Option(
            False,
            "--lifecycle",
            help="Instead: custody lifecycles (commission, ship, receive, dispense), each "
            "step signed by its actor, one transaction per block and batched, as the EVM "
            "baseline times them.",
        ),
        lifecycles: int = typer.Option(
            250, "--lifecycles", min=1, max=10_000, help="With --lifecycle: lifecycles per run."
        ),
        block_txs: int = typer.Option(
            100, "--block-txs", min=4, max=500, help="With --lifecycle: transactions per batch."
        ),
        repeat: int = typer.Option(
            3, "--repeat", min=1, max=20, help="With --lifecycle: runs per mode (median)."
        ),
        json_output: bool = typer.Option(False, "--json", help="Print figures as one JSON line."),
    ) -> None:
        """Ingest rate, one unit's trace p99 among many stored events, verify p99; or,
        with --lifecycle, custody lifecycles per second.

        The defaults run in well under a minute; the store goal is measured with
        ``--store-events 1000000``."""
        if lifecycle:
            from healthledger.apps.supply.lifecycle_bench import (
                LifecycleCheckFailed,
                lifecycle_benchmark,
            )

            try:
                found = lifecycle_benchmark(
                    lifecycles=lifecycles,
                    block_txs=block_txs,
                    repeat=repeat,
                    status=bench_status(json_output),
                )
            except LifecycleCheckFailed as exc:
                typer.echo(f"error: self-check failed: {exc}", err=True)
                raise typer.Exit(1) from None
            print_figures(found.to_json(), json_output=json_output)
            return
        from healthledger.apps.supply.bench import supply_benchmark

        figures = supply_benchmark(
            events=events,
            per_document=per_document,
            clients=clients,
            store_events=store_events,
            samples=samples,
            status=bench_status(json_output),
        ).to_json()
        print_figures(figures, json_output=json_output)

    return cli
