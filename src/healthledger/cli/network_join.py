"""``healthledger network join``: start a peer of an organisation from a snapshot served
by an existing peer (ARCHITECTURE.md section 5).

The joining organisation's keys are in the new peer folder (``--keystore`` copies
them there). A new organisation is admitted on chain first (``healthledger network
admit``), which registers its first peer. Otherwise, if its peer identity is not
registered on the ledger yet and the folder holds the organisation's admin key, the
command first registers it (``membership.register_identity``, signed by that admin,
through the existing peer). Then it fetches a snapshot that includes the block that
registered the peer, verifies everything in it (see ``node.snapshot_install``),
installs it and copies the existing peer's directory.

Into a network made by ``healthledger network up`` (the folder is ``DIR/peers/ORG``),
the peer is recorded in ``DIR/network.json``, every peer's directory names it, and it
is started in the background as ``up`` starts the others (``--no-start``: recorded
only), so ``network status`` lists it and ``network down`` stops it; the NATS URLs and
the genesis default to the network's. Elsewhere the peer is started by hand with
``healthledger node --data DIR --jetstream URLS`` and follows the ordering stream from
the snapshot's position.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.text import Text

from healthledger.cli.network import (
    NETWORK_FILE,
    Network,
    NetworkError,
    PeerProcess,
    alive,
    port_free,
    start_peers,
)
from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.errors import CryptoError
from healthledger.errors import HealthledgerError
from healthledger.ledger.errors import LedgerError
from healthledger.node.consortium_peer import GENESIS_FILE
from healthledger.node.embedded import KEYSTORE_FILE, NODE_FILE, DataDirError
from healthledger.node.errors import NodeError
from healthledger.node.keystore import Keystore
from healthledger.node.peer_directory import (
    DIRECTORY_FILE,
    DirectoryError,
    PeerDirectory,
    write_directories,
)
from healthledger.node.peer_tls import peer_client
from healthledger.node.snapshot import SnapshotError
from healthledger.node.snapshot_install import fetch_snapshot, install_snapshot, stream_check
from healthledger.ordering.nats_cluster import free_port
from healthledger.ordering.solo import wall_clock_ms

EXIT_FAILED = 1
EXIT_UNUSABLE = 2


class JoinError(HealthledgerError):
    """A failure to report as one line, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


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
) -> None:
    """Join the consortium from a verified snapshot of an existing peer."""
    out = Console(highlight=False, soft_wrap=True)
    try:
        servers = [u.strip() for u in jetstream.split(",") if u.strip()]
        root = _network_root(data)
        peer = None
        if root is not None:
            if data.absolute().name != org:
                raise JoinError(
                    f"{data} is in the network's peers folder but not named {org}: "
                    f"join into {root / 'peers' / org}",
                    EXIT_UNUSABLE,
                )
            peer = _joining_peer(root, org, port)
            servers = servers or Network.load(root).servers
            if genesis is None and (root / "peers" / GENESIS_FILE).is_file():
                genesis = root / "peers" / GENESIS_FILE
        elif port is not None:
            raise JoinError(
                "--port applies only to a peer folder of a network (DIR/peers/ORG of "
                "'healthledger network up')",
                EXIT_UNUSABLE,
            )
        height, position = _join(
            org, source.rstrip("/"), data, keystore, genesis, servers, timeout, say=out.print
        )
        if root is None or peer is None:
            out.print(
                f"joined: {data} holds the ledger up to block {height}; it follows the "
                f"ordering stream from position {position + 1} once started with "
                f"'healthledger node --data {data} --jetstream <NATS URLs>'"
            )
            return
        network = _record_joined_peer(root, peer)
        out.print(
            f"joined: {data} holds the ledger up to block {height}; recorded in "
            f"{root / NETWORK_FILE}"
        )
        if no_start:
            out.print(
                f"start it with 'healthledger node --data {data} --port {peer.port} "
                f"--jetstream {','.join(network.servers)} --checkpoint-every "
                f"{network.checkpoint_every}'"
            )
            return
        # Started as ``network up`` starts the others, waiting until it takes writes.
        start_peers(root, network, [peer], timeout=60.0, say=out.print, rebind=port is None)
        out.print(
            f"the peer of {org} runs in the background; 'healthledger network down "
            f"--data {root}' stops it with the rest"
        )
    except (JoinError, NetworkError) as exc:
        _fail(str(exc), exc.code)
    except (DataDirError, DirectoryError, OSError, ValueError) as exc:
        _fail(str(exc), EXIT_UNUSABLE)
    except (SnapshotError, NodeError, LedgerError, CryptoError) as exc:
        _fail(str(exc), EXIT_FAILED)


