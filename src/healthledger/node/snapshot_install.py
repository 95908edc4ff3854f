"""The joining side of a snapshot (see ``node.snapshot`` for the format): fetching it
from an existing peer, verifying everything in it and installing it as a new peer's
ledger, and checking its stream position against the ordering stream.

The joiner trusts none of it: it replays every block through a fresh store with the
validator every peer uses (as ``ledger.audit`` does), so every signature, endorsement
policy and validation code is checked again; it recomputes the head and the content
hash and compares them with the manifest, and checks the manifest against notes it
verifies itself with the certificates on the replayed ledger, from a majority of the
organisations that are members at H. Any mismatch refuses the snapshot with a one-line
error and leaves nothing installed.

The checkpoints do not cover the stream position, so the joiner checks it against the
ordering stream itself (:func:`verify_position`): the last transaction at or before it
must be the snapshot's last transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import nats
import nats.errors
import nats.js.errors

from healthledger.contracts.rules import MembershipResolver
from healthledger.crypto.canonical import parse_canonical
from healthledger.crypto.errors import CryptoError
from healthledger.ledger.block import Block, BlockHeader
from healthledger.ledger.chain import Chain
from healthledger.ledger.durable import replace_durably, write_durably
from healthledger.ledger.errors import InvalidTransaction, LedgerError, StorageError
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.ledger.store import is_postgres_location
from healthledger.node.checkpoint import origin_of
from healthledger.node.checkpoint_exchange import STREAM, SUBJECT_PREFIX
from healthledger.node.consortium_peer import CONSORTIUM_MODE
from healthledger.node.embedded import KEYSTORE_FILE, LEDGER_FILE, NODE_FILE, DataDirError
from healthledger.node.endorsers import new_validator
from healthledger.node.gateway import PEER_ROLE
from healthledger.node.keystore import Keystore
from healthledger.node.parts import STORE_KEY
from healthledger.node.peer_tls import peer_client
from healthledger.node.snapshot import (
    MAX_LINE_BYTES,
    SNAPSHOT_PATH,
    Manifest,
    SnapshotError,
    member_orgs,
    vouching,
)
from healthledger.ordering.nats_tls import connect_options
from healthledger.ordering.orderer import OrderingError
from healthledger.ordering.packing import unpack

# --- joining -----------------------------------------------------------------------


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Split a byte stream into lines (without their newline); refuses a line longer
    than MAX_LINE_BYTES and a stream that does not end with a newline."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while True:
            end = pending.find(b"\n")
            if end < 0:
                break
            yield bytes(pending[:end])
            del pending[: end + 1]
        if len(pending) > MAX_LINE_BYTES:
            raise SnapshotError(f"a snapshot line is longer than {MAX_LINE_BYTES} bytes")
    if pending:
        raise SnapshotError("the snapshot ends in the middle of a line (truncated)")


def install_snapshot(
    chunks: Iterator[bytes],
    *,
    data_dir: Path,
    org: str,
    genesis: bytes | None = None,
    position_check: Callable[[int, str], None] | None = None,
    store: str | None = None,
) -> Manifest:
    """Verify a snapshot (as bytes, in any chunks) and install it as the ledger of the
    peer folder ``data_dir``, whose keystore holds ``org``'s keys; the node then
    resumes the ordering stream right after the manifest's position. ``genesis``: the
    consortium's genesis transaction (canonical bytes) that block 0 must hold;
    ``position_check(position, last_tx_id)``: checks the manifest's stream position
    against the ordering stream (see :func:`verify_position`) before anything is
    installed; ``store``: the URL of an empty PostgreSQL database the verified ledger
    is copied into, in one transaction, instead of the folder's ``ledger.sqlite``
    (node.json then names it).

    Raises SnapshotError with a one-line reason, leaving no ledger in ``data_dir`` (nor
    in ``store``)."""
    data_dir = Path(data_dir)
    if (data_dir / NODE_FILE).exists() or (data_dir / LEDGER_FILE).exists():
        raise DataDirError(f"{data_dir} already holds a ledger")
    if store is not None:
        check_store(store)
    keystore = Keystore.load(data_dir / KEYSTORE_FILE)
    others = sorted({e.cert.org for e in keystore.entries()} - {org})
    if others:
        raise SnapshotError(f"the keystore of {org}'s peer holds keys of {', '.join(others)}")
    if not keystore.peers():
        raise SnapshotError(f"the keystore holds no peer identity of {org}")
    part = data_dir / f"{LEDGER_FILE}.part"
    for stale in (part, *(part.with_name(part.name + s) for s in ("-journal", "-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    try:
        replay = SqliteStore(part, synchronous="OFF")
        try:
            manifest, members, last_tx = _replay(_lines(chunks), replay, org, keystore, genesis)
        finally:
            replay.close()
        if position_check is not None:
            position_check(manifest.stream_position, last_tx)
        if store is None:
            replace_durably(part, data_dir / LEDGER_FILE)
        else:
            _copy_into(part, store)
    except BaseException:
        _remove(part)
        raise
    if store is not None:
        _remove(part)  # copied into the database: the replay's file is no ledger of the peer
    node = {"format": 1, "mode": CONSORTIUM_MODE, "org": org, "organisations": members}
    if store is not None:
        node[STORE_KEY] = store
    write_durably(data_dir / NODE_FILE, json.dumps(node, indent=1).encode("utf-8"))
    return manifest


def _remove(part: Path) -> None:
    """Remove the replay's SQLite file ``part`` and its write-ahead log."""
    for leftover in (part, *(part.with_name(part.name + s) for s in ("-wal", "-shm"))):
        leftover.unlink(missing_ok=True)


