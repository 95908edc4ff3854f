"""Joining: start a peer of an organisation from a snapshot served by an existing peer
(ARCHITECTURE.md section 5).

The joining organisation's keys are in the new peer folder (``keystore`` copies them
there). A new organisation is admitted on chain first (:mod:`.admit`), which registers
its first peer. Otherwise, if its peer identity is not registered on the ledger yet and
the folder holds the organisation's admin key, the join first registers it
(``membership.register_identity``, signed by that admin, through the existing peer).
Then it fetches a snapshot that includes the block that registered the peer, verifies
everything in it (see ``node.snapshot_install``), installs it and copies the existing
peer's directory.

Into a network folder (``DIR/peers/ORG`` of a network brought up by
:class:`~.supervisor.Supervisor`) the peer is recorded in ``DIR/network.json``, every
peer's directory names it, and it is started in the background as the founders are
(unless ``start`` is False); the NATS URLs and the genesis default to the network's.
Elsewhere the peer is started by hand and follows the ordering stream from the
snapshot's position. With ``store`` the ledger goes into an empty PostgreSQL database
instead of the folder's ``ledger.sqlite``, and the peer starts on it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from healthledger.client.read_auth import SignedReads
from healthledger.ledger.store import is_postgres_location
from healthledger.network.client import NetworkClient
from healthledger.network.errors import UNUSABLE, NetworkError, ProblemAnswer
from healthledger.network.layout import NETWORK_FILE, Network, PeerProcess, network_root
from healthledger.network.processes import Processes, port_free
from healthledger.network.stores import check_url
from healthledger.network.supervisor import Supervisor
from healthledger.node.consortium_peer import GENESIS_FILE
from healthledger.node.embedded import KEYSTORE_FILE, NODE_FILE
from healthledger.node.keystore import Keystore
from healthledger.node.peer_directory import DIRECTORY_FILE, write_directories
from healthledger.node.snapshot_install import (
    check_store,
    fetch_snapshot,
    install_snapshot,
    stream_check,
)
from healthledger.ordering.nats_cluster import free_port
from healthledger.ordering.solo import wall_clock_ms

START_TIMEOUT_S = 60.0
"""How long a joined peer of a network folder may take to serve and take writes."""

Say = Callable[[str], None]


@dataclass(frozen=True)
class Joined:
    """Where a joined peer stands."""

    height: int
    """Blocks of the installed snapshot."""
    stream_position: int
    """The ordering stream position it resumes after."""
    network: Network | None = None
    """The network folder's record, when it joined one."""
    peer: PeerProcess | None = None
    """Its record in that network."""
    started: bool = False
    """Started in the background (into a network folder, unless asked not to)."""


def join(
    *,
    org: str,
    source: str,
    data: Path,
    keystore: Path | None = None,
    genesis: Path | None = None,
    servers: Sequence[str] = (),
    timeout: float = 120.0,
    port: int | None = None,
    start: bool = True,
    store: str | None = None,
    say: Say,
) -> Joined:
    """Join ``org``'s peer in folder ``data`` from the peer at ``source`` (see the
    module docstring); ``timeout``: seconds to wait for a snapshot vouched for by a
    majority; ``store``: the URL of an empty PostgreSQL database the ledger goes in
    instead of the folder's ``ledger.sqlite`` (no password in it: :mod:`.stores`)."""
    servers = list(servers)
    if store is not None:
        if not is_postgres_location(store):
            raise NetworkError(f"--store {store!r} is not a postgresql:// URL", UNUSABLE)
        check_url(store)
    root = network_root(data)
    peer = None
    if root is not None:
        if data.absolute().name != org:
            raise NetworkError(
                f"{data} is in the network's peers folder but not named {org}: "
                f"join into {root / 'peers' / org}",
                UNUSABLE,
            )
        peer = _joining_peer(root, org, port)
        servers = servers or Network.load(root).servers
        if genesis is None and (root / "peers" / GENESIS_FILE).is_file():
            genesis = root / "peers" / GENESIS_FILE
    elif port is not None:
        raise NetworkError(
            "--port applies only to a peer folder of a network (DIR/peers/ORG of "
            "'healthledger network up')",
            UNUSABLE,
        )
    height, position = _install(
        org, source.rstrip("/"), data, keystore, genesis, servers, timeout, store, say=say
    )
    if root is None or peer is None:
        return Joined(height, position)
    network = _record_joined_peer(root, peer)
    say(f"joined: {data} holds the ledger up to block {height}; recorded in {root / NETWORK_FILE}")
    if not start:
        return Joined(height, position, network, peer)
    # Started as the founders are, waiting until it takes writes.
    Supervisor(root, say=say).start_peers(
        network, [peer], timeout=START_TIMEOUT_S, rebind=port is None
    )
    return Joined(height, position, network, peer, started=True)


def _joining_peer(root: Path, org: str, port: int | None) -> PeerProcess:
    """The record the peer of ``org`` joining the network in ``root`` is to take,
    checked before it joins: that organisation's recorded one if it had a peer here
    before (whose process must have stopped), else a new one; on ``port`` if given,
    else on its recorded port or a free one."""
    network = Network.load(root)
    recorded = next((p for p in network.peers if p.org == org), None)
    if recorded is not None and Processes(str(root)).alive(recorded.pid):
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
        raise NetworkError(f"port {port} is out of range", UNUSABLE)
    if port in taken or not port_free(port):
        raise NetworkError(f"port {port} is already in use; choose another --port", UNUSABLE)
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


