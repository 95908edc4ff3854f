"""``healthledger epidemic ...``: command-line tools of the epidemic application."""

from __future__ import annotations

import typer

from healthledger.apps import bench_status, print_figures


def build_cli() -> typer.Typer:
    """The ``epidemic`` command group."""
    cli = typer.Typer(no_args_is_help=True, add_completion=False)

    @cli.callback()
    def epidemic() -> None:
        """Notifiable case reporting, surveillance dashboards, early warning."""

    @cli.command("bench")
    def bench(
        reports: int = typer.Option(2_000, "--reports", min=1, help="Case reports to ingest."),
        clients: int = typer.Option(4, "--clients", min=1, max=64, help="Reporting threads."),
        batch_size: int = typer.Option(
            100, "--batch-size", min=1, max=500, help="Reports per report_cases transaction."
        ),
        aggregate_rows: int = typer.Option(
            1_000_000,
            "--aggregate-rows",
            min=1,
            help="Read-model size for the dashboard queries (goal 10^7).",
        ),
        samples: int = typer.Option(200, "--samples", min=4, help="Dashboard query samples."),
        freshness: int = typer.Option(
            100, "--freshness-samples", min=1, help="Reports timed from commit to read model."
        ),
        json_output: bool = typer.Option(False, "--json", help="Print figures as one JSON line."),
    ) -> None:
        """Report ingest rate (one report per transaction, then batched), dashboard
        aggregate query p50/p99, commit-to-dashboard delay.

        The defaults run in under a minute with a 10^6-case read model; the issue's goal
        is measured with ``--aggregate-rows 10000000``."""
        from healthledger.apps.epidemic.bench import epidemic_benchmark

        figures = epidemic_benchmark(
            reports=reports,
            clients=clients,
            batch_size=batch_size,
            aggregate_rows=aggregate_rows,
            samples=samples,
            freshness_samples=freshness,
            status=bench_status(json_output),
        ).to_json()
        print_figures(figures, json_output=json_output)

    return cli