def check_store(url: str) -> None:
    """SnapshotError unless ``url`` names an empty PostgreSQL database a snapshot can be
    installed into (checked again, under lock, as it is installed)."""
    if not is_postgres_location(url):
        raise SnapshotError(f"{url!r} is not a postgresql:// URL")
    try:
        from healthledger.ledger.postgres_setup import check_unused

        check_unused(url)
    except ImportError as exc:
        raise SnapshotError(
            "a PostgreSQL ledger store needs the psycopg driver: "
            "pip install 'healthledger[postgresql]'"
        ) from exc
    except StorageError as exc:
        raise SnapshotError(f"cannot install the snapshot: {exc}") from exc


def _copy_into(ledger_file: Path, url: str) -> None:
    """Copy the verified SQLite ledger ``ledger_file`` into the empty database ``url``,
    table by table in one transaction on a server that is durable (PostgresStore checks
    it, and makes the tables the store has)."""
    from healthledger.ledger.postgres_store import PostgresStore

    try:
        store = PostgresStore(url)
        try:
            store.install(ledger_file)
        finally:
            store.close()
    except StorageError as exc:
        raise SnapshotError(f"cannot install the snapshot: {exc}") from exc


def _replay(
    lines: Iterator[bytes],
    store: SqliteStore,
    org: str,
    keystore: Keystore,
    genesis: bytes | None,
) -> tuple[Manifest, list[str], str]:
    first = next(lines, None)
    if first is None:
        raise SnapshotError("the snapshot is empty")
    try:
        header_line = parse_canonical(first)
    except CryptoError as exc:
        raise SnapshotError(f"the snapshot's first line is not canonical JSON: {exc}") from exc
    if not isinstance(header_line, Mapping) or set(header_line) != {"manifest", "checkpoints"}:
        raise SnapshotError("the snapshot's first line must hold 'manifest' and 'checkpoints'")
    manifest = Manifest.from_json(header_line["manifest"])
    notes = header_line["checkpoints"]
    if not isinstance(notes, Mapping) or not all(isinstance(n, str) for n in notes.values()):
        raise SnapshotError("the snapshot's checkpoints must map organisations to notes")
    chain = Chain(store, new_validator())
    digest = hashlib.sha256()
    head: BlockHeader | None = None
    last_tx = ""
    for height, line in enumerate(lines):
        if height > manifest.height:
            raise SnapshotError(f"the snapshot holds blocks after its height {manifest.height}")
        digest.update(line + b"\n")
        head, last = _replay_block(chain, line, height, manifest, genesis)
        last_tx = last or last_tx
    if head is None or head.height != manifest.height:
        got = "no block" if head is None else f"blocks up to {head.height}"
        raise SnapshotError(f"the snapshot holds {got}, not up to {manifest.height}")
    if digest.hexdigest() != manifest.content_hash:
        raise SnapshotError("the snapshot's content hash does not match its manifest")
    if not manifest.agrees(head):
        raise SnapshotError(
            f"the replayed block {head.height} ({head.hash}) does not match the manifest"
        )
    origin = origin_of(store.header(0))
    if manifest.origin != origin:
        raise SnapshotError(f"the manifest names another chain ({manifest.origin})")
    members = member_orgs(store)
    good, bad = vouching(notes, header=head, state=store, origin=origin)
    needed = len(members) // 2 + 1
    if len(good) < needed:
        refused = "; ".join(f"{o}: {why}" for o, why in bad.items())
        raise SnapshotError(
            f"the snapshot at height {head.height} is vouched for by {len(good)} of "
            f"{len(members)} organisations' checkpoints, {needed} needed"
            + (f" (refused: {refused})" if refused else "")
        )
    resolver = MembershipResolver()
    registered = [
        i
        for i, _ in keystore.peers()
        if (identity := resolver.resolve(i, store)) is not None
        and not identity.revoked
        and identity.role == PEER_ROLE
    ]
    if not registered:
        names = ", ".join(i for i, _ in keystore.peers())
        raise SnapshotError(
            f"{names} is not a registered peer of {org} at height {head.height}: admit it "
            "first (membership.register_identity), then join from a later snapshot"
        )
    return manifest, members, last_tx


