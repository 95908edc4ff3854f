"""Checkpoint exchange between consortium peers: each signs a checkpoint every K blocks
(after its self-check), publishes the note to a replicated JetStream stream with one
subject per organisation, and reads every other organisation's notes back into its
guard; a watch reports delivery that has stopped advancing."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy, DiscardPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext

from healthledger.crypto.keys import SigningKey
from healthledger.ledger.block import BlockHeader
from healthledger.ledger.errors import LedgerError
from healthledger.node.checkpoint import Checkpoint, CheckpointWriter
from healthledger.node.selfcheck import ChainSelfCheck, TamperedBlock
from healthledger.ordering.jetstream import MAX_OUTSTANDING_PINGS, PING_INTERVAL_S
from healthledger.ordering.nats_tls import connect_options
from healthledger.ordering.orderer import OrderingError

log = logging.getLogger(__name__)

STREAM = "HL_TX"
"""The ordering stream of transactions."""
SUBJECT_PREFIX = "hl"
CHECKPOINT_STREAM = "HL_CKPT"
CHECKPOINT_SUBJECT_PREFIX = "hl.ckpt"
CHECKPOINTS_PER_ORG = 64
"""The checkpoint stream keeps each organisation's most recent this many notes."""
STUCK_AFTER_S = 20.0
"""Delivery is stuck when ordered transactions have waited this long without the
peer's stream position advancing."""
IDLE_SWEEP = 32
"""Older blocks the self-check re-derives every few idle seconds (under load, half as
many as were new per checkpoint, so the check stays a small share of a commit's cost)."""
_STREAM_IN_USE = 10058
_NO_PLACEMENT = 10005


