"""The commands that run a node on a data folder: ``demo``, ``node``, ``verify`` and
``proof`` (ARCHITECTURE.md section 7), loaded by ``healthledger.cli.main`` when one of
them runs."""

from __future__ import annotations

import json
import os
import random
import re
import ssl
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from types import FrameType
from typing import Any

import typer

from healthledger.cli.apps import INSTALLED_APPS, App, installed_contracts
from healthledger.cli.reporting import (
    EXIT_FAILED,
    EXIT_UNUSABLE,
    CliError,
    progress,
    reported,
    stdout,
)
from healthledger.cli.staff import StaffKeyOption, open_store
from healthledger.demo.traffic import (
    LiveTraffic,
    contracts_changed,
    open_or_create,
    platform_traffic_size,
    simulate_platform,
)
from healthledger.ledger.audit import AuditReport, audit_store
from healthledger.ledger.errors import InvalidBlock
from healthledger.node.consortium_peer import open_consortium_peer, peer_org
from healthledger.node.defaults import DEFAULT_CHECKPOINT_EVERY
from healthledger.node.embedded import LEDGER_FILE, NODE_FILE, EmbeddedNode
from healthledger.node.endorsers import replay_validator
from healthledger.node.parts import STORE_KEY, Node, shown_location
from healthledger.node.peer_tls import peer_client
from healthledger.node.seam import attach
from healthledger.node.staff import OPERATOR_KEY_ENV, StaffStore
from healthledger.node.workers import Worker, WorkerSupervisor

TX_ID_RE = re.compile(r"^[0-9a-f]{64}$")

commands = typer.Typer()
"""Each command here is a top-level command of ``healthledger``."""


# --- folders -----------------------------------------------------------------


def _ledger_store(path: Path) -> Path | str:
    """The ledger store of a data folder: its SQLite file, or the PostgreSQL database its
    ``node.json`` names; or the file itself."""
    if not path.exists():
        raise CliError(f"{path} does not exist", EXIT_UNUSABLE)
    if path.is_dir():
        ledger = path / LEDGER_FILE
        if not ledger.is_file() and (path / NODE_FILE).is_file():
            recorded = json.loads((path / NODE_FILE).read_text()).get(STORE_KEY)
            if recorded:
                return str(recorded)
        if not ledger.is_file():
            raise CliError(
                f"{path} is not a healthledger data folder (no {LEDGER_FILE})", EXIT_UNUSABLE
            )
        return ledger
    return path


StoreOption = typer.Option(
    None,
    "--store",
    help="Where the ledger lives: a postgresql:// URL of a PostgreSQL database "
    "(default: ledger.sqlite in the data folder). A folder founded on PostgreSQL records "
    "its URL in node.json and needs no --store.",
)


def _open_node(
    data: Path,
    jetstream: Sequence[str] = (),
    *,
    checkpoint_every: int = 0,
    store: str | None = None,
) -> Node:
    """The node of an existing data folder, not started; with ``jetstream`` (NATS
    URLs) a consortium peer ordering through that cluster; with ``store`` its ledger in
    that PostgreSQL database."""
    if not data.is_dir():
        raise CliError(f"{data} is not a folder", EXIT_UNUSABLE)
    if not (data / NODE_FILE).is_file():
        raise CliError(f"{data} is not a healthledger data folder (no {NODE_FILE})", EXIT_UNUSABLE)
    try:
        if jetstream:
            if peer_org(data) is None:
                raise CliError(f"{data} is not a consortium peer folder", EXIT_UNUSABLE)
            return open_consortium_peer(
                data,
                contracts=installed_contracts(),
                servers=list(jetstream),
                checkpoint_every=checkpoint_every or DEFAULT_CHECKPOINT_EVERY,
                store=store,
            )
        return EmbeddedNode(data, contracts=installed_contracts(), store=store)
    except (ValueError, KeyError, TypeError) as exc:
        # json and the keystore's own parsing report a corrupt keystore this way.
        raise CliError(
            f"{data} holds an unreadable keystore or node file: {exc}", EXIT_UNUSABLE
        ) from exc


def _serve(
    node: Node,
    *,
    host: str,
    port: int,
    demo_custody: bool,
    tls: tuple[Path, Path] | None = None,
    staff: StaffStore | None = None,
) -> None:
    """Serve the web console of ``node`` until interrupted; over HTTPS with ``tls``
    (certificate and key PEM files)."""
    import uvicorn

    try:
        # Imported here: only serving needs the web layer.
        from healthledger.web.console import create_console
    except ImportError as exc:
        raise CliError(f"the web console is not available: {exc}", EXIT_FAILED) from exc

    class QuietServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            # uvicorn re-raises a caught Ctrl-C after its graceful shutdown, and asyncio
            # then cancels the finished lifespan task and logs a traceback: the shutdown
            # is done by then, so there is nothing left to re-raise for.
            self._captured_signals.clear()

    supervisor = WorkerSupervisor(app_workers(node))
    console_app = create_console(node, demo_custody=demo_custody, workers=supervisor, staff=staff)
    options: dict[str, Any] = {}
    if tls is not None:
        _check_server_tls(*tls)
        options = {"ssl_certfile": str(tls[0]), "ssl_keyfile": str(tls[1])}
    server = QuietServer(
        uvicorn.Config(console_app, host=host, port=port, log_level="warning", **options)
    )
    scheme = "https" if tls is not None else "http"
    for state in supervisor.states():
        acts = f" (signs as {state.worker.acts_as})" if state.worker.acts_as else ""
        stdout().print(f"worker {state.worker.name}{acts}: {state.worker.description}")
    supervisor.start()
    stdout().print(f"console at [bold]{scheme}://{host}:{port}/[/bold]  (Ctrl-C to stop)")
    try:
        # A second Ctrl-C during the graceful shutdown still ends it: a normal stop too.
        with suppress(KeyboardInterrupt):
            server.run()
    finally:
        supervisor.stop()
    stdout().print("stopped")


