"""Unit tests of the audit's pieces that need no ledger: the row order used to merge
stored and replayed tables, and the report's JSON form."""

from __future__ import annotations

import sqlite3
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from healthledger.ledger import audit_replay
from healthledger.ledger.audit import AuditReport

sql_values = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=6),
    st.binary(max_size=6),
)


@given(st.lists(st.tuples(sql_values, sql_values), max_size=30))
def test_row_order_agrees_with_sqlite(rows: list[tuple[Any, Any]]) -> None:
    # The merge of stored and replayed rows relies on Python ordering them as SQLite does.
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (a, b)")
    db.executemany("INSERT INTO t VALUES (?, ?)", rows)
    ordered = db.execute("SELECT a, b FROM t ORDER BY a, b").fetchall()
    keys = [audit_replay._sql_order(row) for row in ordered]
    assert keys == sorted(keys)


def test_report_json_is_plain_and_sorted() -> None:
    report = AuditReport(
        path="ledger.sqlite",
        blocks=3,
        transactions=5,
        codes={"VALID": 4, "MVCC_READ_CONFLICT": 1},
        head_hash="0" * 64,
        state_root="1" * 64,
        log_size=5,
        log_root="2" * 64,
        state_keys=7,
        workers=0,
        prechecked=0,
        checked_in_replay=8,
        seconds=0.5,
        stored_rows={"txs": 5, "state": 7},
    )
    document = report.to_json()
    assert document["ok"] is True
    assert document["tx_per_s"] == 10.0
    assert list(document["codes"]) == ["MVCC_READ_CONFLICT", "VALID"]
    assert list(document["stored_rows"]) == ["state", "txs"]
