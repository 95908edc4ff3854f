"""Consortium peers: one data folder per organisation, each holding only that
organisation's keys, all sharing one genesis block (ARCHITECTURE.md section 5).

A consortium peer is made of the same parts as the embedded node
(:class:`~healthledger.node.parts.NodeParts`), on a folder whose keystore holds one
organisation's identities, CA and vault key, so it endorses only under that
organisation's peer identity; it orders through a shared orderer (JetStream), resumes
the stream right after the position recorded with its last block, and adds the
checkpoint signer, exchange and guard.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from healthledger.contracts.contract import Contract
from healthledger.ledger.transaction import SignedProposal
from healthledger.node.checkpoint import (
    Checkpoint,
    CheckpointError,
    origin_of,
    read_notes,
    verify_peer_note,
)
from healthledger.node.checkpoint_exchange import (
    CHECKPOINT_STREAM,
    CHECKPOINT_SUBJECT_PREFIX,
    CHECKPOINTS_PER_ORG,
    STREAM,
    STUCK_AFTER_S,
    SUBJECT_PREFIX,
    CheckpointExchange,
    CheckpointSigner,
    DeliveryWatch,
)
from healthledger.node.checkpoint_guard import CheckpointGuard, CheckpointState
from healthledger.node.consortium import OrgPlan, create_consortium
from healthledger.node.defaults import DEFAULT_CHECKPOINT_EVERY
from healthledger.node.keystore import Keystore
from healthledger.node.parts import (
    CHECKPOINT_DIR,
    KEYSTORE_FILE,
    NODE_FILE,
    STORE_KEY,
    DataDirError,
    NodeParts,
)
from healthledger.node.peer import Receipt
from healthledger.node.selfcheck import ChainSelfCheck
from healthledger.ordering.jetstream import JetStreamOrderer
from healthledger.ordering.orderer import Orderer
from healthledger.ordering.solo import wall_clock_ms

log = logging.getLogger(__name__)

CONSORTIUM_MODE = "consortium"
GENESIS_FILE = "genesis.json"


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
    founder: str | None = None,
    stores: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Make one genesis for ``plans`` and one peer folder per organisation under
    ``root`` (``root/<org>``), each with that organisation's keys only and the same
    genesis block committed; returns the folders by organisation. ``stores`` puts an
    organisation's ledger in the PostgreSQL database its URL names (an empty one)
    instead of its folder's ``ledger.sqlite``."""
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
                    **({STORE_KEY: stores[plan.id]} if stores and plan.id in stores else {}),
                },
                indent=1,
            )
        )
        parts = NodeParts(folder, contracts=contracts, clock=clock)
        try:
            parts.peer.bootstrap(consortium.genesis, timestamp=now)
        finally:
            parts.close()
        folders[plan.id] = folder
    return folders


def peer_org(data_dir: Path) -> str | None:
    """The organisation a consortium peer folder belongs to; None for an embedded one."""
    info = json.loads((Path(data_dir) / NODE_FILE).read_text())
    if info.get("mode") != CONSORTIUM_MODE:
        return None
    return str(info["org"])


PACKED_TX = 100
"""Transactions one stream message carries at most: a peer under load packs those
waiting to be published (``ordering.packing``), one fsync per message on each server."""
MESSAGES_IN_FLIGHT = 8
"""Stream messages a peer has awaiting their acks at once; a transaction that finds
fewer goes out at once, alone."""


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
            max_message_tx=PACKED_TX,
            max_in_flight=MESSAGES_IN_FLIGHT,
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
    stream: str = STREAM,
    subject_prefix: str = SUBJECT_PREFIX,
    checkpoint_stream: str = "",
    stuck_after_s: float = 0.0,
    store: str | None = None,
) -> ConsortiumNode:
    """The peer of a consortium folder ordering through JetStream at ``servers``, not
    started; its ``start()`` does not fail when NATS is unreachable (it serves queries
    and keeps trying to connect). It exchanges signed checkpoints over
    ``checkpoint_stream`` (default ``HL_CKPT``, or ``<stream>_CKPT`` for another
    ordering stream than the consortium's); ``store`` is the PostgreSQL URL of its
    ledger if node.json does not name it (``NodeParts``)."""
    org = peer_org(data_dir)
    if org is None:
        raise DataDirError(f"{data_dir} is not a consortium peer folder")
    if not checkpoint_stream:
        checkpoint_stream = CHECKPOINT_STREAM if stream == STREAM else f"{stream}_CKPT"
    return ConsortiumNode(
        data_dir,
        contracts=contracts,
        servers=servers,
        org=org,
        clock=clock,
        checkpoint_every=checkpoint_every,
        resume_orderer=jetstream_ordering(
            servers,
            name=f"peer-{org}",
            stream=stream,
            subject_prefix=subject_prefix,
            max_block_tx=max_block_tx,
            batch_timeout_s=batch_timeout_s,
            connect_timeout_s=connect_timeout_s,
        ),
        checkpoint_stream=checkpoint_stream,
        checkpoint_subject_prefix=f"{subject_prefix}.ckpt",
        tx_stream=stream,
        tx_subject=f"{subject_prefix}.tx",
        stuck_after_s=stuck_after_s or STUCK_AFTER_S,
        store_url=store,
    )