# --- into a network made by ``network up`` ---------------------------------------


def _network_root(peer_folder: Path) -> Path | None:
    """The network folder DIR when ``peer_folder`` is ``DIR/peers/<org>`` of a network
    made by ``network up``; None otherwise."""
    folder = peer_folder.absolute()
    root = folder.parent.parent
    if folder.parent.name != "peers" or not (root / NETWORK_FILE).is_file():
        return None
    return root


def _joining_peer(root: Path, org: str, port: int | None) -> PeerProcess:
    """The record the peer of ``org`` joining the network in ``root`` is to take,
    checked before it joins: that organisation's recorded one if it had a peer here
    before (whose process must have stopped), else a new one; on ``port`` if given,
    else on its recorded port or a free one."""
    network = Network.load(root)
    recorded = next((p for p in network.peers if p.org == org), None)
    if recorded is not None and alive(recorded.pid, str(root)):
        raise NetworkError(
            f"the peer of {org} recorded in {root / NETWORK_FILE} still runs "
            f"(process {recorded.pid}); stop it first"
        )
    taken = {p for n in network.nats for p in (n.client, n.cluster, n.monitor)}
    taken |= {p.port for p in network.peers if p.org != org}
    if port is None and recorded is not None:
        port = recorded.port
    if port is None:
        port = free_port(avoid=taken)
    if not 1 <= port <= 65535:
        raise NetworkError(f"port {port} is out of range", EXIT_UNUSABLE)
    if port in taken or not port_free(port):
        raise NetworkError(f"port {port} is already in use; choose another --port", EXIT_UNUSABLE)
    return PeerProcess(org, port, joined=recorded.joined if recorded else True)


def _record_joined_peer(root: Path, peer: PeerProcess) -> Network:
    """Record ``peer`` in ``network.json`` (in place of its organisation's earlier peer,
    if any) and give every peer folder the directory that names it."""
    network = Network.load(root)
    network.peers = [p for p in network.peers if p.org != peer.org] + [peer]
    if peer.org not in network.orgs:
        network.orgs.append(peer.org)
    network.save(root)
    # The other peers' gateways read the directory afresh each time they use it.
    write_directories(root / "peers", network.urls)
    return network


def _fail(message: str, code: int) -> NoReturn:
    line = " ".join(message.split()) or "failed"
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        Text(f"error: {line}", style="bold red")
    )
    raise typer.Exit(code)


