"""Consortium peers: one data folder per organisation, each holding only that
organisation's keys, all sharing one genesis block (ARCHITECTURE.md section 5).

A consortium peer is an ``EmbeddedNode`` assembled on a folder whose keystore holds
one organisation's identities, CA and vault key, so it endorses only under that
organisation's peer identity; it orders through a shared orderer (JetStream) and
resumes the stream right after the position recorded with its last block.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from healthledger.contracts.contract import Contract
from healthledger.node.consortium import FOUNDER, OrgPlan, create_consortium
from healthledger.node.embedded import KEYSTORE_FILE, NODE_FILE, DataDirError, EmbeddedNode
from healthledger.node.keystore import Keystore
from healthledger.ordering.jetstream import JetStreamOrderer
from healthledger.ordering.orderer import Orderer
from healthledger.ordering.solo import wall_clock_ms

CONSORTIUM_MODE = "consortium"
GENESIS_FILE = "genesis.json"
STREAM = "HL_TX"
SUBJECT_PREFIX = "hl"
DEFAULT_CHECKPOINT_EVERY = 10
"""A consortium peer signs a checkpoint every this many blocks."""


def org_keystore(keystore: Keystore, org: str) -> Keystore:
    """The part of ``keystore`` that belongs to ``org``: its identities, CA and vault key."""
    entries = {e.id: e for e in keystore.entries() if e.cert.org == org}
    vault_keys = {o: k for o, k in keystore.vault_keys.items() if o == org}
    cas = {o: c for o, c in keystore.cas.items() if o == org}
    return Keystore(entries, vault_keys, cas=cas)


def found_consortium(
    root: Path,
    *,
    plans: Sequence[OrgPlan],
    contracts: Sequence[type[Contract]],
    clock: Callable[[], int] = wall_clock_ms,
    founder: str = FOUNDER,
) -> dict[str, Path]:
    """Make one genesis for ``plans`` and one peer folder per organisation under
    ``root`` (``root/<org>``), each with that organisation's keys only and the same
    genesis block committed; returns the folders by organisation."""
    now = clock()
    consortium = create_consortium(plans=plans, contracts=contracts, now_ms=now, founder=founder)
    root.mkdir(parents=True, exist_ok=True)
    (root / GENESIS_FILE).write_bytes(consortium.genesis.canonical)
    folders = {}
    for plan in plans:
        folder = root / plan.id
        if (folder / NODE_FILE).exists():
            raise DataDirError(f"{folder} already holds a ledger")
        folder.mkdir(parents=True, exist_ok=True)
        org_keystore(consortium.keystore, plan.id).save(folder / KEYSTORE_FILE)
        (folder / NODE_FILE).write_text(
            json.dumps(
                {
                    "format": 1,
                    "mode": CONSORTIUM_MODE,
                    "org": plan.id,
                    "organisations": [o.id for o in consortium.organisations],
                },
                indent=1,
            )
        )
        node = EmbeddedNode(folder, contracts=contracts, clock=clock)
        try:
            node.peer.bootstrap(consortium.genesis, timestamp=now)
        finally:
            node.stop()
        folders[plan.id] = folder
    return folders


def peer_org(data_dir: Path) -> str | None:
    """The organisation a consortium peer folder belongs to; None for an embedded one."""
    info = json.loads((Path(data_dir) / NODE_FILE).read_text())
    if info.get("mode") != CONSORTIUM_MODE:
        return None
    return str(info["org"])


def jetstream_ordering(
    servers: Sequence[str],
    *,
    name: str | None = None,
    stream: str = STREAM,
    subject_prefix: str = SUBJECT_PREFIX,
    max_block_tx: int = 500,
    batch_timeout_s: float = 0.05,
    connect_timeout_s: float = 5.0,
) -> Callable[[int], Orderer]:
    """Makes the consortium's JetStream orderer for a peer, resuming at a position."""

    def make(start_seq: int) -> Orderer:
        return JetStreamOrderer(
            servers=servers,
            stream=stream,
            subject_prefix=subject_prefix,
            start_seq=start_seq,
            name=name,
            max_block_tx=max_block_tx,
            batch_timeout_s=batch_timeout_s,
            connect_timeout_s=connect_timeout_s,
        )

    return make


def open_consortium_peer(
    data_dir: Path,
    *,
    contracts: Sequence[type[Contract]],
    servers: Sequence[str],
    clock: Callable[[], int] = wall_clock_ms,
    max_block_tx: int = 500,
    batch_timeout_s: float = 0.05,
    connect_timeout_s: float = 5.0,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
) -> EmbeddedNode:
    """The peer of a consortium folder ordering through JetStream at ``servers``, not
    started; its ``start()`` does not fail when NATS is unreachable (it serves queries
    and keeps trying to connect)."""
    org = peer_org(data_dir)
    if org is None:
        raise DataDirError(f"{data_dir} is not a consortium peer folder")
    return EmbeddedNode(
        data_dir,
        contracts=contracts,
        clock=clock,
        checkpoint_every=checkpoint_every,
        resume_orderer=jetstream_ordering(
            servers,
            name=f"peer-{org}",
            max_block_tx=max_block_tx,
            batch_timeout_s=batch_timeout_s,
            connect_timeout_s=connect_timeout_s,
        ),
    )
