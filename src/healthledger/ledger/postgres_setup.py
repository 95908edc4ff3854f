"""Setting a PostgreSQL server up for ledger stores: connection URLs (shown without a
password, pointed at another database), creating a peer's database, and telling whether
a database is empty enough to found or install a ledger in.

Apart from :class:`~healthledger.ledger.postgres_store.PostgresStore`, which keeps a
ledger in such a database, so that a tool that only provisions need not open a store.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from healthledger.ledger.errors import StorageError, StoreUnavailable


def redacted(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{params.get('host') or ''}{port}/{params.get('dbname') or ''}"


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its type's name if it has none)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def has_password(url: str) -> bool:
    """Whether the connection URL ``url`` carries a password (in its user part or its
    query)."""
    try:
        return bool(conninfo_to_dict(url).get("password"))
    except psycopg.ProgrammingError:
        return False


def database_url(server_url: str, dbname: str) -> str:
    """``server_url`` (a ``postgresql://`` URL) naming database ``dbname`` instead of its
    own."""
    parts = urlsplit(server_url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "dbname"])
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(dbname), query, parts.fragment))


def create_database(url: str, *, connect_timeout_s: float = 10.0) -> bool:
    """Create the database ``url`` names (UTF8) if its server has none of that name,
    connected as the URL's user to the server's ``postgres`` database; True if it was
    created. StorageError (StoreUnavailable for a server out of reach) if it cannot."""
    shown = redacted(url)
    try:
        dbname = conninfo_to_dict(url).get("dbname")
    except psycopg.ProgrammingError as exc:
        raise StorageError(f"{shown} is not a PostgreSQL connection URL: {exc}") from exc
    if not dbname:
        raise StorageError(f"{shown} names no database")
    try:
        conninfo = make_conninfo(
            database_url(url, "postgres"), connect_timeout=max(1, round(connect_timeout_s))
        )
        with psycopg.connect(conninfo, autocommit=True) as db:
            if db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
                return False
            db.execute(
                sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(str(dbname))
                )
            )
            return True
    except pg_errors.DuplicateDatabase:
        return False  # made meanwhile by another process
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot reach {shown}: {first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise StorageError(f"cannot create the database {shown}: {first_line(exc)}") from exc


LEDGER_TABLES = (
    ("blocks", "height, hash, header, body"),
    ("txs", "log_index, tx_id, height, idx, code"),
    ("state", "ns, key, value, height, idx"),
    ("history", "ns, key, height, idx, tx_id, value"),
    ("log_nodes", "level, idx, hash"),
)
"""The store's tables a ledger's rows are in, with their columns (``meta`` besides)."""


def held_besides_ledger(db: psycopg.Connection[Any]) -> str | None:
    """What the database of ``db`` holds besides an empty ledger store (a table of
    something else, or a ledger row), in words; None if it holds nothing more."""
    own = {name for name, _ in LEDGER_TABLES} | {"meta"}
    tables = db.execute(
        "SELECT table_schema, table_name, table_schema = current_schema() "
        "FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
        "ORDER BY table_schema, table_name"
    ).fetchall()
    for schema, name, current in tables:
        if not current or name not in own:
            return f"the table {schema}.{name}"
    present = {name for _, name, _ in tables}
    for name, _ in LEDGER_TABLES:
        if name in present:
            query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(name))
            row = db.execute(query).fetchone()
            if row is not None and row[0]:
                return f"rows in its {name} table"
    if "meta" in present:
        row = db.execute(
            "SELECT EXISTS (SELECT 1 FROM meta WHERE key <> 'format_version')"
        ).fetchone()
        if row is not None and row[0]:
            return "rows in its meta table"
    return None


def check_unused(url: str, *, connect_timeout_s: float = 10.0) -> None:
    """StorageError unless the database ``url`` names is empty (no tables, or only the
    tables of a ledger store that holds no block), so a ledger may be put in it."""
    shown = redacted(url)
    try:
        conninfo = make_conninfo(url, connect_timeout=max(1, round(connect_timeout_s)))
        with psycopg.connect(conninfo, autocommit=True) as db:
            held = held_besides_ledger(db)
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot reach {shown}: {first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise StorageError(f"cannot read {shown}: {first_line(exc)}") from exc
    if held is not None:
        raise StorageError(f"{shown} is not empty (it holds {held}): give a new database")
