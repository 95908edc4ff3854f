"""The demo's simulated traffic over a running consortium network.

A traffic client (:mod:`healthledger.node.traffic`) follows the ordering stream as a
read-only replica in ``DIR/traffic/`` and holds the user identities of every
organisation folder under ``DIR/peers/`` (demo custody: the local network's root
holds them all); every write it makes is endorsed by the organisations' own peers
and ordered through JetStream. It runs the platform's traffic (the demo's staff
registrations, contract upgrade and deliberate revocation), then each given
application's simulator whose organisations are in the network, then live rounds
(the application's ``live_step``) for a number of rounds and/or seconds, and waits
until every peer holds the client's head.

The applications are passed in (this layer sits below ``apps``): anything with the
attributes of :class:`SimulatedApp`.
"""

from __future__ import annotations

import fcntl
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from healthledger.client.read_auth import SignedReads
from healthledger.contracts.contract import Contract
from healthledger.contracts.errors import ContractError
from healthledger.crypto.errors import CryptoError
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.demo.traffic import platform_traffic_size, simulate_platform
from healthledger.ledger.errors import LedgerError
from healthledger.network.client import NetworkClient
from healthledger.network.errors import UNUSABLE, NetworkError
from healthledger.network.layout import Network
from healthledger.network.processes import Processes
from healthledger.node.consortium_peer import GENESIS_FILE
from healthledger.node.embedded import NODE_FILE
from healthledger.node.errors import NodeError
from healthledger.node.peer_directory import PeerDirectory
from healthledger.node.seam import AppNode, attach
from healthledger.node.traffic import TrafficClient, create_client_folder
from healthledger.ordering.orderer import OrderingError

Say = Callable[[str], None]
Stage = Callable[[str, int, int | None], None]
"""Told ``(stage, done, total)`` as the run goes (total None: not known)."""
Step = Callable[[AppNode, random.Random], Mapping[str, int]]


class SimulatedApp(Protocol):
    """What traffic needs of an application (``healthledger.apps.App`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def namespaces(self) -> tuple[str, ...]: ...
    @property
    def simulate(self) -> Step | None: ...
    @property
    def live_step(self) -> Step | None: ...
    @property
    def simulator_orgs(self) -> Sequence[str]: ...
    @property
    def simulator_kinds(self) -> Sequence[str]: ...
    @property
    def prepare_network(self) -> Callable[[AppNode, Sequence[str]], None] | None: ...


def _no_stage(_stage: str, _done: int, _total: int | None) -> None:
    pass


CLIENT_DIR = "traffic"
LOCK_FILE = "traffic.lock"
STATUS_TIMEOUT_S = 10.0
"""How long the client waits for each answer of a peer."""
HEAD_TIMEOUT_S = 60.0
"""How long the command waits for every peer to reach the client's head."""
IDLE_PAUSE_S = 0.5
"""Pause after a live round that committed nothing."""


def missing_for(app: SimulatedApp, orgs: Sequence[str]) -> list[str]:
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
    apps: Sequence[SimulatedApp],
    contracts: Sequence[type[Contract]],
    say: Say,
    stage: Stage = _no_stage,
) -> TrafficReport:
    """Run the demo traffic of the platform and ``apps`` over the network in ``root``
    (see the module docstring); ``contracts``: those the network's genesis deploys."""
    if seconds is not None and seconds < 0:
        raise NetworkError("--seconds must be 0 or more", UNUSABLE)
    if rounds is not None and rounds < 0:
        raise NetworkError("--rounds must be 0 or more", UNUSABLE)
    root = root.absolute()
    network = Network.load(root)
    with NetworkClient(timeout=STATUS_TIMEOUT_S) as http:
        urls = _running_peers(http, root, network)
        with _lock(root):
            client = _open_client(root, network, urls, contracts)
            readers = sorted(client.keystore.entries(), key=lambda e: e.cert.role != "admin")
            if readers:  # the peers' blocks are members' reads
                http.sign_reads(SignedReads.of(readers[0]))
            try:
                try:
                    client.start(retry=False)
                except (OrderingError, NodeError) as exc:
                    raise NetworkError(
                        f"cannot follow the network's ordering stream: {exc}"
                    ) from exc
                run = _Run(client, http, network, urls, random.Random(seed), say, stage)
                return run.all(apps, seconds, rounds)
            finally:
                client.stop()


def _running_peers(http: NetworkClient, root: Path, network: Network) -> dict[str, str]:
    """Each organisation's peer URL, if every peer runs and takes writes."""
    urls = {}
    processes = Processes(str(root))
    for peer in network.peers:
        url = peer.url
        if not processes.alive(peer.pid):
            raise NetworkError(
                f"the network in {root} is not running (the peer of {peer.org} is down); "
                f"start it with 'healthledger network up --data {root}'"
            )
        try:
            answer = http.status(url)
        except NetworkError as exc:
            raise NetworkError(f"the peer of {peer.org} ({url}) does not answer: {exc}") from exc
        if not answer.accepting_writes:
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


def _open_client(
    root: Path, network: Network, urls: Mapping[str, str], contracts: Sequence[type[Contract]]
) -> TrafficClient:
    folder = root / CLIENT_DIR
    peers = root / "peers"
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
            UNUSABLE,
        ) from exc


