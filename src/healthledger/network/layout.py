"""A network folder and what ``network.json`` records of it.

Layout of the network folder DIR::

    DIR/network.json        organisations, ports and process ids
    DIR/nats/n1..n3/        each NATS server's configuration, store and log
    DIR/peers/genesis.json  the consortium's genesis transaction
    DIR/peers/<org>/        one peer's data folder (that organisation's keys only)
    DIR/logs/<org>.log      one peer's output
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from healthledger.ledger.durable import write_durably
from healthledger.network.errors import UNUSABLE, NetworkError
from healthledger.node.defaults import DEFAULT_CHECKPOINT_EVERY

NETWORK_FILE = "network.json"
REQUEST_FILE = "admission.json"
"""A new organisation's admission request, in its folder (``peers/ORG``)."""
HOST = "127.0.0.1"


@dataclass
class NatsProcess:
    """One NATS server of the network."""

    name: str
    client: int
    cluster: int
    monitor: int
    pid: int | None = None

    @property
    def url(self) -> str:
        """Its client URL."""
        return f"nats://{HOST}:{self.client}"

    @property
    def monitor_url(self) -> str:
        """Base URL of its HTTP monitor."""
        return f"http://{HOST}:{self.monitor}"


@dataclass
class PeerProcess:
    """One organisation's peer process."""

    org: str
    port: int
    pid: int | None = None
    joined: bool = False
    """Brought in with ``network join`` rather than founded by ``network up``."""

    @property
    def url(self) -> str:
        """Base URL of its API."""
        return f"http://{HOST}:{self.port}"


@dataclass
class Network:
    """What ``network.json`` records."""

    orgs: list[str]
    nats: list[NatsProcess]
    peers: list[PeerProcess]
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    format: int = 1

    @property
    def servers(self) -> list[str]:
        """Client URLs of the NATS servers."""
        return [n.url for n in self.nats]

    @property
    def ports(self) -> set[int]:
        """Every port the network's servers and peers listen on."""
        return {p for n in self.nats for p in (n.client, n.cluster, n.monitor)} | {
            p.port for p in self.peers
        }

    @property
    def urls(self) -> dict[str, str]:
        """Base URL of each organisation's peer."""
        return {p.org: p.url for p in self.peers}

    def save(self, root: Path) -> None:
        """Write ``network.json`` durably (see ``ledger.durable``)."""
        write_durably(root / NETWORK_FILE, json.dumps(asdict(self), indent=1).encode("utf-8"))

    @classmethod
    def load(cls, root: Path) -> Network:
        """Read ``network.json`` of ``root``; NetworkError if there is none."""
        if not root.exists():
            raise NetworkError(f"{root} does not exist", UNUSABLE)
        if not root.is_dir():
            raise NetworkError(f"{root} is not a folder", UNUSABLE)
        path = root / NETWORK_FILE
        if not path.is_file():
            raise NetworkError(f"{root} holds no network (no {NETWORK_FILE})", UNUSABLE)
        try:
            data = json.loads(path.read_text())
            return cls(
                orgs=list(data["orgs"]),
                nats=[NatsProcess(**n) for n in data["nats"]],
                peers=[PeerProcess(**p) for p in data["peers"]],
                checkpoint_every=int(data.get("checkpoint_every", DEFAULT_CHECKPOINT_EVERY)),
                format=int(data.get("format", 1)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise NetworkError(f"{path} is not readable: {exc}", UNUSABLE) from exc


def network_root(peer_folder: Path) -> Path | None:
    """The network folder DIR when ``peer_folder`` is ``DIR/peers/<org>`` of a network
    made by ``network up``; None otherwise."""
    folder = peer_folder.absolute()
    root = folder.parent.parent
    if folder.parent.name != "peers" or not (root / NETWORK_FILE).is_file():
        return None
    return root


def peer_ledger(root: Path, org: str) -> Path | str | None:
    """Where the ledger of ``org``'s peer in the network folder ``root`` is: its
    ``ledger.sqlite`` or the PostgreSQL database its ``node.json`` names; None while the
    folder holds no ledger."""
    # Imported here: the command line reads this module for its constants alone.
    from healthledger.node.parts import NODE_FILE, DataDirError, node_info, store_location

    folder = root / "peers" / org
    if not (folder / NODE_FILE).is_file():
        return None
    try:
        location = store_location(folder, node_info(folder))
    except (DataDirError, ValueError):
        return None
    if isinstance(location, Path) and not location.is_file():
        return None
    return location
