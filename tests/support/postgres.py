"""A throw-away PostgreSQL server from Debian's postgresql-15, for the store tests.

Each test process (each xdist worker) starts its own server once, on first use: ``initdb``
into a fresh folder, listening on a unix socket in that folder (and on 127.0.0.1 at a
free port), with ``fsync=on`` and ``synchronous_commit=on`` (the durability the store
promises), stopped when the process ends. PostgreSQL refuses to run as root, so as root
the folder is handed to the ``postgres`` user and the server runs as that user (CI runs
as root on a fresh machine). Each test gets a database of its own.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthledger.contracts.contract import Contract
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.consortium import OrgPlan
from healthledger.node.embedded import NODE_FILE, EmbeddedNode
from healthledger.node.parts import STORE_KEY
from tests.support.contracts import Notebook
from tests.support.founding import found

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "healthledger"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One running server in a folder of its own."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").is_file():
            pytest.fail("PostgreSQL 15 is not installed: run `make pg-deps`")
        self.root = Path(tempfile.mkdtemp(prefix="hl-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._names = itertools.count()
        self._run(
            PG_BIN / "initdb",
            "-D",
            self.data,
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--data-checksums",
            "--no-sync",
        )
        self._options = " ".join(
            [
                "-c fsync=on",
                "-c synchronous_commit=on",
                "-c full_page_writes=on",
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.root}",
                "-c shared_buffers=32MB",
                "-c max_connections=60",
                "-c max_wal_size=256MB",
            ]
        )
        self.start()
        atexit.register(self.stop)

    def start(self) -> None:
        """Start the server (again) and wait until it accepts connections."""
        log = self.root / "log"
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-l", log, "-o", self._options, "-w", "start")

    def crash(self) -> None:
        """Stop the server as a crash would: every process ends at once, nothing is
        flushed or checkpointed; the next start recovers from the write-ahead log."""
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def _run(self, *argv: object) -> None:
        done = subprocess.run(
            [*self._as, *map(str, argv)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.is_file() else ""
            raise RuntimeError(f"{argv[0]} failed: {done.stderr or done.stdout}\n{tail}")

    def url(self, dbname: str) -> str:
        """The connection URL of database ``dbname`` over the unix socket."""
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.root}&port={self.port}"

    def dbname(self, url: str) -> str:
        """The database name of one of this server's URLs."""
        return url.split("?")[0].rsplit("/", 1)[1]

    def create_database(self, *, template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``, a database name); its URL."""
        name = f"ledger_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as db:
            if template is None:
                db.execute(f'CREATE DATABASE "{name}"')
            else:
                db.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def execute(self, url: str, sql: str) -> list[tuple[object, ...]]:
        """Run ``sql`` on the database of ``url`` (outside the store), with its rows."""
        with psycopg.connect(url, autocommit=True) as db:
            cursor = db.execute(sql.encode())
            return cursor.fetchall() if cursor.description else []

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder."""
        if self.data.exists():
            subprocess.run(
                [
                    *self._as,
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)


_server: PostgresServer | None = None


def postgres_server() -> PostgresServer:
    """This test process's server, started on first use."""
    global _server
    if _server is None:
        _server = PostgresServer()
    return _server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a ledger store lives, once per backend: a new SQLite file, or a new
    database on this process's PostgreSQL server."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.sqlite")
    else:
        yield postgres_server().create_database()


_templates: dict[tuple[tuple[type[Contract], ...], tuple[OrgPlan, ...]], tuple[Path, str]] = {}


def found_on_postgres(
    data_dir: Path,
    *,
    contracts: Sequence[type[Contract]],
    plans: Sequence[OrgPlan] = DEMO_ORGS,
    **options: Any,
) -> EmbeddedNode:
    """A node in ``data_dir`` whose ledger is a new database on this process's server,
    as ``EmbeddedNode.create(..., store=url)`` founds it (not started): a copy of a
    template folder and of a template database (``CREATE DATABASE ... TEMPLATE``),
    founded once per process, as ``tests.support.founding`` does for SQLite."""
    server = postgres_server()
    key = (tuple(contracts), tuple(plans))
    if key not in _templates:
        url = server.create_database()
        folder = server.root / f"template-{len(_templates)}"
        EmbeddedNode.create(folder, contracts=contracts, plans=plans, store=url).stop()
        _templates[key] = (folder, server.dbname(url))
    folder, template = _templates[key]
    shutil.copytree(folder, data_dir)
    url = server.create_database(template=template)
    info = json.loads((data_dir / NODE_FILE).read_text())
    info[STORE_KEY] = url
    (data_dir / NODE_FILE).write_text(json.dumps(info, indent=1))
    return EmbeddedNode(data_dir, contracts=contracts, **options)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedNode]:
    """A started embedded node (the demo consortium, the Notebook contract) once with
    its ledger in SQLite and once in PostgreSQL."""
    contracts = (*SYSTEM_CONTRACTS, Notebook)
    if request.param == "sqlite":
        node = found(tmp_path / "data", contracts=contracts, batch_timeout_s=0.01)
    else:
        node = found_on_postgres(tmp_path / "data", contracts=contracts, batch_timeout_s=0.01)
    node.start()
    yield node
    node.stop()
