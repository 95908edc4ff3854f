"""The offline audit (ledger.audit) on real SQLite ledgers: a clean ledger verifies,
and every single-byte flip, missing or extra row, or re-sealed forgery is caught."""

from __future__ import annotations

import hashlib
import random
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from healthledger.cli.bench_contract import BenchContract
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.crypto.canonical import parse_canonical
from healthledger.demo.traffic import simulate_platform
from healthledger.ledger.audit import audit_store
from healthledger.ledger.block import Block
from healthledger.ledger.chain import Chain
from healthledger.ledger.errors import InvalidBlock, StorageError
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.ledger.state import StateUpdate
from healthledger.ledger.transaction import (
    KeyWrite,
    ProposalResponse,
    Transaction,
    ValidationCode,
)
from healthledger.ledger.validation import BlockValidation
from healthledger.node.consortium import issue_identity
from healthledger.node.embedded import LEDGER_FILE
from healthledger.node.endorsers import new_validator, replay_validator
from tests.support.founding import commit_bench_puts, found

MASKS = (0x01, 0x20, 0x80, 0x04, 0x40)
"""XOR masks cycled over flip positions: case, ASCII-breaking and UTF-8-breaking flips."""


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo-consortium ledger with valid, revoked-identity and MVCC-conflict txs."""
    data = tmp_path_factory.mktemp("audit") / "data"
    node = found(data, contracts=(*SYSTEM_CONTRACTS, BenchContract)).start()
    try:
        simulate_platform(node, random.Random(7))
        # Two registrations of one identity endorsed on the same state: both read the
        # identity key as absent, so the second to commit is an MVCC conflict.
        entry = issue_identity(
            node.keystore,
            org="gz-first-hospital",
            name="temp-xu",
            role="nurse",
            now_ms=node.clock(),
        )
        twins = [
            node.peer.endorse(
                node.propose(
                    "gz-first-hospital/admin",
                    "membership",
                    "register_identity",
                    {"cert": entry.cert.pem},
                )
            )
            for _ in range(2)
        ]
        futures = [node.peer.submit(tx, precheck=False) for tx in twins]
        codes = sorted(str(f.result(30).code) for f in futures)
        assert codes == ["MVCC_READ_CONFLICT", "VALID"]
        commit_bench_puts(node, "b", blocks=3, per_block=6)
    finally:
        node.stop()
    return data / LEDGER_FILE


@pytest.fixture
def copy(ledger: Path, tmp_path: Path) -> Path:
    """A private copy of the ledger file to tamper with."""
    target = tmp_path / LEDGER_FILE
    shutil.copyfile(ledger, target)
    return target


def audit(path: Path, **options: Any) -> Any:
    return audit_store(path, validator=replay_validator, **options)


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        yield db
    finally:
        db.close()


def flip(value: bytes | str, position: int, mask: int) -> bytes | str:
    if isinstance(value, str):
        chars = list(value)
        chars[position] = chr(ord(chars[position]) ^ (mask & 0x7F or 0x01))
        return "".join(chars)
    data = bytearray(value)
    data[position] ^= mask
    return bytes(data)


def spread(length: int, count: int) -> list[int]:
    """``count`` positions spread evenly over ``length`` bytes, both ends included."""
    if length <= count:
        return list(range(length))
    return sorted({round(i * (length - 1) / (count - 1)) for i in range(count)})


def sample(rows: Sequence[Any], count: int) -> list[Any]:
    """Up to ``count`` rows spread over ``rows`` (first and last included)."""
    return [rows[i] for i in spread(len(rows), count)]


def expect_caught(path: Path, what: str, *, prefix: str = "block ") -> str:
    try:
        audit(path, workers=0)
    except InvalidBlock as exc:
        assert str(exc).startswith(prefix), f"{what}: {exc} does not name {prefix!r}"
        return str(exc)
    except StorageError as exc:
        return str(exc)
    raise AssertionError(f"{what}: the audit did not notice")


# --- a clean ledger -------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 2])
def test_clean_ledger_verifies(ledger: Path, workers: int) -> None:
    report = audit(ledger, workers=workers)
    assert report.blocks >= 8
    assert report.codes["VALID"] >= 30
    assert report.codes["IDENTITY_REVOKED"] == 1
    assert report.codes["MVCC_READ_CONFLICT"] == 1
    assert report.transactions == sum(report.codes.values())
    assert report.state_keys == report.stored_rows["state"] > 0
    assert report.workers == workers
    if workers:
        # Every check the replay asked for was one a worker had made.
        assert report.prechecked > 0
        assert report.checked_in_replay == 0
    else:
        # A validator without a store of its own (no per-height memo) decides the same.
        plain = audit_store(ledger, validator=new_validator(), workers=0)
        assert (plain.codes, plain.state_root, plain.stored_rows) == (
            report.codes,
            report.state_root,
            report.stored_rows,
        )


def test_progress_reports_every_block(ledger: Path) -> None:
    seen: list[tuple[int, int]] = []
    report = audit(ledger, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(h, report.blocks) for h in range(1, report.blocks + 1)]


def test_audit_opens_the_file_read_only(ledger: Path) -> None:
    before = hashlib.sha256(ledger.read_bytes()).hexdigest()
    audit(ledger)
    assert hashlib.sha256(ledger.read_bytes()).hexdigest() == before


# --- single-byte flips -----------------------------------------------------------------


def test_every_flip_of_a_block_body_is_caught(copy: Path) -> None:
    caught = 0
    with connect(copy) as db:
        rows = db.execute("SELECT height, body FROM blocks ORDER BY height").fetchall()
        for height, body in rows:
            for n, position in enumerate(spread(len(body), 14)):
                db.execute(
                    "UPDATE blocks SET body=? WHERE height=?",
                    (flip(body, position, MASKS[n % len(MASKS)]), height),
                )
                expect_caught(
                    copy, f"body of block {height} at {position}", prefix=f"block {height}:"
                )
                caught += 1
            db.execute("UPDATE blocks SET body=? WHERE height=?", (body, height))
    assert caught >= 14 * len(rows)
    audit(copy)  # every flip undone: clean again


def test_every_flip_of_a_header_or_hash_column_is_caught(copy: Path) -> None:
    with connect(copy) as db:
        rows = db.execute("SELECT height, header, hash FROM blocks ORDER BY height").fetchall()
        for height, header, block_hash in rows:
            for column, value in (("header", header), ("hash", block_hash)):
                for n, position in enumerate(spread(len(value), 6)):
                    db.execute(
                        f"UPDATE blocks SET {column}=? WHERE height=?",
                        (flip(value, position, MASKS[n % len(MASKS)]), height),
                    )
                    expect_caught(copy, f"{column} of block {height}", prefix=f"block {height}:")
                db.execute(f"UPDATE blocks SET {column}=? WHERE height=?", (value, height))
    audit(copy)


def test_every_state_row_flip_is_caught(copy: Path) -> None:
    with connect(copy) as db:
        rows = db.execute("SELECT ns, key, value, height, idx FROM state").fetchall()
        for n, (ns, key, value, height, idx) in enumerate(sample(rows, 20)):
            where = "WHERE ns=? AND key=?"
            position = random.Random(n).randrange(len(value))
            db.execute(f"UPDATE state SET value=? {where}", (flip(value, position, 0x01), ns, key))
            expect_caught(copy, f"state value of {ns}/{key}")
            db.execute(f"UPDATE state SET value=?, height=? {where}", (value, height + 1, ns, key))
            expect_caught(copy, f"state version of {ns}/{key}")
            db.execute(f"UPDATE state SET height=?, idx=? {where}", (height, idx ^ 1, ns, key))
            expect_caught(copy, f"state index of {ns}/{key}")
            db.execute(f"UPDATE state SET idx=? {where}", (idx, ns, key))
    audit(copy)


def test_every_tx_index_row_flip_is_caught(copy: Path) -> None:
    with connect(copy) as db:
        rows = db.execute("SELECT log_index, tx_id, height, idx, code FROM txs").fetchall()
        for log_index, tx_id, height, idx, code in sample(rows, 16):
            where = "WHERE log_index=?"
            db.execute(
                f"UPDATE txs SET tx_id=? {where}", (flip(tx_id, log_index % 64, 0x01), log_index)
            )
            expect_caught(copy, f"tx_id at {log_index}")
            db.execute(
                f"UPDATE txs SET tx_id=?, code=? {where}", (tx_id, flip(code, 0, 0x20), log_index)
            )
            expect_caught(copy, f"code at {log_index}")
            db.execute(f"UPDATE txs SET code=?, height=? {where}", (code, height + 1, log_index))
            expect_caught(copy, f"height at {log_index}")
            db.execute(f"UPDATE txs SET height=?, idx=? {where}", (height, idx + 1, log_index))
            expect_caught(copy, f"index at {log_index}")
            db.execute(f"UPDATE txs SET idx=? {where}", (idx, log_index))
    audit(copy)


def test_every_log_node_flip_is_caught(copy: Path) -> None:
    with connect(copy) as db:
        rows = db.execute("SELECT level, idx, hash FROM log_nodes").fetchall()
        for n, (level, idx, node_hash) in enumerate(sample(rows, 40)):
            where = "WHERE level=? AND idx=?"
            db.execute(
                f"UPDATE log_nodes SET hash=? {where}",
                (flip(node_hash, n % len(node_hash), MASKS[n % len(MASKS)]), level, idx),
            )
            expect_caught(copy, f"log node ({level}, {idx})")
            db.execute(f"UPDATE log_nodes SET hash=? {where}", (node_hash, level, idx))
    audit(copy)


def test_every_history_row_flip_is_caught(copy: Path) -> None:
    with connect(copy) as db:
        rows = db.execute("SELECT ns, key, height, idx, tx_id, value FROM history").fetchall()
        where = "WHERE ns=? AND key=? AND height=? AND idx=?"
        for n, (ns, key, height, idx, tx_id, value) in enumerate(sample(rows, 20)):
            pk = (ns, key, height, idx)
            db.execute(f"UPDATE history SET tx_id=? {where}", (flip(tx_id, n % 64, 1), *pk))
            expect_caught(copy, f"history tx_id of {pk}")
            db.execute(f"UPDATE history SET tx_id=? {where}", (tx_id, *pk))
            if value is not None:
                db.execute(
                    f"UPDATE history SET value=? {where}", (flip(value, n % len(value), 1), *pk)
                )
                expect_caught(copy, f"history value of {pk}")
                db.execute(f"UPDATE history SET value=? {where}", (value, *pk))
    audit(copy)


# --- missing and extra rows ------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "names"),
    [
        ("INSERT INTO state VALUES ('bench', 'planted', '1', 1, 0)", "no block explains"),
        ("DELETE FROM state WHERE key = (SELECT MIN(key) FROM state WHERE ns='bench')", "missing"),
        ("DELETE FROM txs WHERE log_index = 3", "txs row"),
        ("INSERT INTO txs VALUES (100000, 'ab', 1, 0, 'VALID')", "no block explains"),
        ("DELETE FROM log_nodes WHERE level = 1 AND idx = 0", "log_nodes row"),
        ("INSERT INTO log_nodes VALUES (40, 0, zeroblob(32))", "no block explains"),
        ("DELETE FROM history WHERE height = 1", "history row"),
        ("DELETE FROM blocks WHERE height = 2", "block 2: missing"),
        ("DELETE FROM blocks WHERE height = (SELECT MAX(height) FROM blocks)", "no block explains"),
        ("UPDATE meta SET value = '0' WHERE key = 'format_version'", "format version"),
        ("DELETE FROM blocks", "no blocks"),
    ],
)
def test_missing_or_extra_rows_are_caught(copy: Path, statement: str, names: str) -> None:
    with connect(copy) as db:
        db.execute(statement)
    message = expect_caught(copy, statement)
    assert names in message


def test_swapped_blocks_are_caught(copy: Path) -> None:
    with connect(copy) as db:
        db.execute("UPDATE blocks SET height = -1 WHERE height = 3")
        db.execute("UPDATE blocks SET height = 3 WHERE height = 4")
        db.execute("UPDATE blocks SET height = 4 WHERE height = -1")
    assert expect_caught(copy, "swap").startswith("block 3:")


# --- forgeries re-sealed with correct hashes -------------------------------------------


class Rubberstamp:
    """A forger's validator: accepts what it is told to, whatever the signatures say."""

    def __init__(self) -> None:
        self.codes: Sequence[ValidationCode] = ()

    def validate_block(
        self, transactions: Sequence[Transaction], *, state: Any, height: int, **_: Any
    ) -> BlockValidation:
        updates = [
            StateUpdate(w.ns, w.key, w.value, w.delete, (height, i), tx.tx_id)
            for i, (tx, code) in enumerate(zip(transactions, self.codes, strict=True))
            if code is ValidationCode.VALID
            for w in tx.response.rwset.writes
        ]
        return BlockValidation(tuple(self.codes), tuple(updates))


