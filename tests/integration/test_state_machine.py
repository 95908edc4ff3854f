"""Model-based test: random blocks of puts, adds, removes and replays keep the ledger's
world state equal to a plain dictionary model, and every block's codes as predicted;
once with the ledger in SQLite, once in PostgreSQL."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from healthledger.ledger.transaction import Transaction
from healthledger.node.embedded import EmbeddedNode
from tests.conftest import CONTRACTS
from tests.support.founding import found
from tests.support.postgres import found_on_postgres

DOCTOR = "gz-first-hospital/dr-li"
KEYS = st.sampled_from(["a", "b", "c"])


class LedgerMachine(RuleBasedStateMachine):
    """Blocks appended straight to one node's chain, mirrored in a dict."""

    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        self.node = self.found_node(Path(self._dir.name) / "data")
        self.model: dict[str, int] = {}
        self.committed: list[Transaction] = []

    def found_node(self, folder: Path) -> EmbeddedNode:
        """A founded node in ``folder`` (its ledger in SQLite)."""
        return found(folder, contracts=CONTRACTS)

    def endorse(self, function: str, **args: Any) -> Transaction:
        return self.node.peer.endorse(self.node.propose(DOCTOR, "notebook", function, args))

    def append(self, txs: list[Transaction]) -> list[str]:
        block = self.node.peer.chain.append(txs, timestamp=self.node.clock())
        self.committed.extend(txs)
        return [str(c) for c in block.codes]

    @rule(key=KEYS, value=st.integers(-1000, 1000))
    def put(self, key: str, value: int) -> None:
        assert self.append([self.endorse("put", key=key, value=value)]) == ["VALID"]
        self.model[key] = value

    @rule(key=KEYS, amounts=st.lists(st.integers(1, 50), min_size=1, max_size=3))
    def concurrent_adds(self, key: str, amounts: list[int]) -> None:
        # Endorsed on the same state: only the first commits, the rest conflict.
        txs = [self.endorse("add", key=key, amount=a) for a in amounts]
        codes = self.append(txs)
        assert codes == ["VALID"] + ["MVCC_READ_CONFLICT"] * (len(amounts) - 1)
        self.model[key] = self.model.get(key, 0) + amounts[0]

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model)))
        assert self.append([self.endorse("remove", key=key)]) == ["VALID"]
        del self.model[key]

    @precondition(lambda self: bool(self.committed))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        tx = data.draw(st.sampled_from(self.committed))
        assert self.append([tx]) == ["DUPLICATE_TXID"]

    @invariant()
    def state_matches_model(self) -> None:
        rows = self.node.peer.store.range_state("notebook", "", "", 100)
        assert {k: v.value["value"] for k, v in rows} == self.model

    @invariant()
    def log_counts_every_transaction(self) -> None:
        head = self.node.peer.store.head()
        assert head is not None and head.log_size == len(self.committed) + 1

    def teardown(self) -> None:
        self.node.stop()
        self._dir.cleanup()


class PostgresLedgerMachine(LedgerMachine):
    """The same machine, the ledger in a PostgreSQL database."""

    def found_node(self, folder: Path) -> EmbeddedNode:
        """A founded node in ``folder`` whose ledger is a new database."""
        return found_on_postgres(folder, contracts=CONTRACTS)


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(max_examples=8, stateful_step_count=12, deadline=None)
TestPostgresLedgerMachine = PostgresLedgerMachine.TestCase
TestPostgresLedgerMachine.settings = TestLedgerMachine.settings
