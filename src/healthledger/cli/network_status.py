"""``healthledger network status``: each peer's height, head, lag, checkpoints and
state, each NATS server's health, and whether the peers' signed checkpoints agree."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from healthledger.cli.network import Network, alive, http_json
from healthledger.ledger.errors import LedgerError
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.node.checkpoint import (
    Checkpoint,
    CheckpointError,
    compare,
    origin_of,
    read_notes,
    verify_peer_note,
)
from healthledger.node.embedded import CHECKPOINT_DIR, LEDGER_FILE

CHECKPOINTS_COMPARED = 50
"""Status compares each peer's most recent this many checkpoints."""


def trouble(report: dict[str, Any]) -> str | None:
    """One line naming the peers that are not ok and the NATS servers that are down, or
    None when the whole network is well."""
    peers = [f"{p['org']} {p['state']}" for p in report["peers"] if p["state"] != "ok"]
    servers = [f"nats {s['name']} down" for s in report["nats"] if not s["healthy"]]
    if not peers and not servers:
        return None
    total = len(report["peers"])
    return f"{len(peers)} of {total} peers not ok: " + ", ".join([*peers, *servers])


def status(root: Path) -> dict[str, Any]:
    """Each peer's height, head hash, lag and health, and each NATS server's health."""
    root = root.absolute()
    network = Network.load(root)
    peers: list[dict[str, Any]] = []
    for peer in network.peers:
        item: dict[str, Any] = {
            "org": peer.org,
            "url": f"http://127.0.0.1:{peer.port}/",
            "pid": peer.pid if alive(peer.pid, str(root)) else None,
            "height": None,
            "block_hash": None,
            "lag": None,
            "healthy": False,
        }
        try:
            answer = http_json(f"http://127.0.0.1:{peer.port}/api/v1/status")
        except (OSError, ValueError) as exc:
            item["error"] = str(getattr(exc, "reason", exc))
        else:
            live = answer.get("checkpoints") or {}
            delivery = answer.get("delivery") or {}
            item.update(
                height=int(answer["height"]),
                block_hash=answer.get("head_hash"),
                log_size=answer.get("log_size"),
                log_root=answer.get("log_root"),
                accepting_writes=bool(answer.get("accepting_writes")),
                # Reachable, ordering, delivering and serving (not forked or tampered).
                healthy=bool(answer.get("healthy", True)),
                checkpoint_state=live.get("state"),
                serving=bool(live.get("serving", True)),
                refusal=live.get("reason"),
                delivery_stuck=bool(delivery.get("stuck", False)),
                rejected_notes=int(live.get("rejected_count", 0)),
            )
        peers.append(item)
    heights = [p["height"] for p in peers if p["height"] is not None]
    top = max(heights, default=0)
    for item in peers:
        if item["height"] is not None:
            item["lag"] = top - item["height"]
    nats = []
    for server in network.nats:
        try:
            health = http_json(f"http://127.0.0.1:{server.monitor}/healthz")
            healthy = health.get("status") == "ok"
        except (OSError, ValueError):
            healthy = False
        nats.append(
            {
                "name": server.name,
                "url": f"nats://127.0.0.1:{server.client}",
                "pid": server.pid if alive(server.pid, str(root)) else None,
                "healthy": healthy,
            }
        )
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
"""What ``status`` says of a peer, most serious first after ``ok``: unreachable; a
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
    ledgers = [root / "peers" / p.org / LEDGER_FILE for p in network.peers]
    reference = next((path for path in ledgers if path.is_file()), None)
    if reference is None:
        return report
    try:
        store = SqliteStore(reference)
    except LedgerError as exc:
        report["invalid"]["*"] = [f"cannot open {reference}: {exc}"]
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
"""How the status table shows each of ``PEER_STATES``."""


def print_status(report: Mapping[str, Any], out: Console) -> None:
    """The status ``report`` as a table, then the head and any checkpoint alarm."""
    table = Table(title=f"network {report['network']}")
    for column in ("org", "url", "height", "head block", "lag", "checkpoint", "state"):
        table.add_column(column)
    for peer in report["peers"]:
        checkpoint = peer["checkpoint"]
        table.add_row(
            peer["org"],
            peer["url"],
            str(peer["height"] if peer["height"] is not None else "-"),
            (peer["block_hash"] or "-")[:16],
            str(peer["lag"] if peer["lag"] is not None else "-"),
            "-" if checkpoint is None else f"{checkpoint['height']}",
            _PEER_STATE_CELLS.get(peer["state"], peer["state"]),
        )
    for server in report["nats"]:
        table.add_row(
            f"nats {server['name']}",
            server["url"],
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
            + ", ".join(f"{o} {h[:16]}" for o, h in divergence["views"].items())
        )
    for org, problems in checkpoints["invalid"].items():
        out.print(f"[bold red]ALARM[/bold red] {org}: invalid checkpoint {problems[0]}")
