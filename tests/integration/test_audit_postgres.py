"""The offline audit of a ledger kept in PostgreSQL (a real server, tests.support.postgres):
a clean ledger verifies, from its data folder through the CLI too, with the same rows
counted as the database holds; a changed, missing or extra row of any table, or a
changed block body, is named with its block; and the URL's password never shows."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthledger.cli.bench_contract import BenchContract
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.demo.traffic import simulate_platform
from healthledger.ledger.audit import AuditReport, audit_store
from healthledger.ledger.errors import InvalidBlock, StorageError
from healthledger.ledger.postgres_setup import redacted
from healthledger.node.endorsers import replay_validator
from tests.support.cli import healthledger
from tests.support.founding import commit_bench_puts
from tests.support.postgres import found_on_postgres, postgres_server

TABLES = ("txs", "state", "history", "log_nodes")


@pytest.fixture(scope="module")
def pg_ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A stopped node's data folder and the database its ledger is in: the demo
    platform's traffic and a few blocks of bench puts."""
    data = tmp_path_factory.mktemp("audit-pg") / "data"
    node = found_on_postgres(data, contracts=(*SYSTEM_CONTRACTS, BenchContract)).start()
    try:
        simulate_platform(node, random.Random(3))
        commit_bench_puts(node, "p", blocks=3, per_block=5)
        url = str(node.parts.store_location)
    finally:
        node.stop()
    return data, url


@pytest.fixture
def pg_copy(pg_ledger: tuple[Path, str]) -> Iterator[str]:
    """A copy of the ledger's database to tamper with."""
    server = postgres_server()
    yield server.create_database(template=server.dbname(pg_ledger[1]))


def audit(location: str, **options: Any) -> AuditReport:
    return audit_store(location, validator=replay_validator, **options)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_postgres_ledger_verifies(pg_ledger: tuple[Path, str], workers: int) -> None:
    _, url = pg_ledger
    report = audit(url, workers=workers)
    rows = {
        table: postgres_server().execute(url, f"SELECT COUNT(*) FROM {table}")[0][0]
        for table in TABLES
    }
    assert report.stored_rows == rows
    assert report.blocks == postgres_server().execute(url, "SELECT COUNT(*) FROM blocks")[0][0]
    assert report.transactions == rows["txs"] and report.codes["VALID"] > 20
    assert report.path == redacted(url)
    if workers:
        assert report.prechecked > 0 and report.checked_in_replay == 0


def test_verify_of_a_postgres_peer_folder_audits_its_database(
    pg_ledger: tuple[Path, str],
) -> None:
    data, _ = pg_ledger
    done = healthledger("verify", str(data))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok postgresql://")
    assert "blocks" in done.stdout


@pytest.mark.parametrize(
    ("statement", "names"),
    [
        (
            "UPDATE state SET value = value || ' ' WHERE key = (SELECT MIN(key) FROM state)",
            "state row",
        ),
        ("DELETE FROM txs WHERE log_index = 3", "txs row"),
        ("UPDATE txs SET code = 'BAD_SIGNATURE' WHERE log_index = 5", "txs row"),
        ("DELETE FROM history WHERE height = 1", "history row"),
        (
            "INSERT INTO log_nodes VALUES (40, 0, decode(repeat('00', 32), 'hex'))",
            "no block explains",
        ),
        ("INSERT INTO state VALUES ('bench', 'planted', '1', 1, 0)", "no block explains"),
        (
            "UPDATE blocks SET body = overlay(body placing '\\x21'::bytea from 40 for 1) "
            "WHERE height = 2",
            "block 2:",
        ),
    ],
)
def test_a_changed_postgres_row_is_named(pg_copy: str, statement: str, names: str) -> None:
    postgres_server().execute(pg_copy, statement)
    with pytest.raises(InvalidBlock) as caught:
        audit(pg_copy, workers=0)
    assert names in str(caught.value)
    assert str(caught.value).startswith("block ")


def test_a_database_that_is_no_ledger_is_refused_without_the_password() -> None:
    url = postgres_server().create_database()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    secret = url.replace("healthledger@", "healthledger:hunter2@")
    with pytest.raises(StorageError) as caught:
        audit(secret)
    assert "not a ledger store" in str(caught.value)
    assert "hunter2" not in str(caught.value)