def _replay_block(
    chain: Chain, line: bytes, height: int, manifest: Manifest, genesis: bytes | None
) -> tuple[BlockHeader, str]:
    """Replay one snapshot block and check it is exactly the block the replay makes."""
    try:
        block = Block.from_json(parse_canonical(line))
        if block.canonical != line:
            raise SnapshotError(f"block {height}: not in canonical form")
        header = block.header
        if header.height != height:
            raise SnapshotError(f"block {height}: its header says height {header.height}")
        if height == 0:
            if len(block.transactions) != 1:
                raise SnapshotError("block 0: genesis must hold exactly one transaction")
            if genesis is not None and block.transactions[0].canonical != genesis:
                raise SnapshotError("block 0: not the consortium's genesis")
            replayed = chain.commit_genesis(block.transactions[0], timestamp=header.timestamp)
        else:
            replayed = chain.append(
                block.transactions,
                timestamp=header.timestamp,
                stream_seq=manifest.stream_position if height == manifest.height else None,
            )
    except (LedgerError, CryptoError) as exc:
        raise SnapshotError(f"block {height}: {exc}") from exc
    if replayed.codes != block.codes:
        raise SnapshotError(f"block {height}: its validation codes differ from the replay")
    if replayed.header != header:
        diff = [k for k, v in replayed.header.to_json().items() if header.to_json()[k] != v]
        raise SnapshotError(f"block {height}: header field(s) {diff} differ from the replay")
    return replayed.header, block.transactions[-1].tx_id if block.transactions else ""


# --- the stream position ---------------------------------------------------------