class CheckpointExchange:
    """Publishes this peer's signed checkpoint notes to a replicated JetStream stream
    (one subject per organisation) and hands every note read back to ``on_note(org,
    note)``; it also watches the last transaction of the ordering stream for the
    stuck-delivery check. The nats client runs on its own thread and event loop; NATS
    being down only delays the exchange (it keeps reconnecting)."""

    def __init__(
        self,
        *,
        servers: Sequence[str],
        org: str,
        on_note: Callable[[str, str], None],
        stream: str = CHECKPOINT_STREAM,
        subject_prefix: str = CHECKPOINT_SUBJECT_PREFIX,
        replicas: int = 3,
        tx_stream: str = STREAM,
        tx_subject: str = f"{SUBJECT_PREFIX}.tx",
        retry_s: float = 2.0,
        poll_s: float = 2.0,
        on_poll: Callable[[int | None], None] | None = None,
    ) -> None:
        """``on_poll(last_tx_seq)`` is called after each poll of the ordering stream."""
        self.servers = list(servers)
        self.org = org
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.replicas = replicas
        self.tx_stream = tx_stream
        self.tx_subject = tx_subject
        self._on_note = on_note
        self._on_poll = on_poll
        self._retry_s = retry_s
        self._poll_s = poll_s
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._runner: concurrent.futures.Future[None] | None = None
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._latest: tuple[int, str] | None = None
        self.error: str | None = "not connected yet"
        """Why the exchange is not working, or None."""
        self.last_tx_seq: int | None = None
        """Stream sequence of the ordering stream's last transaction, when last polled."""

    def start(self) -> None:
        """Connect and exchange in the background."""
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="checkpoint-exchange", daemon=True
        )
        self._thread.start()
        self._runner = asyncio.run_coroutine_threadsafe(self._run(), self._loop)

    def publish(self, height: int, note: str) -> None:
        """Publish this peer's note at ``height`` (again after a reconnect if need be)."""
        self._latest = (height, note)
        if self._thread is not None:
            asyncio.run_coroutine_threadsafe(self._publish(height, note), self._loop)

    def stop(self) -> None:
        """Disconnect and end the thread (again: nothing)."""
        if self._thread is None:
            if not self._loop.is_closed():
                self._loop.close()
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            future.result(10.0)
        except (TimeoutError, nats.errors.Error) as exc:
            log.warning("closing the checkpoint exchange: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._thread = None

    async def _shutdown(self) -> None:
        # First the exchange's own loop, then the connection, then what the client left.
        if self._runner is not None:
            self._runner.cancel()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        while not await self._connect():
            await asyncio.sleep(self._retry_s)
        if self._latest is not None:
            await self._publish(*self._latest)
        while True:
            await self._poll_tx_stream()
            await asyncio.sleep(self._poll_s)

    async def _connect(self) -> bool:
        try:
            self._nc = await nats.connect(
                servers=self.servers,
                name=f"checkpoints-{self.org}",
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                ping_interval=PING_INTERVAL_S,
                max_outstanding_pings=MAX_OUTSTANDING_PINGS,
                error_cb=self._on_error,
                reconnected_cb=self._on_reconnected,
                **connect_options(),
            )
        except (OSError, TimeoutError, nats.errors.Error, OrderingError) as exc:
            self.error = f"NATS is unavailable: {exc or 'no server answered'}"
            return False
        self._js = self._nc.jetstream(timeout=10.0)
        try:
            await self._ensure_stream()
            await self._js.subscribe(
                f"{self.subject_prefix}.*",
                stream=self.stream,
                cb=self._on_message,
                ordered_consumer=True,
                idle_heartbeat=2.0,
                deliver_policy=DeliverPolicy.ALL,
            )
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            self.error = f"cannot use checkpoint stream {self.stream}: {exc}"
            self._js = None
            await self._nc.close()
            return False
        self.error = None
        return True

    async def _ensure_stream(self) -> None:
        assert self._js is not None
        config = StreamConfig(
            name=self.stream,
            subjects=[f"{self.subject_prefix}.*"],
            storage=StorageType.FILE,
            num_replicas=self.replicas,
            max_msgs_per_subject=CHECKPOINTS_PER_ORG,
            discard=DiscardPolicy.OLD,
            duplicate_window=120.0,
        )
        for _ in range(40):
            try:
                await self._js.add_stream(config)
                return
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code == _STREAM_IN_USE:
                    return  # another peer created it first
                if exc.err_code != _NO_PLACEMENT:
                    raise
                await asyncio.sleep(0.25)  # a member is still offline for the meta leader

    async def _publish(self, height: int, note: str) -> None:
        if self._js is None:
            return  # published once connected
        try:
            await self._js.publish(
                f"{self.subject_prefix}.{self.org}",
                note.encode("utf-8"),
                stream=self.stream,
                headers={"Nats-Msg-Id": f"{self.org}-{height}"},
            )
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            log.warning("checkpoint %d not published yet: %s", height, exc)

    async def _poll_tx_stream(self) -> None:
        assert self._js is not None
        try:
            last = await self._js.get_last_msg(self.tx_stream, self.tx_subject)
        except nats.js.errors.NotFoundError:
            self.last_tx_seq = 0
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            log.debug("ordering stream not readable: %s", exc)
        else:
            self.last_tx_seq = last.seq
        if self._on_poll is not None:
            self._on_poll(self.last_tx_seq)

    async def _on_message(self, msg: Msg) -> None:
        org = msg.subject.rsplit(".", 1)[-1]
        try:
            note = msg.data.decode("utf-8")
        except UnicodeDecodeError:
            note = ""  # reported as malformed by the guard
        self._on_note(org, note)

    async def _on_error(self, exc: Exception) -> None:
        log.debug("checkpoint exchange: NATS: %s", exc)

    async def _on_reconnected(self) -> None:
        if self._latest is not None:
            await self._publish(*self._latest)


class DeliveryWatch:
    """Flags a peer whose delivery has stopped: the ordering stream holds a
    transaction past the peer's stream position, and that position has not moved for
    ``stuck_after_s`` seconds."""

    def __init__(
        self, *, stuck_after_s: float = STUCK_AFTER_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stuck_after_s = stuck_after_s
        self._clock = clock
        self._position = -1
        self._waiting_since: float | None = None

    def observe(self, *, last_tx_seq: int | None, position: int) -> bool:
        """True if delivery is stuck, given the stream's last transaction and the
        peer's stream position now."""
        now = self._clock()
        if last_tx_seq is None or last_tx_seq <= position:
            self._waiting_since = None
        elif self._waiting_since is None or position != self._position:
            self._waiting_since = now
        self._position = position
        return self._waiting_since is not None and now - self._waiting_since >= self.stuck_after_s

    def waiting_s(self) -> float:
        """Seconds the stream has waited for this peer's position to move (0 if not)."""
        return 0.0 if self._waiting_since is None else self._clock() - self._waiting_since


class CheckpointSigner(CheckpointWriter):
    """A checkpoint writer that signs off the commit path: a due header is queued, and
    a background thread re-derives the chain up to it (``ChainSelfCheck``), signs and
    writes the note, hands it to the guard and publishes it. While idle, it keeps
    sweeping older blocks. A block that fails the self-check stops signing."""

    def __init__(
        self,
        folder: Path,
        *,
        every: int,
        name: str,
        key: SigningKey,
        self_check: ChainSelfCheck,
        on_signed: Callable[[Checkpoint, str], None],
        on_tampered: Callable[[str], None],
        idle_sweep_s: float = 5.0,
    ) -> None:
        super().__init__(folder, every=every, name=name, key=key)
        self.self_check = self_check
        self._on_signed = on_signed
        self._on_tampered = on_tampered
        self._idle_sweep_s = idle_sweep_s
        self._queue: queue.Queue[tuple[BlockHeader, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.failed: str | None = None

    def observe(self, header: BlockHeader, *, origin: str) -> str | None:
        """Queue the checkpoint at ``header`` if it is due (always None: signing is
        done in the background)."""
        if header.height and header.height % self.every == 0:
            self._queue.put((header, origin))
        return None

    def start(self) -> None:
        """Check the chain's tail now, then sign in the background."""
        self._thread = threading.Thread(target=self._run, name="checkpoint-signer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Sign what is queued, then end the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        self._check(self.self_check.store.head())
        while True:
            try:
                item = self._queue.get(timeout=self._idle_sweep_s)
            except queue.Empty:
                # Idle: the commit path is quiet, so sweep a larger share of the chain.
                self._check(self.self_check.store.head(), sweep=IDLE_SWEEP)
                continue
            if item is None:
                return
            header, origin = item
            if not self._check(header):
                continue
            try:
                note = super().observe(header, origin=origin)
            except OSError as exc:
                log.warning("checkpoint at height %d not written: %s", header.height, exc)
                continue
            if note is not None:
                self._on_signed(Checkpoint.of(header, origin=origin), note)

    def _check(self, head: BlockHeader | None, *, sweep: int | None = None) -> bool:
        if self.failed is not None or head is None:
            return False
        try:
            self.self_check.check(head, sweep=sweep)
        except TamperedBlock as exc:
            self.failed = str(exc)
            self._on_tampered(self.failed)
            return False
        except LedgerError as exc:
            log.warning("self-check could not read the ledger: %s", exc)
            return False
        return True
