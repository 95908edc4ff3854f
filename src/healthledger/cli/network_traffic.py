"""``healthledger network traffic``: the demo's simulated traffic over a running
consortium network (``network up``).

A traffic client (:mod:`healthledger.node.traffic`) follows the ordering stream as a
read-only replica in ``DIR/traffic/`` and holds the user identities of every
organisation folder under ``DIR/peers/`` (demo custody: the local network's root
holds them all); every write it makes is endorsed by the organisations' own peers
and ordered through JetStream. It runs the platform's traffic (``demo``'s staff
registrations, contract upgrade and deliberate revocation), then each installed
application's simulator whose organisations are in the network, then live rounds
(``App.live_step``) for ``--rounds`` rounds and/or ``--seconds`` seconds, and waits
until every peer holds the client's head.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from healthledger.cli.apps import INSTALLED_APPS, App, installed_contracts
from healthledger.cli.demo import simulate_platform
from healthledger.cli.network import Network, NetworkError, alive, http_json
from healthledger.contracts.errors import ContractError
from healthledger.crypto.errors import CryptoError
from healthledger.ledger.errors import LedgerError
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.consortium import DEMO_ORGS
from healthledger.node.consortium_peer import GENESIS_FILE
from healthledger.node.embedded import NODE_FILE
from healthledger.node.errors import NodeError
from healthledger.node.peer_directory import PeerDirectory
from healthledger.node.seam import attach
from healthledger.node.traffic import TrafficClient, create_client_folder
from healthledger.ordering.orderer import OrderingError

CLIENT_DIR = "traffic"
LOCK_FILE = "traffic.lock"
HEAD_TIMEOUT_S = 60.0
"""How long the command waits for every peer to reach the client's head."""
IDLE_PAUSE_S = 0.5
"""Pause after a live round that committed nothing."""


def missing_for(app: App, orgs: Sequence[str]) -> list[str]:
    """What a network of ``orgs`` lacks for ``app``'s simulator, in words."""
    kinds = {p.id: p.kind for p in DEMO_ORGS}
    gaps = [org for org in app.simulator_orgs if org not in orgs]
    present = {kinds.get(o) for o in orgs}
    return gaps + [f"a {kind}" for kind in app.simulator_kinds if kind not in present]


@dataclass
class AppOutcome:
    """What one application's traffic did."""

    name: str
    status: str
    """``ran``, ``skipped`` (its organisations are not in the network) or ``stopped``
    (a call could not be endorsed or ordered: ``reason`` says why)."""
    counts: dict[str, int] = field(default_factory=dict)
    reason: str = ""
    live_rounds: int = 0

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "name": self.name,
            "status": self.status,
            "counts": self.counts,
            "reason": self.reason,
            "live_rounds": self.live_rounds,
        }


@dataclass
class TrafficReport:
    """What a traffic run committed and where every peer ended."""

    codes: dict[str, int] = field(default_factory=dict)
    """Transactions committed during the run, by validation code (as every peer judged
    them: the client validates each block as they do)."""
    blocks: int = 0
    platform: AppOutcome = field(default_factory=lambda: AppOutcome("platform", "ran"))
    apps: list[AppOutcome] = field(default_factory=list)
    height: int = 0
    head_hash: str = ""
    peers: dict[str, dict[str, Any]] = field(default_factory=dict)
    common_head: bool = False
    """Every peer's head is the client's head (same height, same block hash)."""
    holds_client_head: bool = False
    """Every peer holds the client's head block (some may have gone further, when
    another client wrote meanwhile)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "codes": self.codes,
            "blocks": self.blocks,
            "platform": self.platform.to_json(),
            "apps": [a.to_json() for a in self.apps],
            "height": self.height,
            "head_hash": self.head_hash,
            "peers": self.peers,
            "common_head": self.common_head,
            "holds_client_head": self.holds_client_head,
        }


def traffic(
    root: Path,
    *,
    seconds: float | None = None,
    rounds: int | None = None,
    seed: int | None = None,
    say: Callable[[str], None] = print,
) -> TrafficReport:
    """Run the demo traffic over the network in ``root`` (see the module docstring)."""
    if seconds is not None and seconds < 0:
        raise NetworkError("--seconds must be 0 or more", 2)
    if rounds is not None and rounds < 0:
        raise NetworkError("--rounds must be 0 or more", 2)
    root = root.absolute()
    network = Network.load(root)
    urls = _running_peers(root, network)
    with _lock(root):
        client = _open_client(root, network, urls)
        try:
            try:
                client.start(retry=False)
            except (OrderingError, NodeError) as exc:
                raise NetworkError(f"cannot follow the network's ordering stream: {exc}") from exc
            return _run(client, network, urls, seconds, rounds, random.Random(seed), say)
        finally:
            client.stop()


def _running_peers(root: Path, network: Network) -> dict[str, str]:
    """Each organisation's peer URL, if every peer runs and takes writes."""
    urls = {}
    for peer in network.peers:
        url = f"http://127.0.0.1:{peer.port}"
        if not alive(peer.pid, str(root)):
            raise NetworkError(
                f"the network in {root} is not running (the peer of {peer.org} is down); "
                f"start it with 'healthledger network up --data {root}'"
            )
        try:
            answer = http_json(f"{url}/api/v1/status", timeout=10.0)
        except (OSError, ValueError) as exc:
            raise NetworkError(f"the peer of {peer.org} ({url}) does not answer: {exc}") from exc
        if not answer.get("accepting_writes"):
            raise NetworkError(f"the peer of {peer.org} ({url}) is not taking writes yet")
        urls[peer.org] = url
    return urls


