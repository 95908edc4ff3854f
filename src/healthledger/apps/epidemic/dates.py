"""Calendar dates in case reports: whole days since 1970-01-01 (UTC), never floats."""

from __future__ import annotations

import datetime

EPOCH = datetime.date(1970, 1, 1)
DAY_MS = 86_400_000


def day_number(value: int | str) -> int:
    """Days since the epoch of an ISO date string (``2026-11-20``) or a day number;
    ValueError if it is neither or lies before the epoch."""
    if isinstance(value, bool):
        raise ValueError("a date must be an ISO date string or a day number")
    if isinstance(value, int):
        day = value
    else:
        try:
            day = (datetime.date.fromisoformat(value) - EPOCH).days
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from exc
    if day < 0:
        raise ValueError("a date before 1970-01-01 is not accepted")
    return day


def day_of_ms(timestamp_ms: int) -> int:
    """The day number (UTC) of a Unix-millisecond timestamp."""
    return timestamp_ms // DAY_MS


def iso(day: int) -> str:
    """The ISO string of a day number."""
    return (EPOCH + datetime.timedelta(days=day)).isoformat()