def forge(source: Path, target: Path, edit: Any) -> None:
    """Rebuild the chain of ``source`` into ``target`` with ``edit(height, block)``
    applied, every hash, root, log node and state row recomputed to match."""
    with connect(source) as db:
        blocks = [
            Block.from_json(parse_canonical(body))
            for (body,) in db.execute("SELECT body FROM blocks ORDER BY height")
        ]
    stamp = Rubberstamp()
    store = SqliteStore(target)
    chain = Chain(store, stamp)  # type: ignore[arg-type]
    for height, block in enumerate(blocks):
        txs, codes = edit(height, block)
        if height == 0:
            chain.commit_genesis(txs[0], timestamp=block.header.timestamp)
        else:
            stamp.codes = codes
            chain.append(txs, timestamp=block.header.timestamp)
    store.close()


@pytest.mark.parametrize("workers", [0, 2])
def test_forged_acceptance_of_a_revoked_identity_is_caught(
    ledger: Path, tmp_path: Path, workers: int
) -> None:
    target = tmp_path / "forged.sqlite"
    forged_at: list[int] = []

    def accept_all(height: int, block: Block) -> tuple[Any, Any]:
        if ValidationCode.IDENTITY_REVOKED in block.codes:
            forged_at.append(height)
        return block.transactions, [ValidationCode.VALID] * len(block.codes)

    forge(ledger, target, accept_all)
    with pytest.raises(
        InvalidBlock,
        match=rf"block {forged_at[0]}: transaction \d+ is stored as "
        "VALID, but validation gives IDENTITY_REVOKED",
    ):
        audit(target, workers=workers)


