"""The JetStream orderer: a NATS JetStream cluster puts transactions in one total order
(ARCHITECTURE.md section 5).

Every peer publishes the transactions it is given to one replicated stream, with the
transaction id as the message id so that JetStream drops a resubmission, and every
peer reads the whole stream back with an ordered consumer and cuts blocks from it with
a ``BlockCutter``. Block boundaries and timestamps come from the stream alone (stream
sequence and the stream leader's timestamps), so every peer derives byte-identical
blocks without trusting any one of them to cut. A block closes on size, or on a time
tick in the stream: a peer whose open block has waited the batch timeout publishes a
tick; ticks from different peers for the same block share a message id, so the
stream usually keeps one of them.

The nats client is asyncio; it runs on its own thread and event loop, and the public
methods are synchronous like ``SoloOrderer``'s. Batches are delivered on a separate
thread so a slow commit never stalls the client's heartbeats and flow control.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy, DiscardPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext

from healthledger.ledger.transaction import Transaction
from healthledger.ordering.cutter import BlockCutter, EntryKind, StreamEntry
from healthledger.ordering.nats_reconnect import (
    CLOSE_GRACE_S,
    RECONNECT_WAIT_S,
    ServerRotation,
    abort_closing_socket,
)
from healthledger.ordering.nats_tls import connect_options
from healthledger.ordering.orderer import Deliver, OrderingError
from healthledger.ordering.packing import Outbox, StreamMessage
from healthledger.ordering.solo import wall_clock_ms

log = logging.getLogger(__name__)

T = TypeVar("T")

MSG_ID_HEADER = "Nats-Msg-Id"
_STOP = object()
_RETRYABLE = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
)
_NO_PLACEMENT = 10005
_IN_PROCESS = 10158
"""JetStream error: a message with this id is still being stored (an earlier attempt of
the same publish); asking again later gets its ack, or the duplicate's."""
"""JetStream error: no suitable peers for placement (a member is still offline)."""
_STREAM_IN_USE = 10058
"""JetStream API error code: a stream of that name exists with another configuration."""
_ATTEMPT_TIMEOUT_S = 1.0
"""One publish attempt waits this long for its ack before it is retried (same id)."""
SETUP_ATTEMPTS = 3
"""Times the stream and consumer set-up is asked for when the cluster does not answer."""
MAX_IN_FLIGHT = 256
"""Stream messages awaiting their acks at once (all of a peer's submits together)."""
PING_INTERVAL_S = 2
"""The client pings its server this often. A server cut off by the network sends no
error and no close, only silence: unanswered pings are how a client notices and moves
to another member (the nats client's default, 120 s, left a peer whose server was
partitioned away unable to order for minutes)."""
MAX_OUTSTANDING_PINGS = 3
"""Unanswered pings after which the connection counts as dead (about 8 s of silence)."""
STALE_AFTER_S = 10.0
"""The orderer moves to another member of the cluster when the server it is connected
to has sent nothing for this long (its consumer heartbeats every second when idle: the
server is cut off from this peer), or has acknowledged no publish for this long while
publishes were tried, or has delivered nothing for this long since a publish was
acknowledged (it is cut off from the stream's quorum, or its consumer is). The
client's own pings catch none of these for sure: they queue behind publishes a
blackholed socket never drains, and a server in a minority still answers them."""


def stream_time_ms(reply: str) -> int:
    """Stream timestamp (Unix ms) of a JetStream message, from its ack subject.

    Parsed from the integer nanoseconds in the subject (not nats-py's float-derived
    datetime) so the value is exact."""
    tokens = reply.split(".")
    index = 7 if len(tokens) == 9 else Msg.Ack.Timestamp
    return int(tokens[index]) // 1_000_000


