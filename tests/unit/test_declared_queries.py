"""``ctx.ask``: a contract reads another contract's data through that contract's
declared queries, and what the query read is MVCC-checked as the asker's reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, query, transaction
from healthledger.contracts.errors import ContractError
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.errors import TransactionRefused
from tests.support.founding import found


class Facts(Contract):
    """Holds counters; answers one declared query."""

    name = "facts"

    @transaction()
    def set(self, ctx: Context, *, key: str, value: int) -> None:
        """Set a counter."""
        ctx.put(f"n/{key}", value)

    @query()
    def read(self, ctx: Context, *, key: str) -> int:
        """A counter's value (0 if unset)."""
        found = ctx.get(f"n/{key}")
        return int(found) if found is not None else 0


class Reader(Contract):
    """Records what another contract's query said."""

    name = "reader"

    @transaction()
    def copy(self, ctx: Context, *, key: str) -> int:
        """Copy a counter of ``facts`` into this contract's state."""
        value = int(ctx.ask("facts", "read", {"key": key}))
        ctx.put(f"copy/{key}", value)
        return value

    @query()
    def peek(self, ctx: Context, *, key: str) -> int:
        """What ``facts`` says of a counter, asked from a query."""
        return int(ctx.ask("facts", "read", {"key": key}))

    @transaction()
    def write_through(self, ctx: Context, *, key: str) -> None:
        """Ask a transaction of ``facts``: refused (only queries may be asked)."""
        ctx.ask("facts", "set", {"key": key, "value": 1})


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    folder: Path = tmp_path_factory.mktemp("ask") / "data"
    made = found(
        folder, contracts=(*SYSTEM_CONTRACTS, Facts, Reader), plans=DEMO_ORGS[:2],
        batch_timeout_s=0.005,
    )  # fmt: skip
    made.start()
    yield made
    made.stop()


ME = "gd-commission/officer-chen"


def test_a_contract_reads_another_through_its_query(node: EmbeddedNode) -> None:
    node.invoke(ME, "facts", "set", {"key": "a", "value": 7})
    _, result = node.invoke(ME, "reader", "copy", {"key": "a"})
    assert result == 7
    assert node.query(ME, "facts", "read", {"key": "a"}) == 7


def test_the_query_reads_are_checked_at_commit(node: EmbeddedNode) -> None:
    node.invoke(ME, "facts", "set", {"key": "b", "value": 1})
    asked = node.peer.endorse(node.propose(ME, "reader", "copy", {"key": "b"}))
    reads = {(r.ns, r.key) for r in asked.response.rwset.reads}
    assert ("facts", "n/b") in reads
    node.invoke(ME, "facts", "set", {"key": "b", "value": 2})  # the fact changes meanwhile
    with pytest.raises(TransactionRefused) as refused:  # a stale read: nothing recorded
        node.peer.submit_many([asked])[0].result(timeout=30)
    assert refused.value.code is ValidationCode.MVCC_READ_CONFLICT
    _, result = node.invoke(ME, "reader", "copy", {"key": "b"})
    assert result == 2


def test_only_queries_may_be_asked(node: EmbeddedNode) -> None:
    with pytest.raises(ContractError, match="not a query"):
        node.invoke(ME, "reader", "write_through", {"key": "c"})


def test_a_query_may_ask_too(node: EmbeddedNode) -> None:
    node.invoke(ME, "facts", "set", {"key": "d", "value": 4})
    assert node.query(ME, "reader", "peek", {"key": "d"}) == 4