class ConsortiumNode:
    """A consortium peer: a node's parts on JetStream ordering, with a signer that
    signs a checkpoint every K blocks after re-deriving its chain, an exchange of
    checkpoints with the other organisations over NATS, and a guard that compares
    them and stops serving (``refusal``) when its chain is forked or a stored block is
    tampered."""

    def __init__(
        self,
        data_dir: Path,
        *,
        contracts: Sequence[type[Contract]],
        servers: Sequence[str],
        org: str,
        clock: Callable[[], int],
        resume_orderer: Callable[[int], Orderer],
        checkpoint_every: int,
        checkpoint_stream: str = CHECKPOINT_STREAM,
        checkpoint_subject_prefix: str = CHECKPOINT_SUBJECT_PREFIX,
        tx_stream: str = STREAM,
        tx_subject: str = f"{SUBJECT_PREFIX}.tx",
        replicas: int = 3,
        stuck_after_s: float = STUCK_AFTER_S,
        store_url: str | None = None,
    ) -> None:
        self.parts = NodeParts(
            data_dir,
            contracts=contracts,
            clock=clock,
            resume_orderer=resume_orderer,
            checkpoint_every=checkpoint_every,
            store=store_url,
        )
        parts = self.parts
        self.data_dir, self.mode, self.keystore, self.clock = (
            parts.data_dir,
            parts.mode,
            parts.keystore,
            parts.clock,
        )
        self.peer = parts.peer
        self.app_objects, self.app_objects_lock = parts.app_objects, parts.app_objects_lock
        self.org = org
        info = parts.info
        store = self.peer.store
        self.origin = origin_of(store.header(0))
        metrics = self.peer.metrics
        self.guard = CheckpointGuard(
            org=org,
            orgs=[str(o) for o in info.get("organisations", [org])],
            state=store,
            origin=self.origin,
            on_reject=lambda r: metrics.checkpoint_rejected.labels(r.reason).inc(),
        )
        self.exchange = CheckpointExchange(
            servers=servers,
            org=org,
            on_note=self._received,
            stream=checkpoint_stream,
            subject_prefix=checkpoint_subject_prefix,
            replicas=replicas,
            tx_stream=tx_stream,
            tx_subject=tx_subject,
            on_poll=self._polled,
        )
        self.delivery = DeliveryWatch(stuck_after_s=stuck_after_s)
        self.delivery_stuck = False
        self.checkpoint_every = checkpoint_every
        [(name, key)] = self.keystore.peers()[:1]
        self.signer = CheckpointSigner(
            self.data_dir / CHECKPOINT_DIR,
            every=checkpoint_every,
            name=name,
            key=key,
            self_check=ChainSelfCheck(store),
            on_signed=self._signed,
            on_tampered=self._tampered,
        )
        self.peer.checkpoints = self.signer
        self._metrics_lock = threading.Lock()
        self._divergences_counted = 0
        self._load_own_notes()

    def _load_own_notes(self) -> None:
        """This peer's notes from before a restart, so its earlier heights compare too;
        a note about a block its ledger no longer holds (restored from another peer)
        is left out."""
        notes = read_notes(self.data_dir / CHECKPOINT_DIR)
        store = self.peer.store
        for height in sorted(notes)[-CHECKPOINTS_PER_ORG:]:
            try:
                checkpoint = verify_peer_note(
                    notes[height], org=self.org, state=store, origin=self.origin
                )
                if height >= store.height() or store.header(height).hash != checkpoint.block_hash:
                    raise CheckpointError(f"its ledger holds another block {height} now")
            except CheckpointError as exc:
                log.warning("own checkpoint %d not used: %s", height, exc)
                continue
            self.guard.own(checkpoint, notes[height])

    def start(self, *, retry: bool | None = None) -> ConsortiumNode:
        """Start ordering (an unreachable orderer does not fail the start: see
        :meth:`NodeParts.start`), the signer and the checkpoint exchange."""
        running = self.parts.running
        self.parts.start(retry=retry)
        if not running:
            self.signer.start()
            self.exchange.start()
            own = self.guard.own_latest()
            if own is not None:
                self.exchange.publish(*own)
        return self

    def stop(self) -> None:
        """Stop ordering and committing, then the signer and the exchange; close the
        stores."""
        self.parts.halt()
        self.signer.stop()
        self.exchange.stop()
        self.parts.close()

    def __enter__(self) -> ConsortiumNode:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def propose(
        self,
        identity: str,
        contract: str,
        function: str,
        args: dict[str, Any],
        *,
        transient: dict[str, Any] | None = None,
    ) -> SignedProposal:
        """A proposal signed with ``identity``'s key (one of this organisation's)."""
        return self.parts.propose(identity, contract, function, args, transient=transient)

    def invoke(
        self,
        identity: str,
        contract: str,
        function: str,
        args: dict[str, Any],
        *,
        timeout: float = 30.0,
        transient: dict[str, Any] | None = None,
    ) -> tuple[Receipt, Any]:
        """Sign as ``identity``, endorse, order and wait for the commit."""
        return self.parts.invoke(
            identity, contract, function, args, timeout=timeout, transient=transient
        )

    def query(self, identity: str, contract: str, function: str, args: dict[str, Any]) -> Any:
        """Run a query as ``identity``."""
        return self.parts.query(identity, contract, function, args)

    def _signed(self, checkpoint: Checkpoint, note: str) -> None:
        self.guard.own(checkpoint, note)
        self.exchange.publish(checkpoint.height, note)
        self._sync_metrics()

    def _received(self, org: str, note: str) -> None:
        if self.guard.receive(org, note) is not None:
            self.peer.metrics.checkpoint_notes.inc()
        self._sync_metrics()

    def _tampered(self, error: str) -> None:
        self.guard.tampered(error)
        self._sync_metrics()

    def _sync_metrics(self) -> None:
        # Called from the signer's thread and from the exchange's.
        with self._metrics_lock:
            metrics = self.peer.metrics
            state = self.guard.state
            for value in CheckpointState:
                metrics.checkpoint_state.labels(str(value)).set(1 if value is state else 0)
            metrics.serving.set(0 if self.guard.refusal() else 1)
            found = self.guard.divergence_count
            if found > self._divergences_counted:
                metrics.checkpoint_divergences.inc(found - self._divergences_counted)
                self._divergences_counted = found

    def _polled(self, last_tx_seq: int | None) -> None:
        stuck = self.delivery.observe(
            last_tx_seq=last_tx_seq, position=self.peer.store.ordering_position()
        )
        if stuck and not self.delivery_stuck:
            log.error(
                "delivery is stuck: the ordering stream holds transaction %s, this peer "
                "stays at stream position %d",
                last_tx_seq,
                self.peer.store.ordering_position(),
            )
        self.delivery_stuck = stuck
        self.peer.metrics.delivery_stuck.set(1 if stuck else 0)

    def refusal(self) -> str | None:
        """Why this peer does not serve API reads and writes, or None while it does."""
        return self.guard.refusal()

    def consortium_status(self) -> dict[str, Any]:
        """The checkpoint view and delivery health, for ``/api/v1/status``."""
        stuck = self.delivery_stuck
        checkpoints = self.guard.to_json()
        checkpoints["every"] = self.checkpoint_every
        checkpoints["exchange_error"] = self.exchange.error
        checkpoints["self_check_height"] = (
            None
            if self.signer.self_check.verified is None
            else self.signer.self_check.verified.height
        )
        return {
            "org": self.org,
            "checkpoints": checkpoints,
            "delivery": {
                "stream_last_tx": self.exchange.last_tx_seq,
                "position": self.peer.store.ordering_position(),
                "stuck": stuck,
                "waiting_s": round(self.delivery.waiting_s(), 1),
            },
            "healthy": not stuck and checkpoints["serving"] and self.peer.accepting,
        }