def verify_position(
    servers: Sequence[str],
    *,
    position: int,
    last_tx_id: str,
    stream: str = STREAM,
    subject_prefix: str = SUBJECT_PREFIX,
    timeout_s: float = 10.0,
    max_back: int = 100_000,
) -> None:
    """Check a snapshot's stream position against the ordering stream itself: the last
    transaction message at or before ``position`` must be ``last_tx_id``, the last
    transaction of the snapshot's last block. Then the stream after ``position`` holds
    exactly what follows that block (only ticks, which close nothing in an empty
    cutter, can lie between), so resuming there cuts the blocks every peer cuts.
    SnapshotError otherwise, or if the stream cannot be read."""
    tx_subject = f"{subject_prefix}.tx"

    async def check() -> None:
        try:
            client = await nats.connect(
                servers=list(servers),
                connect_timeout=timeout_s,
                max_reconnect_attempts=2,
                allow_reconnect=True,
                **connect_options(),
            )
        except (nats.errors.Error, OSError, OrderingError) as exc:
            raise SnapshotError(
                f"cannot reach the ordering cluster to check the position: {exc}"
            ) from exc
        try:
            js = client.jetstream(timeout=timeout_s)
            for seq in range(position, max(position - max_back, 0), -1):
                try:
                    msg = await js.get_msg(stream, seq)
                except nats.js.errors.NotFoundError as exc:
                    raise SnapshotError(
                        f"the ordering stream {stream} holds no message {seq}: the snapshot's "
                        f"position {position} is not in it"
                    ) from exc
                if msg.subject != tx_subject:
                    continue
                try:
                    carried, _ = unpack(msg.data or b"")
                except InvalidTransaction:
                    continue  # every peer's cutter skips it too
                if not carried:
                    continue
                # A packed message closes a block with the last transaction it carries.
                tx = carried[-1]
                if tx.tx_id != last_tx_id:
                    raise SnapshotError(
                        f"the snapshot's stream position {position} does not follow its last "
                        f"block (the stream's last transaction there is {tx.tx_id})"
                    )
                return
            raise SnapshotError(f"no transaction at or before stream position {position}")
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise SnapshotError(f"cannot read the ordering stream {stream}: {exc}") from exc
        finally:
            await client.close()

    asyncio.run(check())


def stream_check(servers: Sequence[str]) -> Callable[[int, str], None]:
    """A ``position_check`` for :func:`install_snapshot` that asks the ordering cluster
    at ``servers``."""

    def check(position: int, last_tx: str) -> None:
        verify_position(servers, position=position, last_tx_id=last_tx)

    return check


# --- fetching ----------------------------------------------------------------------


@contextlib.contextmanager
def fetch_snapshot(
    url: str,
    *,
    min_height: int = 0,
    timeout_s: float = 60.0,
    retry_s: float = 2.0,
    say: Callable[[str], None] | None = None,
    reads: httpx.Auth | None = None,
) -> Iterator[Iterator[bytes]]:
    """The snapshot served by the peer at ``url`` as a byte stream, asked with the
    member's signed reads ``reads`` (a snapshot is for consortium members); while the peer
    answers 503 (no vouched checkpoint yet) or serves one ending before
    ``min_height``, it is asked again every ``retry_s`` until ``timeout_s``.
    SnapshotError if it refuses or cannot be reached."""
    deadline = time.monotonic() + timeout_s
    with peer_client(timeout=httpx.Timeout(30.0, connect=5.0)) as client:
        while True:
            try:
                with client.stream(
                    "GET", url.rstrip("/") + SNAPSHOT_PATH, auth=reads or httpx.USE_CLIENT_DEFAULT
                ) as answer:
                    served = answer.headers.get("X-Snapshot-Height", "")
                    early = answer.status_code == 200 and (
                        not served.isdigit() or int(served) < min_height
                    )
                    if answer.status_code == 200 and not early:
                        yield answer.iter_bytes()
                        return
                    if early:
                        reason = (
                            f"the latest vouched snapshot ends at {served}, before {min_height}"
                        )
                    else:
                        answer.read()
                        reason = _detail(answer)
                    if (answer.status_code != 503 and not early) or time.monotonic() > deadline:
                        raise SnapshotError(f"{url} serves no snapshot: {reason}")
            except httpx.HTTPError as exc:
                raise SnapshotError(f"cannot fetch the snapshot from {url}: {exc}") from exc
            if say is not None:
                say(f"waiting for a vouched snapshot: {reason}")
            time.sleep(retry_s)


def _detail(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return f"HTTP {answer.status_code}"
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])
    return f"HTTP {answer.status_code}"