def _install(
    org: str,
    source: str,
    data: Path,
    keystore_file: Path | None,
    genesis_file: Path | None,
    servers: list[str],
    timeout: float,
    store: str | None,
    *,
    say: Say,
) -> tuple[int, int]:
    """Register the peer if need be, install a verified snapshot that includes its
    registration (into the PostgreSQL database ``store`` if given), and copy the
    source's peer directory; the snapshot's height and stream position."""
    if (data / NODE_FILE).exists():
        raise NetworkError(f"{data} already holds a ledger", UNUSABLE)
    if store is not None:
        check_store(store)  # before anything is registered or fetched
    data.mkdir(parents=True, exist_ok=True)
    if keystore_file is not None:
        held = data / KEYSTORE_FILE
        if held.exists() and held.read_bytes() != keystore_file.read_bytes():
            raise NetworkError(f"{data} already holds another keystore", UNUSABLE)
        shutil.copyfile(keystore_file, held)
    if not (data / KEYSTORE_FILE).is_file():
        raise NetworkError(f"{data} holds no keystore of {org}: give --keystore", UNUSABLE)
    keys = Keystore.load(data / KEYSTORE_FILE)
    genesis = None if genesis_file is None else genesis_file.read_bytes()
    reads = _member_reads(keys, org)
    with NetworkClient(timeout=30.0, reads=reads) as client:
        admitted_at = _register(client, source, org, keys, say=say)
        with fetch_snapshot(
            source, min_height=admitted_at, timeout_s=timeout, say=say, reads=reads
        ) as snapshot:
            manifest = install_snapshot(
                snapshot,
                data_dir=data,
                org=org,
                genesis=genesis,
                position_check=stream_check(servers) if servers else None,
                store=store,
            )
        if not servers:
            say("the stream position was not checked against the stream (no --jetstream)")
        try:
            client.directory(source).save(data / DIRECTORY_FILE)
        except NetworkError as exc:
            say(f"no peer directory copied from {source} ({exc}); write {DIRECTORY_FILE} by hand")
    return manifest.height, manifest.stream_position


def _member_reads(keys: Keystore, org: str) -> SignedReads:
    """Signed reads as the organisation's admin (registered when the organisation was
    admitted), else its peer: membership, key history and snapshots are members' reads."""
    own = sorted(
        (e for e in keys.entries() if e.cert.org == org),
        key=lambda e: (e.id != f"{org}/admin", e.cert.role != "peer", e.id),
    )
    if not own:
        raise NetworkError(f"the keystore holds no identity of {org}", UNUSABLE)
    return SignedReads.of(own[0])


def _register(client: NetworkClient, source: str, org: str, keys: Keystore, *, say: Say) -> int:
    """Register the keystore's peer identity through ``source`` if it is not yet (its
    organisation must be a member); the height of the block that registered it."""
    peers = [e for e in keys.entries() if e.cert.role == "peer" and e.cert.org == org]
    if not peers:
        raise NetworkError(f"the keystore holds no peer identity of {org}", UNUSABLE)
    peer = peers[0]
    # The organisations are public; its identities are members' reads, signed by its
    # admin, who is registered only once the organisation is admitted: ask in that order.
    try:
        members = {str(r.get("id")) for r in client.organisations(source)}
    except NetworkError as exc:
        raise NetworkError(f"cannot read the organisations from {source}: {exc}") from exc
    if org not in members:
        raise NetworkError(
            f"{org} is not a member of the consortium: have it admitted first "
            "(membership.propose_organisation; on this machine 'healthledger network admit')"
        )
    try:
        registered = {str(r.get("id")) for r in client.identities(source, org)}
    except NetworkError as exc:
        raise NetworkError(f"cannot read the membership of {org} from {source}: {exc}") from exc
    if peer.id in registered:
        return _registered_in(client, source, peer.id, say=say)
    admin = keys.get(f"{org}/admin")
    if admin is None:
        raise NetworkError(
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
        committed = client.invoke(source, signed)
    except ProblemAnswer as exc:
        raise NetworkError(f"{source} refused to register {peer.id}: {exc.detail}") from exc
    except NetworkError as exc:
        raise NetworkError(f"cannot register {peer.id} through {source}: {exc}") from exc
    say(f"registered {peer.id} on the ledger in block {committed.height}")
    return committed.height


def _registered_in(client: NetworkClient, source: str, identity: str, *, say: Say) -> int:
    """The height of the block that last wrote ``identity``'s membership record (its
    registration, or its organisation's admission), so the snapshot includes it; 0 if
    ``source`` does not tell (the snapshot's own check then decides)."""
    try:
        history = client.key_history(source, "membership", f"identity/{identity}", limit=1)
        return int(history[0]["version"][0])
    except (NetworkError, ValueError, KeyError, IndexError, TypeError) as exc:
        say(f"cannot read when {identity} was registered from {source} ({exc})")
        return 0