class JetStreamOrderer:
    """Orders transactions through a NATS JetStream stream and cuts blocks from it."""

    persistent = True
    """A published transaction is stored by the stream and outlives this process."""

    def __init__(
        self,
        *,
        servers: Sequence[str],
        stream: str = "HL_TX",
        subject_prefix: str = "hl",
        replicas: int = 3,
        max_block_tx: int = 500,
        batch_timeout_s: float = 0.05,
        start_seq: int = 1,
        publish_timeout_s: float = 15.0,
        connect_timeout_s: float = 5.0,
        reconnect_grace_s: float = 1.0,
        duplicate_window_s: float = 120.0,
        clock: Callable[[], int] = wall_clock_ms,
        name: str | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
        max_message_tx: int = 1,
    ) -> None:
        """``max_in_flight``: publishes awaiting their acks at once; ``max_message_tx``
        above 1 packs the transactions waiting to be published into messages of up to
        that many (``ordering.packing``), ``max_in_flight`` of them in flight."""
        if start_seq < 1:
            raise ValueError("start_seq must be at least 1")
        self.servers = list(servers)
        self.stream = stream
        self.tx_subject = f"{subject_prefix}.tx"
        self.tick_subject = f"{subject_prefix}.tick"
        self._filter = f"{subject_prefix}.*"
        self.replicas = replicas
        self.start_seq = start_seq
        self.publish_timeout_s = publish_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.reconnect_grace_s = reconnect_grace_s
        self.duplicate_window_s = duplicate_window_s
        self.name = name
        self.max_in_flight = max(1, max_in_flight)
        self._outbox = Outbox(
            publish=self._publish,
            max_tx=max_message_tx,
            max_in_flight=self.max_in_flight,
            timeout_s=publish_timeout_s,
        )
        self._timeout_s = batch_timeout_s
        self._clock = clock
        self._cutter = BlockCutter(
            max_block_tx=max_block_tx, batch_timeout_ms=round(batch_timeout_s * 1000)
        )
        self._entries: queue.Queue[object] = queue.Queue()
        self._loop = asyncio.new_event_loop()
        self._loop_thread: threading.Thread | None = None
        self._deliver_thread: threading.Thread | None = None
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._sub: Any = None
        self.stale_after_s = STALE_AFTER_S
        self._failing_since: float | None = None
        self._undelivered_since: float | None = None
        self._last_received = start_seq - 1
        self._behind = 0
        self._running = False
        self._stopped = False
        self._connected = threading.Event()
        self._rotation = ServerRotation()
        self.last_stream_seq = start_seq - 1
        """Stream sequence of the closing message of the last delivered batch."""

    # --- life cycle -------------------------------------------------------------

    def start(self, deliver: Deliver) -> None:
        """Connect, make sure the stream exists, and start consuming from ``start_seq``;
        after an OrderingError (NATS unavailable) it may be called again."""
        if self._stopped:
            raise OrderingError("the orderer was stopped")
        if self._loop_thread is not None:
            raise OrderingError("orderer already started")
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="jetstream-loop", daemon=True
        )
        self._loop_thread.start()
        try:
            self._call(
                self._connect(), self.connect_timeout_s + SETUP_ATTEMPTS * self.publish_timeout_s
            )
        except OrderingError:
            # Leave the orderer as new, so that a later start() can try again.
            self._shutdown_loop()
            self._loop = asyncio.new_event_loop()
            self._loop_thread = None
            self._nc = self._js = None
            self._connected.clear()
            raise
        self._deliver_thread = threading.Thread(
            target=self._run, args=(deliver,), name="jetstream-deliver", daemon=True
        )
        self._deliver_thread.start()
        self._running = True

    def submit(self, tx: Transaction) -> None:
        """Publish ``tx`` and wait until the stream has stored it (on a quorum of
        replicas); a resubmission of the same id is acknowledged as a duplicate."""
        if not self._running or self._nc is None:
            raise OrderingError("the orderer is not running")
        # A client that lost its server usually finds another within a moment; with
        # the whole cluster down, refuse after that moment rather than the ack timeout.
        if not self._connected.wait(self.reconnect_grace_s):
            raise OrderingError(
                "NATS is unavailable: not connected to any server of the ordering cluster"
            )
        (outcome,) = self._call(self._outbox.order([tx]), self.publish_timeout_s + 1.0)
        if outcome is not None:
            raise outcome

    def submit_many(self, transactions: Sequence[Transaction]) -> list[OrderingError | None]:
        """Publish several transactions with up to ``max_in_flight`` messages awaiting
        their acks at once (each transaction acknowledged only once the stream stored
        it; see ``ordering.packing`` for message ids); per transaction, None once
        stored or the OrderingError."""
        if not self._running or self._nc is None:
            raise OrderingError("the orderer is not running")
        if not transactions:
            return []
        if not self._connected.wait(self.reconnect_grace_s):
            raise OrderingError(
                "NATS is unavailable: not connected to any server of the ordering cluster"
            )
        return self._call(self._outbox.order(transactions), self.publish_timeout_s + 2.0)

    def stop(self) -> None:
        """Stop consuming, deliver every batch already cut from what was received, and
        disconnect. An open block is dropped: a restart from ``last_stream_seq + 1``
        reads it again."""
        if self._stopped:
            return
        self._stopped = True
        self._running = False
        if self._loop_thread is None:
            self._loop.close()
            return
        if self._nc is not None and not self._nc.is_connected:
            self._loop.call_soon_threadsafe(abort_closing_socket, self._nc)
        try:
            self._call(self._disconnect(), 10.0)
        except OrderingError as exc:
            log.warning("closing the NATS connection: %s", exc)
        if self._deliver_thread is not None:
            self._entries.put(_STOP)
            self._deliver_thread.join()
        self._shutdown_loop()

    # --- the asyncio side -------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError as exc:
            future.cancel()
            raise OrderingError(f"NATS did not answer within {timeout:g} s") from exc
        except concurrent.futures.CancelledError as exc:
            # The client cancels its own tasks when it closes mid-reconnect.
            raise OrderingError("the NATS client was closed while it answered") from exc

    def _shutdown_loop(self) -> None:
        try:
            self._call(_cancel_tasks(), 5.0)
        except OrderingError:
            log.warning("some NATS client tasks did not finish")
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._loop_thread is not None:
            self._loop_thread.join()
        self._loop.close()

    async def _connect(self) -> None:
        try:
            self._nc = await asyncio.wait_for(self._open_connection(), self.connect_timeout_s)
            self._rotation.connected(self._nc)
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            reason = str(exc) or f"no server answered within {self.connect_timeout_s:g} s"
            raise OrderingError(
                f"NATS is unavailable at {', '.join(self.servers)}: {reason}"
            ) from exc
        self._connected.set()
        self._js = self._nc.jetstream(timeout=self.publish_timeout_s)
        for attempt in range(1, SETUP_ATTEMPTS + 1):
            try:
                await self._ensure_stream()
                await self._subscribe()
                asyncio.get_running_loop().create_task(self._watch_connection())
                return
            except OrderingError as exc:
                # A busy cluster (or one still electing a stream leader) can leave the
                # stream or consumer request unanswered. Asking again is safe: adding the
                # same stream is idempotent, and the client subscribes to a consumer's
                # inbox only once the consumer exists, so an unanswered ephemeral consumer
                # delivers to nobody and expires by itself.
                unanswered = isinstance(exc.__cause__, nats.errors.TimeoutError)
                if not unanswered or attempt == SETUP_ATTEMPTS:
                    await self._nc.close()
                    raise
                log.warning("%s; asking again (%d of %d)", exc, attempt + 1, SETUP_ATTEMPTS)

    async def _subscribe(self) -> None:
        assert self._js is not None
        try:
            self._sub = await self._js.subscribe(
                self._filter,
                stream=self.stream,
                cb=self._on_message,
                ordered_consumer=True,
                idle_heartbeat=1.0,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                config=ConsumerConfig(opt_start_seq=self.start_seq),
            )
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise OrderingError(f"cannot consume stream {self.stream}: {exc}") from exc

    async def _watch_connection(self) -> None:
        """Move to another server when the connected one has sent nothing for
        ``stale_after_s`` (until the loop's tasks are cancelled at stop)."""
        seen = -1
        since = time.monotonic()
        lost_since: float | None = None
        while True:
            await asyncio.sleep(min(1.0, self.stale_after_s / 4))
            nc = self._nc
            if nc is None or not nc.is_connected:
                since = time.monotonic()
                if lost_since is None:
                    lost_since = since
                elif nc is not None and since - lost_since >= CLOSE_GRACE_S:
                    abort_closing_socket(nc)
                    lost_since = since
                continue
            lost_since = None
            waiting = self._undelivered_since
            if waiting is not None and time.monotonic() - waiting >= self.stale_after_s:
                self._undelivered_since = time.monotonic()
                await self._move("delivered nothing since it acknowledged a publish")
                continue
            received = nc.stats["in_msgs"]
            if received != seen:
                seen, since = received, time.monotonic()
                continue
            if time.monotonic() - since >= self.stale_after_s:
                await self._move("sent nothing")
                since = time.monotonic()

    async def _publish_failed(self) -> None:
        """Count a publish attempt that got no ack; move after ``stale_after_s`` of them."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._failing_since >= self.stale_after_s:
            self._failing_since = now
            await self._move("acknowledged no publish")

    async def _move(self, what: str) -> None:
        """Reconnect to another member of the cluster (the client tries the others first)."""
        nc = self._nc
        if nc is None or not nc.is_connected:
            return
        server = nc.connected_url.netloc if nc.connected_url else "the server"
        log.warning(
            "NATS: %s %s for %g s; moving to another server of the ordering cluster",
            server,
            what,
            self.stale_after_s,
        )
        await nc.force_reconnect()

    async def _open_connection(self) -> Client:
        return await nats.connect(
            servers=self.servers,
            name=self.name,
            connect_timeout=max(1, round(self.connect_timeout_s)),
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT_S,
            ping_interval=PING_INTERVAL_S,
            max_outstanding_pings=MAX_OUTSTANDING_PINGS,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            reconnect_to_server_handler=self._rotation,
            **connect_options(),
        )

    async def _ensure_stream(self) -> None:
        assert self._js is not None
        config = StreamConfig(
            name=self.stream,
            subjects=[self.tx_subject, self.tick_subject],
            storage=StorageType.FILE,
            num_replicas=self.replicas,
            duplicate_window=self.duplicate_window_s,
            discard=DiscardPolicy.OLD,
            deny_delete=True,
            deny_purge=True,
        )
        deadline = time.monotonic() + self.publish_timeout_s
        while True:
            try:
                await self._js.add_stream(config)
                return
            except nats.js.errors.BadRequestError as exc:
                # Right after a (re)start the meta leader may still count a member as
                # offline and refuse R3 placement: wait for it rather than fail.
                if exc.err_code == _NO_PLACEMENT and time.monotonic() < deadline:
                    await asyncio.sleep(0.25)
                    continue
                if exc.err_code != _STREAM_IN_USE:
                    raise OrderingError(f"cannot create stream {self.stream}: {exc}") from exc
                break
            except (nats.errors.Error, nats.js.errors.Error) as exc:
                raise OrderingError(f"cannot create stream {self.stream}: {exc}") from exc
        try:
            # Another peer created it first, or an operator tuned it: use it as it is.
            info = await self._js.stream_info(self.stream)
            log.info("using existing stream %s (%s)", self.stream, info.config.subjects)
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise OrderingError(f"cannot read stream {self.stream}: {exc}") from exc

    async def _publish(self, message: StreamMessage, deadline: float) -> None:
        """Publish ``message`` until the stream stored it (retrying with the same
        message id), by ``deadline`` (``time.monotonic()``); OrderingError if not."""
        assert self._js is not None
        what = message.describe()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OrderingError(
                    f"the ordering cluster did not acknowledge {what} within "
                    f"{self.publish_timeout_s:g} s (no quorum?); resubmitting it is safe"
                )
            if not await self._await_connection():
                raise OrderingError(
                    "NATS is unavailable: lost the connection to every server of the "
                    f"ordering cluster; {what} may or may not be ordered, resubmitting "
                    "it is safe"
                )
            try:
                ack = await self._js.publish(
                    self.tx_subject,
                    message.payload,
                    timeout=min(remaining, _ATTEMPT_TIMEOUT_S),
                    stream=self.stream,
                    headers={MSG_ID_HEADER: message.msg_id},
                )
                self._failing_since = None
                # A duplicate's message was delivered before: only a new one is awaited.
                if self._undelivered_since is None and not ack.duplicate:
                    self._undelivered_since = time.monotonic()
                return
            except _RETRYABLE as exc:
                # A stream electing a new leader answers nothing or "unavailable" for a
                # moment; the message id makes a retry safe (JetStream drops duplicates).
                log.debug("publishing %s: %r; retrying", what, exc)
                await self._publish_failed()
                await asyncio.sleep(0.05)
            except nats.js.errors.APIError as exc:
                if exc.err_code != _IN_PROCESS:
                    raise OrderingError(f"the ordering cluster refused {what}: {exc}") from exc
                # An earlier attempt is being stored right now (it may well be ordered):
                # refusing here would report a failure for a transaction that commits.
                log.debug("publishing %s: earlier attempt in process; asking again", what)
                await asyncio.sleep(0.1)
            except (nats.errors.Error, nats.js.errors.Error) as exc:
                raise OrderingError(f"the ordering cluster refused {what}: {exc}") from exc

    async def _await_connection(self) -> bool:
        """True once connected; False if still not after the reconnect grace."""
        assert self._nc is not None
        deadline = time.monotonic() + self.reconnect_grace_s
        while not self._nc.is_connected:
            if time.monotonic() >= deadline or self._nc.is_closed:
                return False
            await asyncio.sleep(0.02)
        return True

    async def _publish_tick(self, msg_id: str) -> None:
        if self._js is None or self._nc is None or not self._nc.is_connected:
            return
        try:
            await self._js.publish(
                self.tick_subject,
                str(self._clock()).encode("ascii"),
                timeout=self.publish_timeout_s,
                stream=self.stream,
                headers={MSG_ID_HEADER: msg_id},
            )
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            log.debug("tick %s not published: %s", msg_id, exc)

    async def _disconnect(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except (nats.errors.Error, nats.js.errors.Error) as exc:
                log.debug("unsubscribe: %s", exc)
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    async def _on_message(self, msg: Msg) -> None:
        metadata = msg.metadata
        seq = metadata.sequence.stream
        if seq <= self._last_received:
            return  # redelivered after the ordered consumer was recreated
        if seq != self._last_received + 1:
            log.warning("stream %s: gap from %d to %d", self.stream, self._last_received, seq)
        self._last_received = seq
        self._undelivered_since = None
        self._behind = metadata.num_pending
        kind = EntryKind.TICK if msg.subject == self.tick_subject else EntryKind.TX
        self._entries.put(StreamEntry(seq, stream_time_ms(msg.reply), kind, msg.data))

    async def _on_error(self, exc: Exception) -> None:
        # Refused connections while reconnecting repeat every 0.25 s per server; the
        # disconnect itself is already reported.
        log.log(logging.DEBUG if isinstance(exc, OSError) else logging.WARNING, "NATS: %s", exc)

    async def _on_disconnected(self) -> None:
        self._connected.clear()
        if not self._stopped:
            log.warning("NATS: disconnected; reconnecting")

    async def _on_reconnected(self) -> None:
        if self._nc is not None:
            self._rotation.connected(self._nc)
        self._connected.set()
        log.info("NATS: reconnected")

    # --- the delivery thread ----------------------------------------------------

    def _run(self, deliver: Deliver) -> None:
        tick_due = 0.0
        ticks = 0
        while True:
            open_seq = self._cutter.open_seq
            wait = None if open_seq is None else max(0.0, tick_due - time.monotonic())
            try:
                item = self._entries.get(timeout=wait)
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            if item is None:
                # The open block has waited the timeout; a peer that is still reading
                # the backlog leaves the ticking to the stream it has not read yet.
                if open_seq is not None and self._behind == 0 and self._entries.empty():
                    self._loop.call_soon_threadsafe(
                        self._spawn_tick, f"tick-{self.stream}-{open_seq}-{ticks}"
                    )
                ticks += 1
                tick_due = time.monotonic() + self._timeout_s
                continue
            assert isinstance(item, StreamEntry)
            batch = self._cutter.feed(item)
            if open_seq is None and self._cutter.open_seq is not None:
                tick_due = time.monotonic() + self._timeout_s
                ticks = 0
            if batch is not None:
                try:
                    deliver(batch)
                except Exception:
                    # A peer must never skip a block: stop delivering and let the
                    # operator restart from the last committed stream sequence.
                    log.exception("delivering batch at stream sequence %s", batch.stream_seq)
                    return
                assert batch.stream_seq is not None
                self.last_stream_seq = batch.stream_seq

    def _spawn_tick(self, msg_id: str) -> None:
        self._loop.create_task(self._publish_tick(msg_id))


async def _cancel_tasks() -> None:
    """Cancel every other task of the running loop and wait for them."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