class _Run:
    """One traffic run of the client over the network."""

    def __init__(
        self,
        client: TrafficClient,
        http: NetworkClient,
        network: Network,
        urls: Mapping[str, str],
        rng: random.Random,
        say: Say,
        stage: Stage,
    ) -> None:
        self.client, self.http, self.network, self.urls = client, http, network, urls
        self.rng, self.say, self.stage = rng, say, stage

    def all(
        self, apps: Sequence[SimulatedApp], seconds: float | None, rounds: int | None
    ) -> TrafficReport:
        """The platform's traffic, each application's, live rounds, then the peers' heads."""
        client, rng, say = self.client, self.rng, self.say
        report = TrafficReport()
        self.stage("catching up with the peers", 0, None)
        client.catch_up(max(_peer_heights(self.http, self.urls).values(), default=0))
        start = client.peer.store.height()
        say(f"traffic client following the stream at height {start}")
        report.platform = self.platform()
        say(_describe(report.platform))
        live: list[tuple[AppOutcome, SimulatedApp]] = []
        for app in apps:
            self.stage(f"{app.name} traffic", 0, None)
            outcome = _simulate(client, app, self.network.orgs, rng)
            report.apps.append(outcome)
            say(_describe(outcome))
            if outcome.status == "ran" and app.live_step is not None:
                live.append((outcome, app))
        live_rounds(client, live, seconds, rounds, rng, say, stage=self.stage)
        report.height = client.peer.store.height()
        report.head_hash = client.peer.store.header(report.height - 1).hash
        for height in range(start, report.height):
            for code in client.peer.block(height).codes:
                report.codes[str(code)] = report.codes.get(str(code), 0) + 1
        report.blocks = report.height - start
        self.stage("waiting for every peer to reach the head", 0, None)
        report.peers = _await_head(self.http, self.urls, report.height, report.head_hash)
        report.holds_client_head = all(p["holds_client_head"] for p in report.peers.values())
        report.common_head = report.holds_client_head and all(
            p["height"] == report.height for p in report.peers.values()
        )
        return report

    def platform(self) -> AppOutcome:
        """The platform's own traffic (``healthledger.demo.traffic``)."""
        total = platform_traffic_size(self.client)
        done = 0

        def tick(_label: str) -> None:
            nonlocal done
            done += 1
            self.stage("platform traffic", done, total)

        self.stage("platform traffic", 0, total)
        try:
            summary = simulate_platform(self.client, self.rng, advance=tick)
        except (NodeError, ContractError) as exc:
            return AppOutcome("platform", "stopped", reason=str(exc))
        counts = {"registered": len(summary.registered), "revoked": len(summary.revoked)}
        return AppOutcome("platform", "ran", counts=counts)


def _simulate(
    client: TrafficClient, app: SimulatedApp, orgs: Sequence[str], rng: random.Random
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
    live: Sequence[tuple[AppOutcome, SimulatedApp]],
    seconds: float | None,
    rounds: int | None,
    rng: random.Random,
    say: Say,
    *,
    stage: Stage = _no_stage,
) -> int:
    """Live rounds of every application that ran, until ``rounds`` are done or
    ``seconds`` have passed (none if neither is given) or every application stopped;
    returns how many rounds ran. ``stage`` is told the rounds done (of ``rounds``), or
    the whole seconds passed (of ``seconds``) when only a time is given."""
    if not live or (seconds is None and rounds is None):
        return 0
    began = time.monotonic()
    ends = None if seconds is None else began + seconds

    def tell(done: int) -> None:
        if rounds is not None or seconds is None:
            stage("live rounds", done, rounds)
        else:
            stage(
                "live rounds (seconds)", int(min(seconds, time.monotonic() - began)), int(seconds)
            )

    done = 0
    tell(done)
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
        tell(done)
        if not committed:
            # Nothing to do this round (e.g. no case under way): do not spin.
            pause = IDLE_PAUSE_S if ends is None else min(IDLE_PAUSE_S, ends - time.monotonic())
            time.sleep(max(0.0, pause))
    say(f"live rounds: {done}")
    for outcome, _ in live:
        if outcome.status == "ran":
            say(_describe(outcome))
    return done


def _peer_heights(http: NetworkClient, urls: Mapping[str, str]) -> dict[str, int]:
    heights = {}
    for org, url in urls.items():
        try:
            heights[org] = http.status(url).height
        except NetworkError:
            continue
    return heights


def _await_head(
    http: NetworkClient, urls: Mapping[str, str], height: int, head_hash: str
) -> dict[str, dict[str, Any]]:
    """Every peer's height and head hash once each has committed ``height`` blocks (or
    what it reports when the wait times out), and whether it holds the client's head
    block ``head_hash`` at ``height - 1`` (``holds_client_head``)."""
    deadline = time.monotonic() + HEAD_TIMEOUT_S
    peers: dict[str, dict[str, Any]] = {}
    while True:
        for org, url in urls.items():
            try:
                answer = http.status(url)
                peers[org] = {"height": answer.height, "block_hash": answer.head_hash}
            except NetworkError as exc:
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
                at = http.block_hash(urls[org], height - 1)
            except NetworkError:
                at = None
        peer["holds_client_head"] = at == head_hash
    return peers


def _describe(outcome: AppOutcome) -> str:
    counts = ", ".join(f"{n} {what}" for what, n in outcome.counts.items())
    if outcome.status == "ran":
        return f"{outcome.name}: {counts or 'nothing to do'}"
    done = f" (after {counts})" if counts else ""
    return f"{outcome.name}: {outcome.status}{done}: {outcome.reason}"
