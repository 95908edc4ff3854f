"""How the orderer's NATS client moves to another server: which one it tries next, and
how a reconnect stuck behind a dead socket is freed (both nats-py defaults fail when a
server is cut off by the network rather than stopped)."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from nats.aio.client import Client, Server

log = logging.getLogger("healthledger.ordering.jetstream")

RECONNECT_WAIT_S = 0.25
"""Pause between reconnect attempts once every server of the pool was tried."""
CLOSE_GRACE_S = 3.0
"""A client that lost its server reconnects only once the old socket has closed, and
closing waits for unsent bytes to reach the server (nats-io/nats.py#671): to a server
cut off by the network that is the kernel's retransmission time, about 15 minutes. A
reconnect still waiting after this long has its old socket aborted
(:func:`abort_closing_socket`)."""


class ServerRotation:
    """The server a reconnecting client tries next (``reconnect_to_server_handler``).

    Every other server of the pool (in random order) before the one just left: the
    client's own choice is a fresh shuffle per attempt, which after a move away from a
    server cut off from its cluster (it still answers, but acknowledges nothing) picked
    that same server again one time in three. A full round is tried without waiting;
    later rounds wait ``RECONNECT_WAIT_S`` between attempts."""

    def __init__(self) -> None:
        self._left: str | None = None
        self._order: list[str] | None = None
        self._tries = 0

    def connected(self, nc: Client) -> None:
        """``nc`` is connected: the server it is on is the one to leave last next time."""
        self._left = nc.connected_url.netloc if nc.connected_url else None
        self._order = None

    def __call__(self, servers: list[Server], _info: dict[str, Any]) -> tuple[Server, float]:
        if self._order is None:
            netlocs = [s.uri.netloc for s in servers]
            random.shuffle(netlocs)
            netlocs.sort(key=lambda n: n == self._left)  # stable: the one left goes last
            self._order, self._tries = netlocs, 0
        by_netloc = {s.uri.netloc: s for s in servers}
        candidates = [n for n in self._order if n in by_netloc] or list(by_netloc)
        chosen = by_netloc[candidates[self._tries % len(candidates)]]
        delay = 0.0 if self._tries < len(candidates) else RECONNECT_WAIT_S
        self._tries += 1
        return chosen, delay


def abort_closing_socket(nc: Client) -> None:
    """Abort the socket of ``nc`` if it is closing but not closed: unsent bytes to a
    server that cannot be reached would hold it (and the client's reconnect, or close)
    for the kernel's retransmission time. A socket that is not closing is left alone.

    The nats client offers no public handle on its socket, hence the private reads;
    without ``_transport`` (another client version) nothing is done."""
    writer = getattr(getattr(nc, "_transport", None), "_io_writer", None)
    transport = getattr(writer, "transport", None)
    if isinstance(transport, asyncio.Transport) and transport.is_closing():
        log.warning("NATS: the lost server's connection did not close; aborting it")
        transport.abort()
