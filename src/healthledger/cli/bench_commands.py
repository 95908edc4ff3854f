"""``healthledger bench``: benchmarks that print figures, the platform's here and each
installed application's own ``bench`` command as ``healthledger bench <app>``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from healthledger.cli import bench as benchmarks
from healthledger.cli.apps import INSTALLED_APPS
from healthledger.cli.bench_clients import CLIENT_BATCH, clients_benchmark, profile_summary
from healthledger.cli.bench_e2e import e2e_benchmark
from healthledger.cli.bench_network import network_benchmark
from healthledger.cli.credentials import build_cli as credentials_cli
from healthledger.cli.reporting import progress, reported, stderr, stdout

bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)

BenchStoreOption = typer.Option(
    None,
    "--store",
    help="Put the benchmark's ledger in this empty PostgreSQL database (a postgresql:// "
    "URL) instead of an SQLite file.",
)


def _emit_figures(title: str, figures: dict[str, Any], *, json_output: bool) -> None:
    """One JSON line with ``--json`` (the last line parses), else a table."""
    if json_output:
        print(json.dumps(figures))
    else:
        _figures(title, figures)


def _figures(title: str, figures: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    for name, value in figures.items():
        if isinstance(value, bool):
            shown = "true" if value else "false"
        elif isinstance(value, int | float):
            shown = f"{value:,}"
        else:
            shown = str(value)
        table.add_row(name, shown)
    stdout().print(table)


@bench_app.command("commit")
def bench_commit(
    tx: int = typer.Option(5000, "--tx", min=1, help="Transactions to commit."),
    json_output: bool = typer.Option(False, "--json", help="Print figures as one JSON line."),
    store: str | None = BenchStoreOption,
) -> None:
    """Committed tx/s of pre-endorsed transactions (ordering, validation, durable commit)."""
    with reported():
        status = None if json_output else (lambda m: stderr().print(f"[dim]{m}…[/dim]"))
        figures = benchmarks.commit_benchmark(tx, store=store, status=status).to_json()
        _emit_figures("bench commit", figures, json_output=json_output)


@bench_app.command("e2e")
def bench_e2e(
    tx: int = typer.Option(5000, "--tx", min=1, help="Transactions in the open-loop run."),
    clients: int = typer.Option(2, "--clients", min=1, max=64, help="Client threads signing."),
    sequential: int = typer.Option(
        300, "--sequential", min=1, help="Writes of the one-client, one-at-a-time run."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print figures as one JSON line."),
    store: str | None = BenchStoreOption,
) -> None:
    """Embedded node end to end: client signing to durable commit, against the signature
    ceiling; and one client's wait for its own write."""
    with reported():
        status = None if json_output else (lambda m: stderr().print(f"[dim]{m}…[/dim]"))
        figures = e2e_benchmark(
            tx, clients=clients, sequential=sequential, store=store, status=status
        ).to_json()
        _emit_figures("bench e2e", figures, json_output=json_output)


@bench_app.command("verify")
def bench_verify(
    tx: int = typer.Option(10_000, "--tx", min=1, help="Transactions in the ledger."),
    json_output: bool = typer.Option(False, "--json", help="Print figures as one JSON line."),
    store: str | None = BenchStoreOption,
) -> None:
    """Offline verify rate (healthledger verify) of a freshly built ledger."""
    with reported():
        status = None if json_output else (lambda m: stderr().print(f"[dim]{m}…[/dim]"))
        with progress(not json_output, "verifying blocks") as update:
            result = benchmarks.verify_benchmark(tx, store=store, status=status, progress=update)
        figures = result.to_json()
        _emit_figures("bench verify", figures, json_output=json_output)


@bench_app.command("proof")
def bench_proof(
    leaves: int = typer.Option(1_000_000, "--leaves", min=1, help="Size of the log."),
    samples: int = typer.Option(2000, "--samples", min=1, help="Proofs to time."),
    json_output: bool = typer.Option(False, "--json", help="Print figures as one JSON line."),
) -> None:
    """Inclusion-proof generation and verification times over a large global log."""
    with reported():
        if not json_output:
            stderr().print(f"[dim]building a log of {leaves:,} leaves…[/dim]")
        figures = benchmarks.proof_benchmark(leaves, samples=samples).to_json()
        _emit_figures("bench proof", figures, json_output=json_output)


@bench_app.command("network")
def bench_network(
    tx: int = typer.Option(3000, "--tx", min=1, help="Transactions to commit."),
    peers: int = typer.Option(3, "--peers", min=1, help="Peers that each commit every block."),
    rate: float = typer.Option(
        0.0,
        "--rate",
        min=0.0,
        help="Offer this many tx/s (paced) instead of submitting everything at once (0).",
    ),
    batch: int = typer.Option(50, "--batch", min=1, max=500, help="Transactions per submit call."),
    in_process: bool = typer.Option(
        False,
        "--in-process",
        help="Run every peer inside the benchmark's process (default: each its own, as deployed).",
    ),
    clients: int = typer.Option(
        0,
        "--clients",
        min=0,
        max=64,
        help="Drive the peers over HTTP from this many client processes through the "
        "client library (signing in each client), then compare with the in-process path.",
    ),
    concurrency: int = typer.Option(
        16, "--concurrency", min=1, max=512, help="With --clients: calls in flight per client."
    ),
    calls_per_request: int = typer.Option(
        CLIENT_BATCH,
        "--calls-per-request",
        min=1,
        max=200,
        help="With --clients: calls a client sends in one request (1: one endorse and one "
        "submit per call).",
    ),
    paced_tx: int = typer.Option(
        0, "--paced-tx", min=0, help="With --clients: calls at each paced load (0: --tx)."
    ),
    profile: Path | None = typer.Option(
        None,
        "--profile",
        help="With --clients: sample the peers' stacks and write them to this folder.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print figures as one JSON line."),
) -> None:
    """Committed tx/s and submit-to-commit-on-every-peer latency over three NATS servers:
    a burst by default (throughput), or a paced load with --rate (latency). With
    --clients N: a consortium as deployed (a peer process per organisation serving the
    API), written to over HTTP by N client processes with the client library; its peak,
    p50/p99 latency at 50 % and 80 % of that peak, and the ratio to the in-process path."""
    with reported():
        status = None if json_output else (lambda m: stderr().print(f"[dim]{m}…[/dim]"))
        if clients:
            if profile is not None:
                profile.mkdir(parents=True, exist_ok=True)
            figures = clients_benchmark(
                tx,
                clients=clients,
                concurrency=concurrency,
                batch=calls_per_request,
                peers=peers,
                paced_tx=paced_tx or None,
                profile=profile,
                status=status,
            )
            _emit_figures("bench network --clients", figures, json_output=json_output)
            if profile is not None and not json_output:
                for org, busiest in profile_summary(profile).items():
                    stdout().print(f"{org}: " + ", ".join(f"{n} {s:.0%}" for n, s in busiest))
            return
        figures = network_benchmark(
            tx, peers=peers, status=status, batch=batch, rate=rate or None, in_process=in_process
        ).to_json()
        _emit_figures("bench network", figures, json_output=json_output)


def _add_application_benches() -> None:
    """An application's own ``bench`` command also answers as ``healthledger bench <app>``."""
    clis = [("credentials", credentials_cli())]
    clis += [(a.name, a.cli()) for a in INSTALLED_APPS if a.cli is not None]
    for name, app_cli in clis:
        for command in app_cli.registered_commands:
            if command.name == "bench" and command.callback is not None:
                bench_app.command(name=name, help=command.help)(command.callback)


_add_application_benches()
