"""The status of a network: each peer's height, head, lag, checkpoints and state, each
NATS server's health, and whether the peers' signed checkpoints agree. A plain JSON
report (what ``network status --json`` prints); showing it is the CLI's."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from healthledger.ledger.errors import LedgerError
from healthledger.ledger.store import open_store
from healthledger.network.client import NetworkClient
from healthledger.network.errors import NetworkError, PeerUnreachable
from healthledger.network.layout import Network, PeerProcess, peer_ledger
from healthledger.network.processes import Processes
from healthledger.node.checkpoint import (
    Checkpoint,
    CheckpointError,
    compare,
    origin_of,
    read_notes,
    verify_peer_note,
)
from healthledger.node.embedded import CHECKPOINT_DIR
from healthledger.node.parts import shown_location

STATUS_TIMEOUT_S = 2.0
"""How long status waits for each peer's answer."""


def trouble(report: Mapping[str, Any]) -> str | None:
    """One line naming the peers that are not ok and the NATS servers that are down, or
    None when the whole network is well."""
    peers = [f"{p['org']} {p['state']}" for p in report["peers"] if p["state"] != "ok"]
    servers = [f"nats {s['name']} down" for s in report["nats"] if not s["healthy"]]
    if not peers and not servers:
        return None
    total = len(report["peers"])
    return f"{len(peers)} of {total} peers not ok: " + ", ".join([*peers, *servers])


def _peer_item(client: NetworkClient, processes: Processes, peer: PeerProcess) -> dict[str, Any]:
    """What one peer says of itself, as an item of the report."""
    item: dict[str, Any] = {
        "org": peer.org,
        "url": f"{peer.url}/",
        "pid": peer.pid if processes.alive(peer.pid) else None,
        "height": None,
        "block_hash": None,
        "lag": None,
        "healthy": False,
    }
    try:
        answer = client.status(peer.url)
    except PeerUnreachable as exc:
        item["error"] = exc.reason
        return item
    except NetworkError as exc:
        item["error"] = str(exc)
        return item
    live = answer.checkpoints
    item.update(
        height=answer.height,
        block_hash=answer.head_hash,
        log_size=answer.log_size,
        log_root=answer.log_root,
        accepting_writes=answer.accepting_writes,
        # Reachable, ordering, delivering and serving (not forked or tampered).
        healthy=answer.healthy,
        checkpoint_state=live.get("state"),
        serving=bool(live.get("serving", True)),
        refusal=live.get("reason"),
        delivery_stuck=bool(answer.delivery.get("stuck", False)),
        rejected_notes=int(live.get("rejected_count", 0)),
    )
    return item


CHECKPOINTS_COMPARED = 50
"""Status compares each peer's most recent this many checkpoints."""


def status(root: Path, *, timeout: float = STATUS_TIMEOUT_S) -> dict[str, Any]:
    """Each peer's height, head hash, lag and health, and each NATS server's health."""
    root = root.absolute()
    network = Network.load(root)
    processes = Processes(str(root))
    with NetworkClient(timeout=timeout) as client:
        peers = [_peer_item(client, processes, peer) for peer in network.peers]
        nats = [
            {
                "name": server.name,
                "url": server.url,
                "pid": server.pid if processes.alive(server.pid) else None,
                "healthy": client.nats_healthy(server.monitor_url),
            }
            for server in network.nats
        ]
    heights = [p["height"] for p in peers if p["height"] is not None]
    top = max(heights, default=0)
    for item in peers:
        if item["height"] is not None:
            item["lag"] = top - item["height"]
    hashes = {p["block_hash"] for p in peers if p["healthy"]}
    common = all(p["healthy"] for p in peers) and len(hashes) == 1 and top > 0
    checkpoints = _checkpoints(root, network)
    minority = {org for d in checkpoints["divergences"] for org in d["minority"]}
    for item in peers:
        item["checkpoint"] = checkpoints["latest"].get(item["org"])
        # Named by the notes on disk, or by the peer's own live comparison.
        item["diverged"] = item["org"] in minority or item.get("checkpoint_state") in {
            "minority",
            "tampered",
        }
        item["state"] = peer_state(item, in_minority=item["org"] in minority)
    del checkpoints["latest"]
    checkpoints["peer_states"] = {
        p["org"]: p["checkpoint_state"] for p in peers if p.get("checkpoint_state")
    }
    if any(state != "ok" for state in checkpoints["peer_states"].values()):
        checkpoints["alarm"] = True
    return {
        "network": str(root),
        "peers": peers,
        "nats": nats,
        "common_head": common,
        "checkpoints": checkpoints,
    }


PEER_STATES = (
    "ok",
    "down",
    "tampered",
    "minority",
    "diverged",
    "stuck",
    "no-ordering",
    "unhealthy",
)
"""What :func:`status` says of a peer, most serious first after ``ok``: unreachable; a
stored block failed its self-check; a majority signed other checkpoints (both stop
serving); its checkpoints disagree with another's; ordered transactions wait and its
stream position does not move; it cannot reach the ordering cluster; it reports itself
unhealthy for another reason."""


def peer_state(item: Mapping[str, Any], *, in_minority: bool) -> str:
    """One of PEER_STATES for a peer's status ``item``; ``in_minority``: the notes on
    disk put it in the minority of a divergence."""
    if item["height"] is None:
        return "down"
    live = item.get("checkpoint_state")
    if live in {"tampered", "minority"}:
        return str(live)
    if in_minority or live == "diverged":
        return "diverged"
    if item.get("delivery_stuck"):
        return "stuck"
    if not item.get("accepting_writes"):
        return "no-ordering"
    return "ok" if item["healthy"] else "unhealthy"


def _checkpoints(root: Path, network: Network) -> dict[str, Any]:
    """Every peer's recent signed checkpoints, verified against the consortium's
    membership and compared: an alarm if any disagree or fail verification."""
    report: dict[str, Any] = {
        "every": network.checkpoint_every,
        "latest": {},
        "divergences": [],
        "invalid": {},
        "alarm": False,
    }
    ledgers = (peer_ledger(root, p.org) for p in network.peers)
    reference = next((location for location in ledgers if location is not None), None)
    if reference is None:
        return report
    try:
        store = open_store(reference)
    except LedgerError as exc:
        report["invalid"]["*"] = [f"cannot open {shown_location(reference)}: {exc}"]
        report["alarm"] = True
        return report
    try:
        origin = origin_of(store.header(0))
        verified: dict[str, dict[int, Checkpoint]] = {}
        for peer in network.peers:
            notes = read_notes(root / "peers" / peer.org / CHECKPOINT_DIR)
            good: dict[int, Checkpoint] = {}
            for height in sorted(notes)[-CHECKPOINTS_COMPARED:]:
                try:
                    good[height] = verify_peer_note(
                        notes[height], org=peer.org, state=store, origin=origin
                    )
                except CheckpointError as exc:
                    report["invalid"].setdefault(peer.org, []).append(f"{height}: {exc}")
            verified[peer.org] = good
            if good:
                last = good[max(good)]
                report["latest"][peer.org] = {"height": last.height, "block_hash": last.block_hash}
    finally:
        store.close()
    report["divergences"] = [d.to_json() for d in compare(verified)]
    report["alarm"] = bool(report["divergences"] or report["invalid"])
    return report
