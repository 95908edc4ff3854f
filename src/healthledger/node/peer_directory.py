"""The peer directory: where each organisation's peer serves its API (organisation →
base URL), read by the gateway to ask other organisations' peers for endorsements.
`healthledger network up` writes it into every organisation's folder; in a real
deployment each operator keeps it (operator guide section 8.1)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthledger.ledger.durable import write_durably
from healthledger.node.errors import NodeUnavailable

DIRECTORY_FILE = "directory.json"


class DirectoryError(NodeUnavailable):
    """The peer directory is malformed: the gateway cannot reach other peers."""


@dataclass(frozen=True)
class PeerDirectory:
    """Where each organisation's peer serves its API: organisation → base URL."""

    peers: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"format": 1, "peers": dict(sorted(self.peers.items()))}

    @classmethod
    def from_json(cls, data: Any) -> PeerDirectory:
        """Parse the JSON form; DirectoryError naming what is wrong."""
        peers = data.get("peers") if isinstance(data, Mapping) else None
        if not isinstance(peers, Mapping):
            raise DirectoryError("a peer directory is an object with a 'peers' object")
        for org, url in peers.items():
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise DirectoryError(f"the peer directory's URL of {org} is not an http(s) URL")
        return cls({str(org): str(url).rstrip("/") for org, url in peers.items()})

    @classmethod
    def load(cls, path: Path) -> PeerDirectory:
        """The directory in ``path``; an empty one if there is no such file."""
        if not path.is_file():
            return cls({})
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise DirectoryError(f"{path} is not a readable peer directory: {exc}") from exc

    def save(self, path: Path) -> None:
        """Write the directory to ``path`` durably (see ``ledger.durable``)."""
        write_durably(path, json.dumps(self.to_json(), indent=1).encode("utf-8"))


def write_directories(peers_root: Path, urls: Mapping[str, str]) -> None:
    """Write the same peer directory into every organisation's folder under
    ``peers_root`` (``peers_root/<org>/directory.json``)."""
    directory = PeerDirectory(dict(urls))
    for org in urls:
        folder = peers_root / org
        if folder.is_dir():
            directory.save(folder / DIRECTORY_FILE)
