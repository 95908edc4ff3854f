"""Server-sent events: the ledger's event stream over HTTP.

Each SSE event carries ``id:`` (the event id, ``H`` or ``H:T:E``), ``event:`` (its
kind, ``block`` or ``contract``) and ``data:`` (JSON). A client resumes from the
``Last-Event-ID`` header or ``?after=``. Committed events are read in the thread
pool; between blocks a stream awaits an asyncio future that one watcher thread
resolves when a block commits, so no stream holds a thread or blocks the loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from healthledger.api.problems import ApiError, problem
from healthledger.node.events import parse_event_id
from healthledger.node.peer import Peer

READ_BATCH = 200
"""Most events read from the store in one go."""
IDLE_WAIT_S = 10.0
"""How long a stream waits for a block before it looks again and sends a keep-alive."""
KEEPALIVE = b": ping\n\n"
"""An SSE comment: keeps proxies from closing an idle stream; clients ignore it."""
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class BlockSignal:
    """Wakes asyncio waiters, on any event loop, when a new block commits."""

    def __init__(self, peer: Peer, *, poll_s: float = 0.5) -> None:
        self._peer = peer
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._thread: threading.Thread | None = None

    async def wait(self, seen_height: int, timeout: float) -> None:
        """Return once the chain is higher than ``seen_height``, or after ``timeout``."""
        if self._peer.store.height() > seen_height:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (seen_height, loop, future)
        with self._lock:
            self._waiters.append(entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="sse-block-signal", daemon=True
                )
                self._thread.start()
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)

    def _watch(self) -> None:
        while True:
            height = self._peer.store.height()
            with self._lock:
                due = [w for w in self._waiters if w[0] < height]
                self._waiters = [w for w in self._waiters if w[0] >= height]
                if not self._waiters and not due:
                    self._thread = None
                    return
            for _, loop, future in due:
                loop.call_soon_threadsafe(_resolve, future)
            started = time.monotonic()
            woke = self._peer.events.wait_for_height(height, self._poll_s)
            if not woke and time.monotonic() - started < self._poll_s / 2:
                time.sleep(self._poll_s)  # the hub is closed: poll instead of spinning


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def event_cursor(
    after: Annotated[
        str | None, Query(description="Resume after this event id (``H`` or ``H:T:E``).")
    ] = None,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="Resume after this event id.")
    ] = None,
) -> str | None:
    """The event id to resume after (the header wins over the query); 400 if malformed."""
    cursor = last_event_id or after
    if cursor is None or cursor == "":
        return None
    try:
        parse_event_id(cursor)
    except ValueError as exc:
        raise ApiError(problem("bad-request", str(exc))) from exc
    return cursor


def events_router(peer: Peer, signal: BlockSignal) -> APIRouter:
    """The ``GET /api/v1/events`` route."""
    router = APIRouter(tags=["events"])

    @router.get(
        "/api/v1/events",
        response_class=StreamingResponse,
        summary="Follow committed ledger events (server-sent events)",
        responses={
            200: {
                "description": "A `text/event-stream`: each event has `id`, `event` "
                "(`block` or `contract`) and one line of JSON `data`; `: ping` comments "
                "keep an idle stream open",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            400: {"description": "Malformed event id (``after`` or ``Last-Event-ID``)"},
        },
    )
    async def follow_events(
        cursor: Annotated[str | None, Depends(event_cursor)],
        limit: Annotated[
            int | None, Query(ge=1, le=100_000, description="Close after this many events.")
        ] = None,
    ) -> StreamingResponse:
        """Block and contract events after ``after`` (or ``Last-Event-ID``), then new ones
        as blocks commit; closes after ``limit`` events if given."""
        return StreamingResponse(
            _stream(peer, signal, cursor, limit),
            media_type="text/event-stream",
            headers=STREAM_HEADERS,
        )

    return router


async def _stream(
    peer: Peer, signal: BlockSignal, cursor: str | None, limit: int | None
) -> AsyncIterator[bytes]:
    """The stream's bytes. Written here rather than left to FastAPI's SSE support, whose
    keep-alive task raised ``anyio.BrokenResourceError`` into the log (a 500 after the
    200) whenever a client went away; Starlette's streaming response ends this generator
    quietly when the client disconnects."""
    sent = 0
    while limit is None or sent < limit:
        seen = peer.store.height()
        want = READ_BATCH if limit is None else min(READ_BATCH, limit - sent)
        batch = await run_in_threadpool(peer.events.read, cursor, limit=want)
        for event in batch:
            yield sse_frame(event.id, event.kind, event.data)
            cursor = event.id
            sent += 1
        if not batch:
            await signal.wait(seen, IDLE_WAIT_S)
            if peer.store.height() == seen:
                yield KEEPALIVE


def sse_frame(event_id: str, kind: str, data: object) -> bytes:
    """One server-sent event: ``id``, ``event`` and its data as one line of JSON."""
    payload = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return f"id: {event_id}\nevent: {kind}\ndata: {payload}\n\n".encode()
