"""The embedded node: one process, a solo orderer, SQLite storage under a data folder
(ARCHITECTURE.md section 5; or the ledger in a PostgreSQL database), holding the keys
of every organisation it was founded with (the demo passes its own plan:
:mod:`healthledger.demo.organisations`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from healthledger.contracts.contract import Contract
from healthledger.ledger.transaction import SignedProposal
from healthledger.node.consortium import OrgPlan, create_consortium
from healthledger.node.parts import CHECKPOINT_DIR as CHECKPOINT_DIR
from healthledger.node.parts import KEYSTORE_FILE as KEYSTORE_FILE
from healthledger.node.parts import LEDGER_FILE as LEDGER_FILE
from healthledger.node.parts import NODE_FILE as NODE_FILE
from healthledger.node.parts import STORE_KEY, NodeParts
from healthledger.node.parts import DataDirError as DataDirError
from healthledger.node.parts import open_checked_store as open_checked_store
from healthledger.node.peer import Receipt
from healthledger.ordering.orderer import Orderer
from healthledger.ordering.solo import wall_clock_ms


class EmbeddedNode:
    """A whole consortium's ledger in one process, for the demo and for tests: the
    node's parts (:class:`~healthledger.node.parts.NodeParts`) ordering through a solo
    orderer unless given another."""

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
        store: str | None = None,
    ) -> None:
        """``orderer`` replaces the solo orderer; ``resume_orderer`` makes one from the
        stream position to resume at (one past the store's recorded position);
        ``checkpoint_every`` > 0 signs a checkpoint every that many blocks with the
        node's (first) peer identity, under ``checkpoints/``; ``store`` (a
        ``postgresql://`` URL) is where the ledger lives if node.json does not say."""
        self.parts = NodeParts(
            data_dir,
            contracts=contracts,
            clock=clock,
            max_block_tx=max_block_tx,
            batch_timeout_s=batch_timeout_s,
            synchronous=synchronous,
            orderer=orderer,
            resume_orderer=resume_orderer,
            checkpoint_every=checkpoint_every,
            store=store,
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

    @classmethod
    def create(
        cls,
        data_dir: Path,
        *,
        contracts: Sequence[type[Contract]],
        plans: Sequence[OrgPlan],
        clock: Callable[[], int] = wall_clock_ms,
        founder: str | None = None,
        store: str | None = None,
        **options: Any,
    ) -> EmbeddedNode:
        """Found a new consortium in an empty ``data_dir`` and commit its genesis block
        (signed by ``founder``, an identity of ``plans``; by default the first
        organisation's admin); with ``store`` (a ``postgresql://`` URL of an empty
        database) the ledger lives there, and node.json records it."""
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
                    **({STORE_KEY: store} if store else {}),
                },
                indent=1,
            )
        )
        node = cls(data_dir, contracts=contracts, clock=clock, **options)
        node.peer.bootstrap(consortium.genesis, timestamp=now)
        return node

    def start(self, *, retry: bool | None = None) -> EmbeddedNode:
        """Start ordering and committing (see :meth:`NodeParts.start`)."""
        self.parts.start(retry=retry)
        return self

    def stop(self) -> None:
        """Commit what is ordered and close the stores."""
        self.parts.close()

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
        """Sign as ``identity``, endorse, order and wait for the commit; ``transient``
        (private inputs) is salted, bound by hash and never put on chain."""
        return self.parts.invoke(
            identity, contract, function, args, timeout=timeout, transient=transient
        )

    def query(self, identity: str, contract: str, function: str, args: dict[str, Any]) -> Any:
        """Run a query as ``identity``."""
        return self.parts.query(identity, contract, function, args)
