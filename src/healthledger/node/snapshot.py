"""Joining from a snapshot (ARCHITECTURE.md section 5): a new or wiped peer starts
from the ledger up to a height H served by an existing peer, plus the ordering stream
position right after H, and then follows the stream from there.

A snapshot is served as newline-delimited JSON: the first line is
``{"manifest": {...}, "checkpoints": {"<org>": "<signed note>", ...}}``, then one
line per block 0..H, each the block's stored canonical JSON. The manifest names the
chain (``origin``), H, block H's hash, the global log's size and root and the state
root after H, the stream position after H, and ``content_hash``: the hex SHA-256 of
every block line that follows, newlines included.

H is always a checkpoint height, and the serving peer sends the signed checkpoints
(C2SP signed notes) of that height by a majority of the member organisations. The
joiner trusts none of it: it replays every block through a fresh store with the
validator every peer uses (as ``ledger.audit`` does), so every signature, endorsement
policy and validation code is checked again; it recomputes the head and the content
hash and compares them with the manifest, and checks the manifest against notes it
verifies itself with the certificates on the replayed ledger, from a majority of the
organisations that are members at H. Any mismatch refuses the snapshot with a one-line
error and leaves nothing installed.

The stream position after a block is not kept per block in the ledger store, so each
peer records it, as it commits, for every checkpoint-due block (``PositionLog``).
The checkpoints do not cover it, so the joiner checks it against the ordering stream
itself (:func:`verify_position`): the last transaction at or before it must be the
snapshot's last transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import nats.js.errors

from healthledger.contracts.rules import MEMBERSHIP, MembershipResolver
from healthledger.crypto.canonical import canonical_json, parse_canonical
from healthledger.crypto.errors import CryptoError
from healthledger.ledger.block import Block, BlockHeader
from healthledger.ledger.chain import Chain
from healthledger.ledger.errors import InvalidTransaction, LedgerError
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.ledger.state import StateView
from healthledger.ledger.store import LedgerStore
from healthledger.node.checkpoint import (
    NOTE_SUFFIX,
    CheckpointError,
    CheckpointWriter,
    origin_of,
    verify_peer_note,
)
from healthledger.node.checkpoint_exchange import STREAM, SUBJECT_PREFIX
from healthledger.node.consortium_peer import CONSORTIUM_MODE
from healthledger.node.embedded import (
    CHECKPOINT_DIR,
    KEYSTORE_FILE,
    LEDGER_FILE,
    NODE_FILE,
    DataDirError,
)
from healthledger.node.errors import NodeError, NodeUnavailable
from healthledger.node.gateway import PEER_ROLE, PeerDirectory
from healthledger.node.keystore import Keystore
from healthledger.node.peer import new_validator
from healthledger.ordering.cutter import parse_transaction

log = logging.getLogger(__name__)

SNAPSHOT_PATH = "/api/v1/snapshot"
CHECKPOINT_PATH = "/api/v1/network/checkpoints"
MEDIA_TYPE = "application/x-ndjson"
POSITIONS_DIR = "stream_positions"
MANIFEST_FORMAT = 1
MAX_LINE_BYTES = 64 * 1024 * 1024
"""A snapshot line (one block) longer than this is refused without being parsed."""
CANDIDATE_HEIGHTS = 4
"""A serving peer tries at most this many of its latest checkpoint heights."""


class SnapshotError(NodeError):
    """A snapshot cannot be used: malformed, tampered, not vouched for, or not served."""


class SnapshotUnavailable(NodeUnavailable):
    """No snapshot can be served yet (no checkpoint vouched for by a majority)."""


# --- stream positions of checkpoint heights ----------------------------------------


class PositionLog:
    """The ordering stream position after each checkpoint-due block, one small file per
    height under ``folder``; written as the block commits."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def record(self, height: int, position: int) -> None:
        """Remember that the stream continues after ``position`` once block ``height``
        is committed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{height}.tmp"
        tmp.write_text(str(position), encoding="ascii")
        os.replace(tmp, self.folder / str(height))

    def get(self, height: int) -> int | None:
        """The position recorded after block ``height``, or None."""
        try:
            text = (self.folder / str(height)).read_text(encoding="ascii")
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def heights(self) -> list[int]:
        """Heights with a recorded position, highest first."""
        if not self.folder.is_dir():
            return []
        return sorted(
            (int(p.name) for p in self.folder.iterdir() if p.name.isdigit()), reverse=True
        )


class PositionRecorder(CheckpointWriter):
    """Wraps a peer's checkpoint writer: at each checkpoint-due block it first records
    the stream position stored with that block (exact, since it runs on the commit
    path before the next block), then lets the wrapped writer do its work."""

    def __init__(self, inner: CheckpointWriter, *, store: LedgerStore, positions: PositionLog):
        # Not CheckpointWriter.__init__: everything but observe is the wrapped writer's.
        self.folder = inner.folder
        self.every = inner.every
        self.name = inner.name
        self.inner = inner
        self._store = store
        self._positions = positions

    def observe(self, header: BlockHeader, *, origin: str) -> str | None:
        """Record the position if the block is checkpoint-due, then delegate."""
        if header.height and header.height % self.every == 0:
            position = self._store.ordering_position()
            if position > 0:
                try:
                    self._positions.record(header.height, position)
                except OSError as exc:
                    log.warning("stream position at %d not recorded: %s", header.height, exc)
        return self.inner.observe(header, origin=origin)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def record_positions(
    data_dir: Path, peer_checkpoints: CheckpointWriter | None, store: LedgerStore
) -> tuple[PositionLog, CheckpointWriter | None]:
    """The position log of a peer folder and the checkpoint writer to install in its
    peer (the given one wrapped, once) so positions are recorded from now on."""
    positions = PositionLog(data_dir / POSITIONS_DIR)
    if peer_checkpoints is None or isinstance(peer_checkpoints, PositionRecorder):
        return positions, peer_checkpoints
    return positions, PositionRecorder(peer_checkpoints, store=store, positions=positions)


# --- the manifest ------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """What a snapshot holds, to be vouched for by the organisations' checkpoints."""

    origin: str
    """The chain: ``healthledger/<genesis block hash>``."""
    height: int
    """The last block of the snapshot (a checkpoint height)."""
    block_hash: str
    log_size: int
    log_root: str
    """Hex root of the global log after block ``height``."""
    state_root: str
    stream_position: int
    """The ordering stream position after block ``height``: follow from the next one."""
    content_hash: str
    """Hex SHA-256 of the block lines (each with its newline)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "format": MANIFEST_FORMAT,
            "origin": self.origin,
            "height": self.height,
            "block_hash": self.block_hash,
            "log_size": self.log_size,
            "log_root": self.log_root,
            "state_root": self.state_root,
            "stream_position": self.stream_position,
            "content_hash": self.content_hash,
        }

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        """Parse a manifest; SnapshotError naming what is wrong."""
        fields = {
            "format": int,
            "origin": str,
            "height": int,
            "block_hash": str,
            "log_size": int,
            "log_root": str,
            "state_root": str,
            "stream_position": int,
            "content_hash": str,
        }
        if not isinstance(data, Mapping) or set(data) != set(fields):
            raise SnapshotError(f"the manifest must have exactly the fields {sorted(fields)}")
        for name, kind in fields.items():
            if not isinstance(data[name], kind) or isinstance(data[name], bool):
                raise SnapshotError(
                    f"manifest field {name} is not a{'n' * (kind is int)} {kind.__name__}"
                )
        if data["format"] != MANIFEST_FORMAT:
            raise SnapshotError(f"manifest format {data['format']} is not {MANIFEST_FORMAT}")
        if data["height"] < 1 or data["stream_position"] < 1 or data["log_size"] < 1:
            raise SnapshotError("manifest height, log size and stream position must be positive")
        return cls(**{k: v for k, v in data.items() if k != "format"})

    def agrees(self, header: BlockHeader) -> bool:
        """True if ``header`` is the manifest's block (height, hash and roots)."""
        return (
            header.height == self.height
            and header.hash == self.block_hash
            and header.log_size == self.log_size
            and header.log_root == self.log_root
            and header.state_root == self.state_root
        )


