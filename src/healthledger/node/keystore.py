"""Identity keys held by a node: its peers' endorsement keys and, in the demo, every
demo identity's key (demo custody: the server signs for whoever logs in).

The keystore is a JSON file under the data folder, written durably with mode 0600
(``ledger.durable``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthledger.crypto.certs import Certificate, load_certificate
from healthledger.crypto.keys import SigningKey
from healthledger.ledger.durable import write_durably
from healthledger.ledger.transaction import Proposal, SignedProposal, transient_digest


@dataclass(frozen=True)
class KeyEntry:
    """One identity's certificate and private key."""

    id: str
    cert: Certificate
    key: SigningKey


@dataclass(frozen=True)
class CaEntry:
    """An organisation's CA certificate and key (demo custody: lets the demo issue
    certificates for new staff of any organisation)."""

    org: str
    cert_pem: str
    key: SigningKey


class Keystore:
    """Identity keys by id, each organisation's vault key material and, in the demo,
    each organisation's CA key."""

    def __init__(
        self,
        entries: dict[str, KeyEntry],
        vault_keys: dict[str, dict[str, str]],
        *,
        cas: dict[str, CaEntry] | None = None,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._entries = entries
        self.vault_keys = vault_keys
        self.cas = {} if cas is None else cas
        self._random = random

    @classmethod
    def load(cls, path: Path) -> Keystore:
        """Read a keystore file."""
        data = json.loads(path.read_text())
        entries = {}
        for item in data["identities"]:
            cert = load_certificate(item["cert"])
            entries[item["id"]] = KeyEntry(
                item["id"], cert, SigningKey.from_pem(item["key"].encode())
            )
        cas = {
            item["org"]: CaEntry(
                item["org"], item["cert"], SigningKey.from_pem(item["key"].encode())
            )
            for item in data.get("cas", [])
        }
        return cls(entries, data.get("vault_keys", {}), cas=cas)

    def save(self, path: Path) -> None:
        """Write the keystore durably, readable by the owner only."""
        data: dict[str, Any] = {
            "identities": [
                {"id": e.id, "cert": e.cert.pem, "key": e.key.to_pem().decode("ascii")}
                for e in self._entries.values()
            ],
            "vault_keys": self.vault_keys,
            "cas": [
                {"org": c.org, "cert": c.cert_pem, "key": c.key.to_pem().decode("ascii")}
                for c in self.cas.values()
            ],
        }
        write_durably(path, json.dumps(data, indent=1).encode("utf-8"), mode=0o600)

    def add(self, entry: KeyEntry) -> None:
        """Hold a new identity's key."""
        self._entries[entry.id] = entry

    def get(self, identity_id: str) -> KeyEntry | None:
        """The entry of ``identity_id``."""
        return self._entries.get(identity_id)

    def ids(self) -> list[str]:
        """Every identity held."""
        return sorted(self._entries)

    def entries(self) -> list[KeyEntry]:
        """Every entry held."""
        return [self._entries[i] for i in self.ids()]

    def peers(self) -> list[tuple[str, SigningKey]]:
        """Endorsing identities (role ``peer``) and their keys."""
        return [(e.id, e.key) for e in self.entries() if e.cert.role == "peer"]

    def propose(
        self,
        identity_id: str,
        contract: str,
        function: str,
        args: dict[str, Any],
        *,
        timestamp: int,
        transient: Mapping[str, Any] | None = None,
    ) -> SignedProposal:
        """A proposal signed by ``identity_id`` with a fresh nonce; ``transient`` (already
        salted, see with_salt) is bound by its hash."""
        entry = self._entries.get(identity_id)
        if entry is None:
            raise KeyError(f"no key held for {identity_id}")
        proposal = Proposal(
            contract=contract,
            function=function,
            args=args,
            creator=identity_id,
            nonce=self._random(16).hex(),
            timestamp=timestamp,
            transient_hash=None if transient is None else transient_digest(transient),
        )
        return SignedProposal.sign(proposal, entry.key)

    def with_salt(self, transient: Mapping[str, Any]) -> dict[str, Any]:
        """``transient`` plus a random salt, so its hash on chain cannot be guessed."""
        return {**transient, "_salt": self._random(16).hex()}