def app_workers(node: Node) -> list[Worker]:
    """Every installed application's background workers on ``node``."""
    return [
        worker
        for installed in INSTALLED_APPS
        if installed.workers is not None
        for worker in installed.workers(attach(node, installed))
    ]


def _check_server_tls(cert: Path, key: Path) -> None:
    """Refuse, in one line, a certificate and key the server could not serve with."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise CliError(
            f"cannot serve TLS with certificate {cert} and key {key}: {exc}", EXIT_UNUSABLE
        ) from exc


def _live_step_of(app: App) -> Callable[[Node, random.Random], Mapping[str, int]]:
    """``app``'s live step, given the node: run on the application's seam."""
    step = app.live_step
    assert step is not None

    def on_seam(node: Node, rng: random.Random) -> Mapping[str, int]:
        return step(attach(node, app), rng)

    return on_seam


def _serve_live(node: Node, rng: random.Random, *, host: str, port: int, every: float) -> None:
    """Serve the demo console while each application's live traffic runs."""
    steps = [(a.name, _live_step_of(a)) for a in INSTALLED_APPS if a.live_step is not None]
    live = LiveTraffic(node, steps, rng, every=every) if every > 0 and steps else None
    if live is not None:
        live.start()
        stdout().print(f"live traffic every {every:g} s: {', '.join(name for name, _ in steps)}")
    try:
        _serve(node, host=host, port=port, demo_custody=True)
    finally:
        if live is not None:
            live.stop()


# --- commands ------------------------------------------------------------------