@contextmanager
def _lock(root: Path) -> Iterator[None]:
    """Hold the network's traffic lock: one traffic client at a time."""
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NetworkError(f"another 'network traffic' is running on {root}") from None
        yield
    finally:
        os.close(fd)


def _open_client(root: Path, network: Network, urls: Mapping[str, str]) -> TrafficClient:
    folder = root / CLIENT_DIR
    peers = root / "peers"
    contracts = installed_contracts()
    try:
        if not (folder / NODE_FILE).exists():
            create_client_folder(
                folder,
                genesis_file=peers / GENESIS_FILE,
                org_folders=[peers / org for org in network.orgs],
                contracts=contracts,
            )
        return TrafficClient(
            folder,
            contracts=contracts,
            servers=network.servers,
            directory=PeerDirectory(dict(urls)),
        )
    except (OSError, ValueError, KeyError, LedgerError, CryptoError, sqlite3.Error) as exc:
        raise NetworkError(
            f"{folder} holds an unreadable traffic client ({type(exc).__name__}: {exc}); "
            "remove that folder to start the client afresh from the network",
            2,
        ) from exc


def _run(
    client: TrafficClient,
    network: Network,
    urls: Mapping[str, str],
    seconds: float | None,
    rounds: int | None,
    rng: random.Random,
    say: Callable[[str], None],
) -> TrafficReport:
    report = TrafficReport()
    client.catch_up(max(_peer_heights(urls).values(), default=0))
    start = client.peer.store.height()
    say(f"traffic client following the stream at height {start}")
    try:
        summary = simulate_platform(client, rng)
    except (NodeError, ContractError) as exc:
        report.platform = AppOutcome("platform", "stopped", reason=str(exc))
    else:
        report.platform.counts = {
            "registered": len(summary.registered),
            "revoked": len(summary.revoked),
        }
    say(_describe(report.platform))
    live: list[tuple[AppOutcome, App]] = []
    for app in INSTALLED_APPS:
        outcome = _simulate(client, app, network.orgs, rng)
        report.apps.append(outcome)
        say(_describe(outcome))
        if outcome.status == "ran" and app.live_step is not None:
            live.append((outcome, app))
    live_rounds(client, live, seconds, rounds, rng, say)
    report.height = client.peer.store.height()
    report.head_hash = client.peer.store.header(report.height - 1).hash
    for height in range(start, report.height):
        for code in client.peer.block(height).codes:
            report.codes[str(code)] = report.codes.get(str(code), 0) + 1
    report.blocks = report.height - start
    report.peers = _await_head(urls, report.height, report.head_hash)
    report.holds_client_head = all(p["holds_client_head"] for p in report.peers.values())
    report.common_head = report.holds_client_head and all(
        p["height"] == report.height for p in report.peers.values()
    )
    return report


def _simulate(
    client: TrafficClient, app: App, orgs: Sequence[str], rng: random.Random
) -> AppOutcome:
    """Run ``app``'s simulator if its organisations are in the network."""
    if app.simulate is None:
        return AppOutcome(app.name, "skipped", reason="it has no simulator")
    gaps = missing_for(app, orgs)
    if gaps:
        return AppOutcome(
            app.name,
            "skipped",
            reason=f"it needs {', '.join(gaps)}, not in this network of {len(orgs)} "
            "organisations (network up --orgs)",
        )
    try:
        seam = attach(client, app)
        if app.prepare_network is not None:
            app.prepare_network(seam, orgs)
        counts = app.simulate(seam, rng)
    except (NodeError, ContractError) as exc:
        return AppOutcome(app.name, "stopped", reason=str(exc))
    return AppOutcome(app.name, "ran", counts=dict(counts))


