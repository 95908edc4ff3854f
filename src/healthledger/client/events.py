"""The ledger's event stream as a client reads it: server-sent events, resumed after a
disconnect from the last event id seen (``Last-Event-ID``) or from a height."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from healthledger.client.errors import UnexpectedAnswer

_LAST = 10**15 - 1
"""The largest transaction or event index an event id may name."""


@dataclass(frozen=True)
class Event:
    """One committed ledger event."""

    id: str
    """The event id, ``H`` (a block) or ``H:T:E`` (event E of transaction T in block H)."""
    kind: str
    """``block`` or ``contract``."""
    data: dict[str, Any]
    """The event's JSON data."""

    @property
    def height(self) -> int:
        """The height of the block the event belongs to."""
        return int(self.id.split(":", 1)[0])


def cursor_before(height: int) -> str | None:
    """The event id to resume after so that the stream starts at block ``height``."""
    if height < 0:
        raise ValueError("a height is 0 or more")
    return None if height == 0 else f"{height - 1}:{_LAST}:{_LAST}"


class EventParser:
    """Turns the lines of a ``text/event-stream`` body into events (WHATWG SSE rules:
    comments and unknown fields ignored, an event dispatched at a blank line)."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._kind = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        """The event a line completes, if it does."""
        line = line.rstrip("\r\n")
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._kind = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> Event | None:
        data, kind, event_id = self._data, self._kind, self._id
        self._data, self._kind = [], "message"
        if not data or event_id is None:
            return None
        try:
            parsed = json.loads("\n".join(data))
        except ValueError as exc:
            raise UnexpectedAnswer(f"event {event_id} does not carry JSON data") from exc
        if not isinstance(parsed, dict):
            raise UnexpectedAnswer(f"event {event_id} does not carry a JSON object")
        return Event(event_id, kind, parsed)
