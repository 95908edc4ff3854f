"""What every node is made of, and what the platform needs of a node.

:class:`NodeParts` opens a data folder: its ``node.json``, its keystore, its vaults,
its ledger store (checked at start-up) and the peer pipeline over them (endorse,
order, validate, commit), with the orderer it is given. The embedded node
(:mod:`.embedded`), a consortium peer (:mod:`.consortium_peer`) and a traffic client
(:mod:`.traffic`) are each a composition of these parts with what they add (a solo
orderer; JetStream, checkpoint exchange and guard; endorsement through a gateway).

:class:`Node` is what the seam, the API, the web console and the commands use of any
of them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from healthledger.contracts.contract import Contract
from healthledger.contracts.runtime import ContractRuntime
from healthledger.crypto.envelope import VaultKey
from healthledger.crypto.keys import decode_b64
from healthledger.ledger.errors import CorruptStore, LedgerError
from healthledger.ledger.sqlite_store import RESTORE_HINT
from healthledger.ledger.store import LedgerStore, is_postgres_location, open_store
from healthledger.ledger.transaction import SignedProposal
from healthledger.node.checkpoint import CheckpointError, CheckpointWriter
from healthledger.node.errors import NodeError
from healthledger.node.keystore import Keystore
from healthledger.node.peer import Peer, Receipt
from healthledger.node.selfcheck import check_latest_checkpoint, check_recent
from healthledger.node.vault import Vault, VaultSet
from healthledger.ordering.orderer import Orderer
from healthledger.ordering.solo import SoloOrderer

LEDGER_FILE = "ledger.sqlite"
KEYSTORE_FILE = "keystore.json"
NODE_FILE = "node.json"
CHECKPOINT_DIR = "checkpoints"
VAULT_DIR = "vaults"


class DataDirError(NodeError):
    """The data folder is missing, already used, or not a healthledger data folder."""


STORE_KEY = "store"
"""Key of ``node.json`` naming where the ledger store lives when it is not the folder's
``ledger.sqlite``: a PostgreSQL connection URL."""


def open_checked_store(
    location: Path | str, *, synchronous: str = "FULL", checkpoints: Path | None = None
) -> LedgerStore:
    """The store a node serves (an SQLite file or a ``postgresql://`` database), once it
    passed the start-up checks (for SQLite its write-ahead log and, unless the file is
    unchanged since a clean stop, its quick check; for both the most recent blocks
    re-derived and the block of the node's latest checkpoint under ``checkpoints``
    compared with what it signed); CorruptStore, saying how to restore it, otherwise."""
    store = open_store(location, synchronous=synchronous, startup_check=True)
    try:
        check_recent(store)
        if checkpoints is not None:
            check_latest_checkpoint(store, checkpoints)
    except (LedgerError, CheckpointError) as exc:
        # TamperedBlock is a CheckpointError; a missing header or log node a LedgerError.
        store.close()
        raise CorruptStore(
            f"ledger store {shown_location(location)} is damaged ({exc}); {_hint(location)}"
        ) from exc
    return store


def shown_location(location: Path | str) -> str:
    """``location`` as a message shows it: a PostgreSQL URL without its password."""
    if is_postgres_location(location):
        from healthledger.ledger.postgres_setup import redacted

        return redacted(str(location))
    return str(location)


def _hint(location: Path | str) -> str:
    """How to restore a damaged store at ``location``."""
    if is_postgres_location(location):
        from healthledger.ledger.postgres_store import RESTORE_HINT as POSTGRES_HINT

        return POSTGRES_HINT
    return RESTORE_HINT


def store_location(data_dir: Path, info: dict[str, Any], store: str | None = None) -> Path | str:
    """Where the ledger of ``data_dir`` lives: the PostgreSQL database node.json names
    (``store``), else the folder's ``ledger.sqlite``. ``store`` given here (a
    ``postgresql://`` URL) must agree with node.json, and cannot stand for a folder
    whose ledger is in its ``ledger.sqlite``; DataDirError otherwise."""
    recorded = info.get(STORE_KEY)
    for chosen in (recorded, store):
        if chosen and not is_postgres_location(str(chosen)):
            raise DataDirError(
                f"{data_dir}: store {chosen!r} is not a postgresql:// URL "
                f"(an SQLite store is always the folder's {LEDGER_FILE})"
            )
    if store and recorded and store != recorded:
        shown, given = shown_location(str(recorded)), shown_location(store)
        raise DataDirError(f"{data_dir} keeps its ledger in {shown}, not {given}")
    if store and not recorded and (Path(data_dir) / LEDGER_FILE).exists():
        raise DataDirError(
            f"{data_dir} keeps its ledger in {LEDGER_FILE}: a store cannot be chosen for "
            "a folder that already has one"
        )
    chosen = store or recorded
    return str(chosen) if chosen else Path(data_dir) / LEDGER_FILE


def node_info(data_dir: Path) -> dict[str, Any]:
    """What ``node.json`` of ``data_dir`` says (mode, organisations, org); DataDirError
    if there is none."""
    path = Path(data_dir) / NODE_FILE
    if not path.exists():
        raise DataDirError(f"{data_dir} is not a healthledger data folder")
    info: dict[str, Any] = json.loads(path.read_text())
    return info


class NodeParts:
    """The parts of a node on data folder ``data_dir``, and what a node does with them:
    sign as an identity whose key it holds, invoke, query, start and stop."""

    def __init__(
        self,
        data_dir: Path,
        *,
        contracts: Sequence[type[Contract]],
        clock: Callable[[], int],
        max_block_tx: int = 500,
        batch_timeout_s: float = 0.05,
        synchronous: str = "FULL",
        orderer: Orderer | None = None,
        resume_orderer: Callable[[int], Orderer] | None = None,
        checkpoint_every: int = 0,
        store: str | None = None,
    ) -> None:
        """``orderer`` replaces the solo orderer; ``resume_orderer`` makes one from the
        stream position to resume at (one past the store's recorded position);
        ``checkpoint_every`` > 0 signs a checkpoint every that many blocks with the
        node's (first) peer identity, under ``checkpoints/``; ``store`` (a
        ``postgresql://`` URL) is where the ledger lives if node.json does not say
        (:func:`store_location`)."""
        self.data_dir = Path(data_dir)
        self.info = node_info(self.data_dir)
        self.mode = str(self.info.get("mode", ""))
        """``embedded`` (every organisation's keys), ``consortium`` (one organisation's)
        or ``client`` (users' keys, no peer's)."""
        self.keystore = Keystore.load(self.data_dir / KEYSTORE_FILE)
        self.clock = clock
        self.store_location = store_location(self.data_dir, self.info, store)
        opened = open_checked_store(
            self.store_location,
            synchronous=synchronous,
            checkpoints=self.data_dir / CHECKPOINT_DIR,
        )
        vault_dir = self.data_dir / VAULT_DIR
        vault_dir.mkdir(exist_ok=True)
        vaults = {
            org: Vault(
                vault_dir / f"{org}.sqlite",
                org=org,
                key=VaultKey.from_bytes(decode_b64(material["x25519"])),
                secret=decode_b64(material["secret"]),
            )
            for org, material in self.keystore.vault_keys.items()
        }
        if orderer is None and resume_orderer is not None:
            orderer = resume_orderer(opened.ordering_position() + 1)
        if orderer is None:
            orderer = SoloOrderer(
                max_block_tx=max_block_tx, batch_timeout_s=batch_timeout_s, clock=clock
            )
        self.orderer = orderer
        checkpoints = None
        peers = self.keystore.peers()
        if checkpoint_every > 0 and peers:
            checkpoints = CheckpointWriter(
                self.data_dir / CHECKPOINT_DIR,
                every=checkpoint_every,
                name=peers[0][0],
                key=peers[0][1],
            )
        self.peer = Peer(
            checkpoints=checkpoints,
            store=opened,
            runtime=ContractRuntime(contracts),
            orderer=orderer,
            endorsers=peers,
            vaults=VaultSet(vaults),
            clock=clock,
        )
        self.running = False
        self.app_objects: dict[tuple[str, str], Any] = {}
        """Each application's shared objects on this node (``AppNode.shared``)."""
        self.app_objects_lock = threading.Lock()

    def start(self, *, retry: bool | None = None) -> None:
        """Start ordering and committing; with ``retry`` (by default, for a consortium
        peer) an unreachable orderer does not fail the start: queries work and writes
        are refused until it connects."""
        if not self.running:
            self.peer.start(retry=self.mode == "consortium" if retry is None else retry)
            self.running = True

    def halt(self) -> None:
        """Stop ordering and committing (what is ordered is committed first)."""
        if self.running:
            self.peer.stop()
            self.running = False

    def close(self) -> None:
        """Halt, then close the vaults and the store."""
        self.halt()
        self.peer.vaults.close()
        self.peer.store.close()

    def propose(
        self,
        identity: str,
        contract: str,
        function: str,
        args: dict[str, Any],
        *,
        transient: dict[str, Any] | None = None,
    ) -> SignedProposal:
        """A proposal signed with ``identity``'s key (demo custody)."""
        return self.keystore.propose(
            identity, contract, function, args, timestamp=self.clock(), transient=transient
        )

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
        """Sign as ``identity``, endorse, order and wait for the commit; ``transient``
        (private inputs) is salted, bound by hash and never put on chain."""
        salted = None if transient is None else self.keystore.with_salt(transient)
        signed = self.propose(identity, contract, function, args, transient=salted)
        return self.peer.invoke(signed, timeout=timeout, transient=salted)

    def query(self, identity: str, contract: str, function: str, args: dict[str, Any]) -> Any:
        """Run a query as ``identity``."""
        return self.peer.evaluate(self.propose(identity, contract, function, args))


class Node(Protocol):
    """What the platform (the application seam, the API, the console, the commands)
    uses of a node, whichever parts it is composed of."""

    @property
    def parts(self) -> NodeParts:
        """What it is made of."""
        ...

    @property
    def data_dir(self) -> Path: ...
    @property
    def mode(self) -> str: ...
    @property
    def keystore(self) -> Keystore: ...
    @property
    def clock(self) -> Callable[[], int]: ...
    @property
    def peer(self) -> Peer: ...
    @property
    def app_objects(self) -> dict[tuple[str, str], Any]: ...
    @property
    def app_objects_lock(self) -> threading.Lock: ...

    def start(self, *, retry: bool | None = None) -> Node:
        """Start ordering and committing (and whatever else the node runs)."""
        ...

    def stop(self) -> None:
        """Stop what it runs and close its stores."""
        ...

    def propose(
        self,
        identity: str,
        contract: str,
        function: str,
        args: dict[str, Any],
        *,
        transient: dict[str, Any] | None = None,
    ) -> SignedProposal:
        """A proposal signed with ``identity``'s key."""
        ...

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
        ...

    def query(self, identity: str, contract: str, function: str, args: dict[str, Any]) -> Any:
        """Run a query as ``identity``."""
        ...