def live_rounds(
    client: TrafficClient,
    live: Sequence[tuple[AppOutcome, App]],
    seconds: float | None,
    rounds: int | None,
    rng: random.Random,
    say: Callable[[str], None],
) -> int:
    """Live rounds of every application that ran, until ``rounds`` are done or
    ``seconds`` have passed (none if neither is given) or every application stopped;
    returns how many rounds ran."""
    if not live or (seconds is None and rounds is None):
        return 0
    ends = None if seconds is None else time.monotonic() + seconds
    done = 0
    while (rounds is None or done < rounds) and (ends is None or time.monotonic() < ends):
        running = [(o, a, a.live_step) for o, a in live if o.status == "ran" and a.live_step]
        if not running:
            break
        committed = 0
        for outcome, app, step in running:
            try:
                counts = step(attach(client, app), rng)
            except (NodeError, ContractError) as exc:
                outcome.status, outcome.reason = "stopped", f"live round {done + 1}: {exc}"
                say(_describe(outcome))
                continue
            outcome.live_rounds += 1
            for what, n in counts.items():
                outcome.counts[f"live {what}"] = outcome.counts.get(f"live {what}", 0) + n
                committed += n
        done += 1
        if not committed:
            # Nothing to do this round (e.g. no case under way): do not spin.
            pause = IDLE_PAUSE_S if ends is None else min(IDLE_PAUSE_S, ends - time.monotonic())
            time.sleep(max(0.0, pause))
    say(f"live rounds: {done}")
    for outcome, _ in live:
        if outcome.status == "ran":
            say(_describe(outcome))
    return done


def _peer_heights(urls: Mapping[str, str]) -> dict[str, int]:
    heights = {}
    for org, url in urls.items():
        try:
            heights[org] = int(http_json(f"{url}/api/v1/status", timeout=10.0)["height"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return heights


def _await_head(urls: Mapping[str, str], height: int, head_hash: str) -> dict[str, dict[str, Any]]:
    """Every peer's height and head hash once each has committed ``height`` blocks (or
    what it reports when the wait times out), and whether it holds the client's head
    block ``head_hash`` at ``height - 1`` (``holds_client_head``)."""
    deadline = time.monotonic() + HEAD_TIMEOUT_S
    peers: dict[str, dict[str, Any]] = {}
    while True:
        for org, url in urls.items():
            try:
                answer = http_json(f"{url}/api/v1/status", timeout=10.0)
                peers[org] = {"height": int(answer["height"]), "block_hash": answer["head_hash"]}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                peers[org] = {"height": None, "block_hash": None, "error": str(exc)}
        if all((p["height"] or 0) >= height for p in peers.values()):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for org, peer in peers.items():
        at = peer["block_hash"] if peer["height"] == height else None
        if (peer["height"] or 0) > height:
            # Another client wrote since: compare the block at the client's head.
            try:
                at = http_json(f"{urls[org]}/api/v1/blocks/{height - 1}", timeout=10.0)["hash"]
            except (OSError, ValueError, KeyError, TypeError):
                at = None
        peer["holds_client_head"] = at == head_hash
    return peers


def _describe(outcome: AppOutcome) -> str:
    counts = ", ".join(f"{n} {what}" for what, n in outcome.counts.items())
    if outcome.status == "ran":
        return f"{outcome.name}: {counts or 'nothing to do'}"
    done = f" (after {counts})" if counts else ""
    return f"{outcome.name}: {outcome.status}{done}: {outcome.reason}"


def summary_lines(report: TrafficReport) -> list[str]:
    """The closing summary: transactions by validation code, heights per peer."""
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


def network_traffic(
    data: Path = typer.Option(..., "--data", help="Folder of a running network."),
    seconds: float | None = typer.Option(
        None, "--seconds", help="Keep live rounds going for this many seconds."
    ),
    rounds: int | None = typer.Option(None, "--rounds", help="Live rounds to run."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the simulated traffic."),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as one JSON line."),
) -> None:
    """Run the demo's simulated traffic over the running network: the platform's, then
    each application's whose organisations are in it, then live rounds; every write is
    endorsed by the organisations' own peers."""
    out = Console(highlight=False, soft_wrap=True, stderr=json_output)
    try:
        report = traffic(data, seconds=seconds, rounds=rounds, seed=seed, say=out.print)
    except NetworkError as exc:
        _fail(str(exc), exc.code)
    except (NodeError, ContractError, LedgerError, OrderingError) as exc:
        _fail(str(exc), 1)
    if json_output:
        print(json.dumps(report.to_json()))
    else:
        for line in summary_lines(report):
            out.print(line)
    if not report.holds_client_head:
        raise typer.Exit(1)


def _fail(message: str, code: int) -> NoReturn:
    line = " ".join(message.split()) or "failed"
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        Text(f"error: {line}", style="bold red")
    )
    raise typer.Exit(code)
