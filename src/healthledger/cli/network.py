"""``healthledger network ...``: a consortium on this machine. Each command parses its
options, calls :mod:`healthledger.network` and prints what it did; every failure is
one red line (``cli.reporting``)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from healthledger.cli.reporting import (
    EXIT_FAILED,
    EXIT_UNUSABLE,
    CliError,
    fail,
    reported,
    stderr,
    stdout,
)
from healthledger.cli.reporting import progress as progress_bar
from healthledger.contracts.system.admission import ORGANISATION_KINDS
from healthledger.network.layout import HOST, REQUEST_FILE
from healthledger.node.defaults import DEFAULT_CHECKPOINT_EVERY

if TYPE_CHECKING:
    from healthledger.network.traffic import Stage, TrafficReport

network_app = typer.Typer(
    help="A consortium on this machine: a NATS JetStream cluster and one peer per organisation.",
    no_args_is_help=True,
)


@network_app.command("up")
def up(
    data: Path = typer.Option(..., "--data", help="Folder of the network (created if new)."),
    orgs: int = typer.Option(3, "--orgs", help="Organisations of the demo consortium (3-10)."),
    base_port: int | None = typer.Option(
        None, "--base-port", help="First port: NATS takes 9 from here, then one per peer."
    ),
    checkpoint_every: int = typer.Option(
        DEFAULT_CHECKPOINT_EVERY,
        "--checkpoint-every",
        help="Each peer signs a checkpoint every this many blocks.",
    ),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for health."),
    stores: list[str] = typer.Option(
        [],
        "--store",
        help="Found the peers' ledgers on PostgreSQL: a server URL such as "
        "postgresql://hl@db.example/ (a database per organisation, named DIR_ORG, created "
        "if absent), or ORG=URL of an empty database (repeat). No password in the URL: "
        "~/.pgpass, PGPASSFILE or PGPASSWORD.",
    ),
) -> None:
    """Start a NATS JetStream cluster and one peer per organisation, in the background."""
    from healthledger.cli.apps import installed_contracts
    from healthledger.demo.organisations import DEMO_ORGS
    from healthledger.network.stores import parse_stores
    from healthledger.network.supervisor import MIN_ORGS, Supervisor

    with reported():
        if not MIN_ORGS <= orgs <= len(DEMO_ORGS):
            raise CliError(f"--orgs must be between {MIN_ORGS} and {len(DEMO_ORGS)}", EXIT_UNUSABLE)
        choice = parse_stores(stores)
        say = stdout().print
        with progress_bar(True, "starting the network") as update:
            Supervisor(data, say=say, progress=update).up(
                plans=DEMO_ORGS[: max(orgs, 0)],
                contracts=installed_contracts(),
                base_port=base_port,
                checkpoint_every=checkpoint_every,
                timeout=timeout,
                stores=choice,
            )
        say(f"network up; 'healthledger network down --data {data}' stops it")


@network_app.command("status")
def status(
    data: Path = typer.Option(..., "--data", help="Folder of the network."),
    json_output: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Each peer's height, head block, lag and health; each NATS server's health.
    Exits 1 (after printing) if a peer is not ok or a NATS server is down."""
    from healthledger.network import status as network_status

    with reported():
        report = network_status.status(data)
        if json_output:
            print(json.dumps(report))
        else:
            print_status(report, stdout())
        trouble = network_status.trouble(report)
    if trouble:
        fail(trouble, EXIT_FAILED)