def _join(
    org: str,
    source: str,
    data: Path,
    keystore_file: Path | None,
    genesis_file: Path | None,
    servers: list[str],
    timeout: float,
    *,
    say: Any,
) -> tuple[int, int]:
    if (data / NODE_FILE).exists():
        raise JoinError(f"{data} already holds a ledger", EXIT_UNUSABLE)
    data.mkdir(parents=True, exist_ok=True)
    if keystore_file is not None:
        held = data / KEYSTORE_FILE
        if held.exists() and held.read_bytes() != keystore_file.read_bytes():
            raise JoinError(f"{data} already holds another keystore", EXIT_UNUSABLE)
        shutil.copyfile(keystore_file, held)
    if not (data / KEYSTORE_FILE).is_file():
        raise JoinError(f"{data} holds no keystore of {org}: give --keystore", EXIT_UNUSABLE)
    keys = Keystore.load(data / KEYSTORE_FILE)
    genesis = None if genesis_file is None else genesis_file.read_bytes()
    with peer_client(timeout=30.0) as client:
        admitted_at = _admit(client, source, org, keys, say=say)
        with fetch_snapshot(source, min_height=admitted_at, timeout_s=timeout, say=say) as snapshot:
            manifest = install_snapshot(
                snapshot,
                data_dir=data,
                org=org,
                genesis=genesis,
                position_check=stream_check(servers) if servers else None,
            )
        if not servers:
            say("the stream position was not checked against the stream (no --jetstream)")
        try:
            answer = client.get(f"{source}/api/v1/network/peers")
            answer.raise_for_status()
            PeerDirectory.from_json(answer.json()).save(data / DIRECTORY_FILE)
        except (httpx.HTTPError, ValueError) as exc:
            say(f"no peer directory copied from {source} ({exc}); write {DIRECTORY_FILE} by hand")
    return manifest.height, manifest.stream_position


def _admit(client: httpx.Client, source: str, org: str, keys: Keystore, *, say: Any) -> int:
    """Register the keystore's peer identity through ``source`` if it is not yet (its
    organisation must be a member); the height of the block that registered it."""
    peers = [e for e in keys.entries() if e.cert.role == "peer" and e.cert.org == org]
    if not peers:
        raise JoinError(f"the keystore holds no peer identity of {org}", EXIT_UNUSABLE)
    peer = peers[0]
    try:
        answer = client.get(f"{source}/api/v1/consortium/identities", params={"org": org})
        answer.raise_for_status()
        registered = {str(r.get("id")) for r in answer.json() if isinstance(r, dict)}
    except (httpx.HTTPError, ValueError) as exc:
        raise JoinError(f"cannot read the membership of {org} from {source}: {exc}") from exc
    if peer.id in registered:
        return _registered_in(client, source, peer.id, say=say)
    try:
        answer = client.get(f"{source}/api/v1/consortium/organisations")
        answer.raise_for_status()
        members = {str(r.get("id")) for r in answer.json() if isinstance(r, dict)}
    except (httpx.HTTPError, ValueError) as exc:
        raise JoinError(f"cannot read the organisations from {source}: {exc}") from exc
    if org not in members:
        raise JoinError(
            f"{org} is not a member of the consortium: have it admitted first "
            "(membership.propose_organisation; on this machine 'healthledger network admit')"
        )
    admin = keys.get(f"{org}/admin")
    if admin is None:
        raise JoinError(
            f"{peer.id} is not registered on the ledger and the keystore holds no "
            f"{org}/admin key to register it"
        )
    signed = keys.propose(
        admin.id,
        "membership",
        "register_identity",
        {"cert": peer.cert.pem},
        timestamp=wall_clock_ms(),
    )
    try:
        answer = client.post(
            f"{source}/api/v1/invoke",
            content=canonical_json(signed.to_json()),
            headers={"Content-Type": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise JoinError(f"cannot register {peer.id} through {source}: {exc}") from exc
    if answer.status_code != 200:
        raise JoinError(f"{source} refused to register {peer.id}: {_detail(answer)}")
    height = int(answer.json()["receipt"]["height"])
    say(f"registered {peer.id} on the ledger in block {height}")
    return height


def _registered_in(client: httpx.Client, source: str, identity: str, *, say: Any) -> int:
    """The height of the block that last wrote ``identity``'s membership record (its
    registration, or its organisation's admission), so the snapshot includes it; 0 if
    ``source`` does not tell (the snapshot's own check then decides)."""
    try:
        answer = client.get(
            f"{source}/api/v1/state/membership/identity/{identity}/history", params={"limit": 1}
        )
        answer.raise_for_status()
        return int(answer.json()["history"][0]["version"][0])
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        say(f"cannot read when {identity} was registered from {source} ({exc})")
        return 0


def _detail(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return f"HTTP {answer.status_code}"
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])
    return f"HTTP {answer.status_code}"
