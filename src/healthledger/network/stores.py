"""Where the peers of a network keep their ledgers: each in its folder's
``ledger.sqlite`` by default, or in a PostgreSQL database (``network up --store``,
``network join --store``).

``--store`` takes either one server URL, ``postgresql://user@host/``, meaning a database
per organisation on that server named after the network folder and the organisation
(``<folder>_<org>``, in lower case with ``_`` for anything but letters and digits),
created if the server has none of that name; or ``ORG=URL`` once per organisation that
is to be on PostgreSQL (the others stay on SQLite). A database must be empty when a
peer is founded or joined into it.

Each peer's ``node.json`` records the URL of its database, and nothing else records
it (not ``network.json``); so a URL given here carries no password: the peers, started
in the background with the command's environment, get it from ``~/.pgpass``,
``PGPASSFILE`` or ``PGPASSWORD`` as any libpq client does.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from healthledger.ledger.errors import StorageError
from healthledger.ledger.store import is_postgres_location
from healthledger.network.errors import UNUSABLE, NetworkError

MAX_NAME = 63
"""Bytes of a PostgreSQL identifier."""
WHERE_SECRETS_GO = (
    "give the password in ~/.pgpass, PGPASSFILE or PGPASSWORD, not in the URL "
    "(the peer's node.json records the URL)"
)


@dataclass(frozen=True)
class StoreChoice:
    """What ``--store`` asked for: one server for every organisation, or a database per
    named organisation; neither means SQLite for all."""

    server: str | None = None
    """A server URL: a database per organisation on it."""
    databases: Mapping[str, str] = field(default_factory=dict)
    """Organisation -> URL of its database."""

    def __bool__(self) -> bool:
        return self.server is not None or bool(self.databases)


def parse_stores(values: Sequence[str]) -> StoreChoice:
    """The choice ``--store`` values make; NetworkError (unusable) in one line for a
    value that is neither form, both forms at once, a repeated organisation or server,
    or a URL with a password."""
    servers: list[str] = []
    databases: dict[str, str] = {}
    for value in values:
        if is_postgres_location(value):
            servers.append(value)
            continue
        org, equals, url = value.partition("=")
        if not equals or not org or not is_postgres_location(url):
            raise NetworkError(
                f"--store {value!r} is neither a postgresql:// server URL nor ORG=postgresql://…",
                UNUSABLE,
            )
        if org in databases:
            raise NetworkError(f"--store names {org} twice", UNUSABLE)
        databases[org] = url
    if servers and databases:
        raise NetworkError(
            "--store takes either one server URL (a database per organisation) or ORG=URL "
            "per organisation, not both",
            UNUSABLE,
        )
    if len(servers) > 1:
        raise NetworkError("--store takes one server URL", UNUSABLE)
    for url in (*servers, *databases.values()):
        check_url(url)
    urls = list(databases.values())
    if len(set(urls)) != len(urls):
        raise NetworkError("--store gives two organisations one database", UNUSABLE)
    return StoreChoice(servers[0] if servers else None, databases)


def check_url(url: str) -> None:
    """NetworkError (unusable) if ``url`` carries a password."""
    from healthledger.ledger.postgres_setup import has_password

    if has_password(url):
        raise NetworkError(f"--store: {WHERE_SECRETS_GO}", UNUSABLE)


def database_name(root: Path, org: str) -> str:
    """The database of ``org``'s peer in the network folder ``root`` on a shared server."""
    name = re.sub(r"[^a-z0-9_]", "_", f"{root.absolute().name}_{org}".lower())
    if len(name) > MAX_NAME:
        name = f"{name[: MAX_NAME - 9]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return name


def store_urls(choice: StoreChoice, *, root: Path, orgs: Sequence[str]) -> dict[str, str]:
    """The database URL of each organisation of ``orgs`` that ``choice`` puts on
    PostgreSQL; NetworkError (unusable) if it names another organisation."""
    from healthledger.ledger.postgres_setup import database_url

    unknown = sorted(set(choice.databases) - set(orgs))
    if unknown:
        raise NetworkError(
            f"--store names {', '.join(unknown)}, not an organisation of the network "
            f"({', '.join(orgs)})",
            UNUSABLE,
        )
    if choice.server is not None:
        return {org: database_url(choice.server, database_name(root, org)) for org in orgs}
    return dict(choice.databases)


def prepare_stores(choice: StoreChoice, *, root: Path, orgs: Sequence[str]) -> dict[str, str]:
    """:func:`store_urls`, each database created if its server has none of that name
    and checked to be empty; NetworkError naming the database otherwise."""
    from healthledger.ledger.postgres_setup import check_unused, create_database

    urls = store_urls(choice, root=root, orgs=orgs)
    for org, url in urls.items():
        try:
            create_database(url)
            check_unused(url)
        except StorageError as exc:
            raise NetworkError(f"the ledger of {org}: {exc}") from exc
    return urls