@commands.command()
def demo(
    data: Path = typer.Option(Path("demo-data"), "--data", help="Data folder."),
    port: int = typer.Option(8000, "--port", help="Port of the web console."),
    no_serve: bool = typer.Option(False, "--no-serve", help="Build and stop, no console."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the simulated traffic."),
    live_every: float = typer.Option(
        3.0,
        "--live-every",
        help="Seconds between rounds of live traffic while serving (0: none).",
    ),
    store: str | None = StoreOption,
) -> None:
    """Found the demo consortium (or reopen DATA), run simulated traffic, serve the console
    with live traffic going on."""
    with reported():
        if live_every < 0:
            raise CliError("--live-every must be 0 (no live traffic) or more", EXIT_UNUSABLE)
        if data.exists() and not data.is_dir():
            raise CliError(f"{data} is not a folder", EXIT_UNUSABLE)
        if data.is_dir() and any(data.iterdir()) and not (data / NODE_FILE).exists():
            raise CliError(f"{data} is not empty and holds no healthledger ledger", EXIT_UNUSABLE)
        rng = random.Random(seed)
        contracts = installed_contracts()
        node, created = open_or_create(data, contracts, store=store)
        try:
            node.start()
            changed = [] if created else contracts_changed(node, contracts)
            if changed:
                raise CliError(
                    f"{data} was made by another version of healthledger: its ledger approved "
                    f"other code for {', '.join(changed)}; start the demo in a new folder "
                    "(--data) or remove this one",
                    EXIT_UNUSABLE,
                )
            out = stdout()
            out.print(f"{'founded' if created else 'reopened'} the demo consortium in {data}")
            with progress(True, "platform traffic") as update:
                total = platform_traffic_size(node)
                done = 0

                def tick(_label: str) -> None:
                    nonlocal done
                    done += 1
                    if update is not None:
                        update(done, total)

                summary = simulate_platform(node, rng, advance=tick)
            for installed in INSTALLED_APPS:
                if installed.simulate is None:
                    continue
                with progress(True, f"{installed.name} traffic"):
                    counts = installed.simulate(attach(node, installed), rng)
                out.print(
                    f"{installed.name}: " + ", ".join(f"{n} {what}" for what, n in counts.items())
                )
            codes = ", ".join(f"{n} {code}" for code, n in sorted(summary.codes.items()))
            out.print(
                f"committed {sum(summary.codes.values())} transactions ({codes}); "
                f"height {node.peer.store.height()}, "
                f"{len(summary.registered)} staff registered, {len(summary.revoked)} revoked"
            )
            if not no_serve:
                _serve_live(node, rng, host=host, port=port, every=live_every)
        finally:
            node.stop()


@commands.command()
def node(
    data: Path = typer.Option(..., "--data", help="Data folder of an existing ledger."),
    port: int = typer.Option(8000, "--port", help="Port of the web console."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    jetstream: str = typer.Option(
        "",
        "--jetstream",
        help="Comma-separated NATS URLs: run a consortium peer ordering through JetStream.",
    ),
    demo_custody: bool = typer.Option(
        False, "--demo-custody", hidden=True, help="Sign for the identities whose keys are held."
    ),
    checkpoint_every: int = typer.Option(
        DEFAULT_CHECKPOINT_EVERY,
        "--checkpoint-every",
        min=1,
        help="With --jetstream: sign a checkpoint every this many blocks.",
    ),
    tls_cert: Path | None = typer.Option(
        None, "--tls-cert", help="Serve HTTPS with this certificate (PEM; with --tls-key)."
    ),
    tls_key: Path | None = typer.Option(
        None, "--tls-key", help="The private key of --tls-cert (PEM)."
    ),
    staff_key: Path | None = StaffKeyOption,
    store: str | None = StoreOption,
) -> None:
    """Serve an existing data folder; with an operator key (--staff-key or
    HEALTHLEDGER_STAFF_KEY) its enrolled staff log in to the console with a password.
    Its ledger is the folder's ledger.sqlite, or the PostgreSQL database of --store."""
    with reported():
        if (tls_cert is None) != (tls_key is None):
            raise CliError("--tls-cert and --tls-key go together", EXIT_UNUSABLE)
        tls = None if tls_cert is None or tls_key is None else (tls_cert, tls_key)
        if tls is not None:
            _check_server_tls(*tls)
        # A half-given or unreadable HEALTHLEDGER_PEER_* setting stops the peer now.
        peer_client(timeout=1.0).close()
        servers = [u.strip() for u in jetstream.split(",") if u.strip()]
        if not servers and (data / NODE_FILE).is_file() and peer_org(data) is not None:
            # A solo orderer here would fork this peer off the consortium's chain.
            raise CliError(
                f"{data} is a consortium peer folder: give --jetstream with the NATS URLs",
                EXIT_UNUSABLE,
            )
        staff = None
        if not demo_custody and (staff_key is not None or os.environ.get(OPERATOR_KEY_ENV)):
            staff = open_store(data, staff_key)
        embedded = _open_node(data, servers, checkpoint_every=checkpoint_every, store=store)
        if embedded.peer.store.height() == 0:
            embedded.stop()
            raise CliError(
                f"the store {shown_location(embedded.parts.store_location)} holds no ledger: "
                "found one on it with "
                "`healthledger demo --store` (or `network up`)",
                EXIT_UNUSABLE,
            )
        try:
            # A consortium peer serves queries while NATS is down and keeps retrying.
            embedded.start()
            _serve(embedded, host=host, port=port, demo_custody=demo_custody, tls=tls, staff=staff)
        finally:
            embedded.stop()


@commands.command()
def verify(
    path: Path = typer.Argument(
        ...,
        help="Data folder (or its ledger.sqlite); a folder whose ledger is in PostgreSQL "
        "is audited in that database.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Audit a whole ledger offline: hashes, roots, every validation decision, state."""
    with reported():
        ledger = _ledger_store(path)
        try:
            with progress(not json_output, "verifying blocks") as update:
                report = audit_store(ledger, validator=replay_validator, progress=update)
        except InvalidBlock as exc:
            if json_output:
                shown = shown_location(ledger)
                print(json.dumps({"path": shown, "ok": False, "error": str(exc)}))
            raise
        if json_output:
            print(json.dumps(report.to_json()))
        else:
            _print_report(report)


def _print_report(report: AuditReport) -> None:
    codes = ", ".join(f"{n} {code}" for code, n in sorted(report.codes.items()))
    out = stdout()
    out.print(
        f"[bold green]ok[/bold green] {report.path}: {report.blocks} blocks, "
        f"{report.transactions} transactions ({codes}) checked in {report.seconds:.2f} s "
        f"({report.tx_per_s:,.0f} tx/s)"
    )
    out.print(
        f"head {report.head_hash}  log size {report.log_size}  root {report.log_root}  "
        f"state keys {report.state_keys}"
    )


@commands.command()
def proof(
    data: Path = typer.Option(..., "--data", help="Data folder of the ledger."),
    txid: str | None = typer.Argument(None, help="Transaction id (default: the latest)."),
) -> None:
    """Print the RFC 9162 inclusion proof of a transaction in the global log, as JSON."""
    with reported():
        if txid is not None and not TX_ID_RE.match(txid):
            raise CliError(f"{txid!r} is not a transaction id (64 hex digits)", EXIT_UNUSABLE)
        embedded = _open_node(data)
        try:
            size = embedded.peer.chain.log.size
            if txid is None:
                if size == 0:
                    raise CliError(f"{data} holds no transaction", EXIT_FAILED)
                txid = embedded.peer.store.tx_at_log_index(size - 1).tx_id
            document = embedded.peer.inclusion_proof(txid)
        finally:
            embedded.stop()
        print(json.dumps(document, indent=2))
