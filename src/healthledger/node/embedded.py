"""The embedded node: one process, a solo orderer, SQLite storage under a data folder
(ARCHITECTURE.md section 5), holding every demo organisation's keys."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from healthledger.contracts.contract import Contract
from healthledger.contracts.runtime import ContractRuntime
from healthledger.crypto.envelope import VaultKey
from healthledger.crypto.keys import decode_b64
from healthledger.ledger.errors import CorruptStore, LedgerError
from healthledger.ledger.sqlite_store import RESTORE_HINT, SqliteStore
from healthledger.ledger.transaction import SignedProposal
from healthledger.node.checkpoint import CheckpointError, CheckpointWriter
from healthledger.node.consortium import DEMO_ORGS, FOUNDER, OrgPlan, create_consortium
from healthledger.node.errors import NodeError
from healthledger.node.keystore import Keystore
from healthledger.node.peer import Peer, Receipt
from healthledger.node.selfcheck import check_recent
from healthledger.node.vault import Vault, VaultSet
from healthledger.ordering.orderer import Orderer
from healthledger.ordering.solo import SoloOrderer, wall_clock_ms

LEDGER_FILE = "ledger.sqlite"
KEYSTORE_FILE = "keystore.json"
NODE_FILE = "node.json"
CHECKPOINT_DIR = "checkpoints"


class DataDirError(NodeError):
    """The data folder is missing, already used, or not a healthledger data folder."""


def open_checked_store(path: Path, *, synchronous: str = "FULL") -> SqliteStore:
    """The store a node serves, once it passed the start-up checks (write-ahead log,
    SQLite's quick check, the most recent blocks re-derived); CorruptStore, saying
    how to restore it, otherwise."""
    store = SqliteStore(path, synchronous=synchronous, startup_check=True)
    try:
        check_recent(store)
    except (LedgerError, CheckpointError) as exc:
        # TamperedBlock is a CheckpointError; a missing header or log node a LedgerError.
        store.close()
        raise CorruptStore(f"ledger store {path} is damaged ({exc}); {RESTORE_HINT}") from exc
    return store


class EmbeddedNode:
    """A whole consortium's ledger in one process, for the demo and for tests."""

    def __init__(
        self,
        data_dir: Path,
        *,
        contracts: Sequence[type[Contract]],
        clock: Callable[[], int] = wall_clock_ms,
        max_block_tx: int = 500,
        batch_timeout_s: float = 0.05,
        synchronous: str = "FULL",
        orderer: Orderer | None = None,
        resume_orderer: Callable[[int], Orderer] | None = None,
        checkpoint_every: int = 0,
    ) -> None:
        """``orderer`` replaces the solo orderer; ``resume_orderer`` makes one from the
        stream position to resume at (one past the store's recorded position);
        ``checkpoint_every`` > 0 signs a checkpoint every that many blocks with the
        node's (first) peer identity, under ``checkpoints/``."""
        self.data_dir = Path(data_dir)
        if not (self.data_dir / NODE_FILE).exists():
            raise DataDirError(f"{self.data_dir} is not a healthledger data folder")
        self.mode = str(json.loads((self.data_dir / NODE_FILE).read_text()).get("mode", ""))
        """``embedded`` (every organisation's keys) or ``consortium`` (one organisation's)."""
        self.keystore = Keystore.load(self.data_dir / KEYSTORE_FILE)
        self.clock = clock
        store = open_checked_store(self.data_dir / LEDGER_FILE, synchronous=synchronous)
        vault_dir = self.data_dir / "vaults"
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
            orderer = resume_orderer(store.ordering_position() + 1)
        if orderer is None:
            orderer = SoloOrderer(
                max_block_tx=max_block_tx, batch_timeout_s=batch_timeout_s, clock=clock
            )
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
            store=store,
            runtime=ContractRuntime(contracts),
            orderer=orderer,
            endorsers=self.keystore.peers(),
            vaults=VaultSet(vaults),
            clock=clock,
        )
        self._running = False
        self.app_objects: dict[tuple[str, str], Any] = {}
        """Each application's shared objects on this node (``AppNode.shared``)."""
        self.app_objects_lock = threading.Lock()

    @classmethod
    def create(
        cls,
        data_dir: Path,
        *,
        contracts: Sequence[type[Contract]],
        plans: Sequence[OrgPlan] = DEMO_ORGS,
        clock: Callable[[], int] = wall_clock_ms,
        founder: str = FOUNDER,
        **options: Any,
    ) -> EmbeddedNode:
        """Found a new consortium in an empty ``data_dir`` and commit its genesis block
        (signed by ``founder``, an identity of ``plans``)."""
        data_dir = Path(data_dir)
        if (data_dir / NODE_FILE).exists():
            raise DataDirError(f"{data_dir} already holds a ledger")
        data_dir.mkdir(parents=True, exist_ok=True)
        now = clock()
        consortium = create_consortium(
            plans=plans, contracts=contracts, now_ms=now, founder=founder
        )
        consortium.keystore.save(data_dir / KEYSTORE_FILE)
        (data_dir / NODE_FILE).write_text(
            json.dumps(
                {
                    "format": 1,
                    "mode": "embedded",
                    "organisations": [o.id for o in consortium.organisations],
                },
                indent=1,
            )
        )
        node = cls(data_dir, contracts=contracts, clock=clock, **options)
        node.peer.bootstrap(consortium.genesis, timestamp=now)
        return node

    def start(self, *, retry: bool | None = None) -> EmbeddedNode:
        """Start ordering and committing; with ``retry`` (by default, for a consortium
        peer) an unreachable orderer does not fail the start: queries work and writes
        are refused until it connects."""
        if not self._running:
            self.peer.start(retry=self.mode == "consortium" if retry is None else retry)
            self._running = True
        return self

    def stop(self) -> None:
        """Commit what is ordered and close the stores."""
        if self._running:
            self.peer.stop()
            self._running = False
        self.peer.vaults.close()
        self.peer.store.close()

    def __enter__(self) -> EmbeddedNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