@network_app.command("down")
def down(
    data: Path = typer.Option(..., "--data", help="Folder of the network."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds before SIGKILL."),
) -> None:
    """Stop the peers, then the NATS servers (SIGTERM, then SIGKILL after --timeout)."""
    from healthledger.network.supervisor import Supervisor

    with reported(), progress_bar(True, "stopping the network"):
        Supervisor(data, say=stdout().print).down(timeout=timeout)


@network_app.command("join")
def join(
    org: str = typer.Option(..., "--org", help="The organisation whose peer joins."),
    source: str = typer.Option(
        ..., "--from", help="Base URL of an existing peer, e.g. http://10.0.0.5:8000."
    ),
    data: Path = typer.Option(..., "--data", help="Folder of the new peer (no ledger yet)."),
    keystore: Path | None = typer.Option(
        None, "--keystore", help="The organisation's keystore, copied into the folder."
    ),
    genesis: Path | None = typer.Option(
        None, "--genesis", help="The consortium's genesis.json that block 0 must hold."
    ),
    jetstream: str = typer.Option(
        "",
        "--jetstream",
        help="Comma-separated NATS URLs: check the snapshot's stream position against "
        "the ordering stream (recommended; the checkpoints do not cover it).",
    ),
    timeout: float = typer.Option(
        120.0, "--timeout", help="Seconds to wait for a snapshot vouched for by a majority."
    ),
    port: int | None = typer.Option(
        None,
        "--port",
        help="Into a network folder: the peer's API port (default: its earlier one or a free one).",
    ),
    no_start: bool = typer.Option(
        False, "--no-start", help="Into a network folder: record the peer but do not start it."
    ),
    store: str | None = typer.Option(
        None,
        "--store",
        help="Install the ledger into this empty PostgreSQL database (a postgresql:// URL, "
        "no password in it: ~/.pgpass, PGPASSFILE or PGPASSWORD) instead of ledger.sqlite.",
    ),
) -> None:
    """Join the consortium from a verified snapshot of an existing peer."""
    from healthledger.network import join as joining
    from healthledger.node.peer_directory import DirectoryError

    out = stdout()
    with (
        reported(unusable=(ValueError, DirectoryError)),
        progress_bar(True, f"joining the peer of {org}"),
    ):
        joined = joining.join(
            org=org,
            source=source,
            data=data,
            keystore=keystore,
            genesis=genesis,
            servers=[u.strip() for u in jetstream.split(",") if u.strip()],
            timeout=timeout,
            port=port,
            start=not no_start,
            store=store,
            say=out.print,
        )
    network, peer = joined.network, joined.peer
    if network is None or peer is None:
        out.print(
            f"joined: {data} holds the ledger up to block {joined.height}; it follows the "
            f"ordering stream from position {joined.stream_position + 1} once started with "
            f"'healthledger node --data {data} --jetstream <NATS URLs>'"
        )
    elif not joined.started:
        out.print(
            f"start it with 'healthledger node --data {data} --port {peer.port} "
            f"--jetstream {','.join(network.servers)} --checkpoint-every "
            f"{network.checkpoint_every}'"
        )
    else:
        root = data.absolute().parent.parent
        out.print(
            f"the peer of {org} runs in the background; 'healthledger network down "
            f"--data {root}' stops it with the rest"
        )


@network_app.command("new-org")
def new_org(
    data: Path = typer.Option(..., "--data", help="Folder of the network."),
    org: str = typer.Option(..., "--org", help="Id of the new organisation, e.g. zhuhai-clinic."),
    name: str = typer.Option(..., "--name", help="Its full name."),
    kind: str = typer.Option(..., "--kind", help=f"One of {', '.join(ORGANISATION_KINDS)}."),
    roles: list[str] = typer.Option(
        [], "--role", help="A role its identities may hold, besides admin and peer (repeat)."
    ),
    attributes: list[str] = typer.Option(
        [], "--attribute", help="An attribute KEY=VALUE of the organisation (repeat)."
    ),
    gs1_prefixes: list[str] = typer.Option(
        [],
        "--gs1-prefix",
        help="A GS1 company prefix it holds, for a maker's products or its places (repeat).",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for its keys (new or empty; default DIR/peers/ORG)."
    ),
) -> None:
    """Make a new organisation's keys and its admission request."""
    from healthledger.crypto.errors import CryptoError
    from healthledger.network import admit as admission

    with reported(unusable=(ValueError, KeyError, TypeError, CryptoError)):
        folder = admission.new_org(
            data,
            org=org,
            name=name,
            kind=kind,
            roles=roles,
            attributes=attributes,
            gs1_prefixes=gs1_prefixes,
            out=out,
        )
    stdout().print(
        f"keys of {org} (CA, {org}/admin, {org}/peer0) in {folder / 'keystore.json'}; "
        f"have it admitted with 'healthledger network admit --data {data} --org {org}'"
    )


@network_app.command("admit")
def admit(
    data: Path = typer.Option(..., "--data", help="Folder of the network."),
    org: str = typer.Option(..., "--org", help="The organisation to admit."),
    request: Path | None = typer.Option(
        None,
        "--request",
        help=f"Its {REQUEST_FILE} (default DIR/peers/ORG/{REQUEST_FILE}).",
    ),
    by: str = typer.Option(
        "",
        "--by",
        help="Comma-separated member organisations whose admins propose (the first) and "
        "approve, in order (default: every member, until a majority has approved).",
    ),
) -> None:
    """Have the members' admins propose and approve a new organisation."""
    from healthledger.crypto.errors import CryptoError
    from healthledger.network import admit as admission

    out = stdout()
    with (
        reported(unusable=(ValueError, KeyError, TypeError, CryptoError)),
        progress_bar(True, f"admitting {org}"),
    ):
        done = admission.admit(
            data,
            org,
            request_file=request,
            by=[o.strip() for o in by.split(",") if o.strip()],
            say=out.print,
        )
    record = done.record
    if record["status"] == "admitted":
        command = (
            f"healthledger network join --org {org} --from {done.source} "
            f"--data {done.request_file.parent} --jetstream {','.join(done.servers)}"
        )
        out.print(
            f"admitted {org} with {org}/admin and its peer; bring the peer in with '{command}'"
        )
    else:
        out.print(
            f"{org} is {record['status']}: approved by {', '.join(record['approved_by'])} "
            f"({record['needed']} needed)"
        )


@network_app.command("traffic")
def network_traffic(
    data: Path = typer.Option(..., "--data", help="Folder of a running network."),
    seconds: float | None = typer.Option(
        None, "--seconds", help="Keep live rounds going for this many seconds."
    ),
    rounds: int | None = typer.Option(None, "--rounds", help="Live rounds to run."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the simulated traffic."),
    only: list[str] | None = typer.Option(
        None,
        "--app",
        help="Run this application's traffic only (repeat for several); all by default.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as one JSON line."),
) -> None:
    """Run the demo's simulated traffic over the running network: the platform's, then
    each application's whose organisations are in it, then live rounds; every write is
    endorsed by the organisations' own peers."""
    from healthledger.cli.apps import INSTALLED_APPS, installed_contracts
    from healthledger.network.traffic import traffic

    out = stderr() if json_output else stdout()
    known = {app.name: app for app in INSTALLED_APPS}
    unknown = sorted(set(only or ()) - set(known))
    if unknown:
        names = ", ".join(known)
        fail(f"no application named {', '.join(unknown)} (there are {names})", EXIT_UNUSABLE)
    chosen = [app for app in INSTALLED_APPS if not only or app.name in only]
    with reported(), staged_progress() as stage:
        report = traffic(
            data,
            seconds=seconds,
            rounds=rounds,
            seed=seed,
            apps=chosen,
            contracts=installed_contracts(),
            say=out.print,
            stage=stage,
        )
    if json_output:
        print(json.dumps(report.to_json()))
    else:
        for line in summary_lines(report):
            out.print(line)
    if not report.holds_client_head:
        raise typer.Exit(EXIT_FAILED)


# --- showing -----------------------------------------------------------------------


@contextmanager
def staged_progress() -> Iterator[Stage]:
    """A Rich progress bar on stderr whose description follows the stage a long
    operation is in (a bar when the stage's total is known, a pulse when not)."""
    console = stderr()
    if not console.is_terminal:
        yield lambda _stage, _done, _total: None
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
    task = bar.add_task("starting", total=None)

    def stage(description: str, done: int, total: int | None) -> None:
        bar.update(task, description=description, completed=done, total=total)

    with bar:
        yield stage


_PEER_STATE_CELLS = {
    "ok": "[green]ok[/green]",
    "down": "[red]down[/red]",
    "tampered": "[bold red]TAMPERED[/bold red]",
    "minority": "[bold red]MINORITY[/bold red]",
    "diverged": "[red]DIVERGED[/red]",
    "stuck": "[yellow]stuck[/yellow]",
    "no-ordering": "[yellow]no ordering[/yellow]",
    "unhealthy": "[yellow]unhealthy[/yellow]",
}
"""How the status table shows each of ``network.status.PEER_STATES``."""
HEAD_DIGITS = 12
"""Hex digits of a head block hash the table shows (``--json`` has them whole)."""


def _where(url: str) -> str:
    """``url`` as the table shows it: the port alone when on this machine."""
    host, _, port = url.rstrip("/").rpartition(":")
    return port if host.endswith(f"//{HOST}") else url


def print_status(report: Mapping[str, Any], out: Console) -> None:
    """The status ``report`` as a table that fits 80 columns, then the head and any
    checkpoint alarm."""
    table = Table(
        title=f"network {report['network']}",
        caption=f"ports on {HOST}; --json gives whole URLs and hashes",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column("org", overflow="fold")
    table.add_column("port", overflow="fold")
    for column in ("height", "head", "lag", "ckpt"):
        table.add_column(column, justify="right" if column != "head" else "left")
    table.add_column("state", no_wrap=True)
    for peer in report["peers"]:
        checkpoint = peer["checkpoint"]
        table.add_row(
            peer["org"],
            _where(peer["url"]),
            str(peer["height"] if peer["height"] is not None else "-"),
            (peer["block_hash"] or "-")[:HEAD_DIGITS],
            str(peer["lag"] if peer["lag"] is not None else "-"),
            "-" if checkpoint is None else f"{checkpoint['height']}",
            _PEER_STATE_CELLS.get(peer["state"], peer["state"]),
        )
    for server in report["nats"]:
        table.add_row(
            f"nats {server['name']}",
            _where(server["url"]),
            "",
            "",
            "",
            "",
            "[green]ok[/green]" if server["healthy"] else "[red]down[/red]",
        )
    out.print(table)
    out.print("common head" if report["common_head"] else "[yellow]no common head[/yellow]")
    checkpoints = report["checkpoints"]
    for divergence in checkpoints["divergences"]:
        out.print(
            f"[bold red]ALARM[/bold red] checkpoints disagree at height "
            f"{divergence['height']}: "
            + ", ".join(f"{o} {h[:HEAD_DIGITS]}" for o, h in divergence["views"].items())
        )
    for org, problems in checkpoints["invalid"].items():
        out.print(f"[bold red]ALARM[/bold red] {org}: invalid checkpoint {problems[0]}")


def summary_lines(report: TrafficReport) -> list[str]:
    """The closing summary of a traffic run: transactions by validation code, heights
    per peer."""
    from healthledger.ledger.transaction import ValidationCode

    total = sum(report.codes.values())
    codes = ", ".join(f"{n} {code}" for code, n in sorted(report.codes.items())) or "none"
    lines = [f"committed {total} transactions in {report.blocks} blocks: {codes}"]
    if report.codes.get(str(ValidationCode.IDENTITY_REVOKED)):
        lines.append(
            "  IDENTITY_REVOKED is intended: the platform traffic orders a nurse's "
            "transaction after revoking her"
        )
    for org, peer in report.peers.items():
        where = "-" if peer["block_hash"] is None else str(peer["block_hash"])[:16]
        lines.append(f"  {org}: height {peer['height']}, head {where}")
    if report.common_head:
        lines.append(f"common head at height {report.height}")
    elif report.holds_client_head:
        lines.append(f"every peer holds the client's head block {report.height - 1}; some went on")
    else:
        lines.append(f"no common head: the client is at height {report.height}")
    return lines