def member_orgs(state: StateView) -> list[str]:
    """The member organisations in membership state."""
    return [
        str(v.value["id"])
        for _, v in state.range_state(MEMBERSHIP, "org/", "org0", 10_000)
        if isinstance(v.value, dict) and "id" in v.value
    ]


def vouching(
    notes: Mapping[str, str], *, header: BlockHeader, state: StateView, origin: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Of ``notes`` (by organisation), those that verify as signed by a registered peer
    of that organisation for the chain ``origin`` and agree with ``header``, and why
    each other one does not."""
    good: dict[str, str] = {}
    bad: dict[str, str] = {}
    for org, note in sorted(notes.items()):
        try:
            checkpoint = verify_peer_note(note, org=org, state=state, origin=origin)
        except CheckpointError as exc:
            bad[org] = str(exc)
            continue
        if (
            checkpoint.height != header.height
            or checkpoint.block_hash != header.hash
            or checkpoint.log_root.hex() != header.log_root
            or checkpoint.log_size != header.log_size
            or checkpoint.state_root != header.state_root
        ):
            bad[org] = f"its checkpoint at {checkpoint.height} is of another block"
            continue
        good[org] = note
    return good, bad


# --- serving -----------------------------------------------------------------------


def own_note(data_dir: Path, height: int) -> str | None:
    """This peer's signed checkpoint at ``height``, or None."""
    try:
        return (data_dir / CHECKPOINT_DIR / f"{height}{NOTE_SUFFIX}").read_text(encoding="utf-8")
    except OSError:
        return None


def gather_notes(
    height: int,
    *,
    own_org: str,
    own: str | None,
    directory: PeerDirectory,
    timeout_s: float = 5.0,
) -> dict[str, str]:
    """Signed checkpoints at ``height``: this peer's, and those the other peers of the
    directory serve (unreachable peers and missing notes are skipped; the notes are
    verified by whoever uses them)."""
    notes = {} if own is None else {own_org: own}
    with httpx.Client(timeout=timeout_s) as client:
        for org, url in directory.peers.items():
            if org in notes:
                continue
            try:
                answer = client.get(f"{url}{CHECKPOINT_PATH}/{height}")
            except httpx.HTTPError:
                continue
            if answer.status_code == 200 and len(answer.content) < 16 * 1024:
                notes[org] = answer.text
    return notes


@dataclass(frozen=True)
class SnapshotPlan:
    """A snapshot ready to serve: its manifest and the notes that vouch for it."""

    manifest: Manifest
    checkpoints: dict[str, str]

    def header_line(self) -> bytes:
        """The first line of the snapshot."""
        return (
            canonical_json({"manifest": self.manifest.to_json(), "checkpoints": self.checkpoints})
            + b"\n"
        )


def plan_snapshot(
    store: LedgerStore,
    positions: PositionLog,
    notes_at: Callable[[int], Mapping[str, str]],
) -> SnapshotPlan:
    """The snapshot at the highest recent checkpoint height whose checkpoint a majority
    of the member organisations have signed; SnapshotUnavailable if there is none yet."""
    height = store.height()
    if height == 0:
        raise SnapshotUnavailable("this peer holds no ledger yet")
    origin = origin_of(store.header(0))
    members = member_orgs(store)
    needed = len(members) // 2 + 1
    tried = []
    for candidate in [h for h in positions.heights() if h < height][:CANDIDATE_HEIGHTS]:
        position = positions.get(candidate)
        if position is None:
            continue
        header = store.header(candidate)
        good, _ = vouching(notes_at(candidate), header=header, state=store, origin=origin)
        tried.append(f"{candidate}: {len(good)}")
        if len(good) < needed:
            continue
        digest = hashlib.sha256()
        for h in range(candidate + 1):
            digest.update(store.block_bytes(h) + b"\n")
        manifest = Manifest(
            origin=origin,
            height=candidate,
            block_hash=header.hash,
            log_size=header.log_size,
            log_root=header.log_root,
            state_root=header.state_root,
            stream_position=position,
            content_hash=digest.hexdigest(),
        )
        return SnapshotPlan(manifest, good)
    seen = f" (checkpoints signed by height: {', '.join(tried)})" if tried else ""
    raise SnapshotUnavailable(
        f"no recent checkpoint of this peer is signed by a majority ({needed} of "
        f"{len(members)}) of the organisations yet{seen}; retry after more blocks"
    )


def snapshot_lines(store: LedgerStore, plan: SnapshotPlan) -> Iterator[bytes]:
    """The snapshot's lines: the header line, then blocks 0..H as stored."""
    yield plan.header_line()
    for height in range(plan.manifest.height + 1):
        yield store.block_bytes(height) + b"\n"


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
) -> Manifest:
    """Verify a snapshot (as bytes, in any chunks) and install it as the ledger of the
    peer folder ``data_dir``, whose keystore holds ``org``'s keys; the node then
    resumes the ordering stream right after the manifest's position. ``genesis``: the
    consortium's genesis transaction (canonical bytes) that block 0 must hold;
    ``position_check(position, last_tx_id)``: checks the manifest's stream position
    against the ordering stream (see :func:`verify_position`) before anything is
    installed.

    Raises SnapshotError with a one-line reason, leaving no ledger in ``data_dir``."""
    data_dir = Path(data_dir)
    if (data_dir / NODE_FILE).exists() or (data_dir / LEDGER_FILE).exists():
        raise DataDirError(f"{data_dir} already holds a ledger")
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
        store = SqliteStore(part, synchronous="OFF")
        try:
            manifest, members, last_tx = _replay(_lines(chunks), store, org, keystore, genesis)
        finally:
            store.close()
        if position_check is not None:
            position_check(manifest.stream_position, last_tx)
        with part.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(part, data_dir / LEDGER_FILE)
    except BaseException:
        for leftover in (part, *(part.with_name(part.name + s) for s in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
        raise
    node = {"format": 1, "mode": CONSORTIUM_MODE, "org": org, "organisations": members}
    tmp = data_dir / f".{NODE_FILE}.tmp"
    tmp.write_text(json.dumps(node, indent=1))
    os.replace(tmp, data_dir / NODE_FILE)
    _sync_folder(data_dir)
    return manifest


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
            )
        except (nats.errors.Error, OSError) as exc:
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
                    tx = parse_transaction(msg.data or b"")
                except InvalidTransaction:
                    continue  # every peer's cutter skips it too
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
) -> Iterator[Iterator[bytes]]:
    """The snapshot served by the peer at ``url`` as a byte stream; while the peer
    answers 503 (no vouched checkpoint yet) or serves one ending before
    ``min_height``, it is asked again every ``retry_s`` until ``timeout_s``.
    SnapshotError if it refuses or cannot be reached."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0)) as client:
        while True:
            try:
                with client.stream("GET", url.rstrip("/") + SNAPSHOT_PATH) as answer:
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