@pytest.mark.parametrize("workers", [0, 2])
def test_the_first_bad_block_is_named_though_a_later_one_is_read_first(
    ledger: Path, tmp_path: Path, workers: int
) -> None:
    # With workers the audit decodes blocks ahead of the replay: a later block that
    # cannot be read must not hide an earlier block whose decisions were forged.
    target = tmp_path / "forged.sqlite"
    forged_at: list[int] = []

    def accept_all(height: int, block: Block) -> tuple[Any, Any]:
        if ValidationCode.IDENTITY_REVOKED in block.codes:
            forged_at.append(height)
        return block.transactions, [ValidationCode.VALID] * len(block.codes)

    forge(ledger, target, accept_all)
    with connect(target) as db:
        last = db.execute("SELECT MAX(height) FROM blocks").fetchone()[0]
        assert last > forged_at[0]
        db.execute("UPDATE blocks SET body=x'00' WHERE height=?", (last,))
    with pytest.raises(InvalidBlock, match=rf"block {forged_at[0]}: transaction \d+ is stored"):
        audit(target, workers=workers)


@pytest.mark.parametrize("workers", [0, 2])
def test_forged_write_is_caught_by_its_endorsement(
    ledger: Path, tmp_path: Path, workers: int
) -> None:
    target = tmp_path / "forged.sqlite"
    forged_at: list[int] = []

    def change_a_value(height: int, block: Block) -> tuple[Any, Any]:
        txs = list(block.transactions)
        for i, tx in enumerate(txs):
            if tx.proposal.contract == "bench" and not forged_at:
                forged_at.append(height)
                write = tx.response.rwset.writes[0]
                rwset = replace(tx.response.rwset, writes=(KeyWrite(write.ns, write.key, 10**6),))
                txs[i] = replace(tx, response=ProposalResponse(rwset, tx.response.events))
        return txs, block.codes

    forge(ledger, target, change_a_value)
    # The forged file is consistent in itself: only re-checking signatures finds it.
    with pytest.raises(
        InvalidBlock,
        match=rf"block {forged_at[0]}: transaction \d+ is stored as VALID, "
        "but validation gives BAD_ENDORSEMENT",
    ):
        audit(target, workers=workers)


def test_an_unchanged_forgery_is_not_an_error(ledger: Path, tmp_path: Path) -> None:
    # The forging helper itself must reproduce a clean ledger, or the tests above prove nothing.
    target = tmp_path / "copy.sqlite"
    forge(ledger, target, lambda height, block: (block.transactions, block.codes))
    assert audit(target).transactions == audit(ledger).transactions


# --- unusable inputs -------------------------------------------------------------------


def test_unusable_files_raise_storage_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(random.Random(1).randbytes(8192))
    empty_db = tmp_path / "empty.sqlite"
    sqlite3.connect(empty_db).execute("CREATE TABLE other (x)").connection.close()
    for path, message in (
        (tmp_path / "missing.sqlite", "no ledger store"),
        (tmp_path, "no ledger store"),
        (garbage, "not a readable ledger store"),
        (empty_db, "not a ledger store"),
    ):
        with pytest.raises(StorageError, match=message):
            audit(path)
