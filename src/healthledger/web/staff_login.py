"""Staff logins outside the demo: sessions that hold a staff member's unlocked key in
memory only, and the limits on login attempts.

A session is a random id in the HMAC-signed cookie (``SessionSigner``); the key it
unlocked lives in this process's table until logout or expiry, never on disk or in
the cookie, so restarting the console logs everyone out.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from healthledger.client.identity import Identity
from healthledger.node.staff import Unlocked

MAX_FAILURES_PER_IDENTITY = 5
MAX_FAILURES_PER_ADDRESS = 20
FAILURE_WINDOW_S = 15 * 60
"""Failed logins counted over this window, per identity and per client address."""
MAX_TRACKED = 10_000
"""Past this many identities and addresses with failures, those gone quiet are dropped."""


@dataclass(frozen=True)
class StaffSession:
    """A logged-in staff member: their identity (certificate and unlocked key)."""

    identity: Identity
    expires: float


class StaffSessions:
    """The table of open staff sessions, by session id."""

    def __init__(self, *, max_age_s: int, clock: Callable[[], float] = time.time) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._open: dict[str, StaffSession] = {}
        self._lock = threading.Lock()

    def open(self, unlocked: Unlocked) -> str:
        """A new session for ``unlocked``; its id (for the signed cookie)."""
        identity = Identity(certificate=unlocked.certificate, key=unlocked.key)
        session_id = secrets.token_urlsafe(24)
        with self._lock:
            self._forget_expired()
            self._open[session_id] = StaffSession(identity, self._clock() + self.max_age_s)
        return session_id

    def get(self, session_id: str | None) -> StaffSession | None:
        """The open, unexpired session of ``session_id``; an expired one is forgotten."""
        if session_id is None:
            return None
        with self._lock:
            session = self._open.get(session_id)
            if session is not None and session.expires < self._clock():
                del self._open[session_id]
                return None
            return session

    def close(self, session_id: str | None) -> None:
        """Forget a session and the key it held."""
        with self._lock:
            self._open.pop(session_id or "", None)

    def _forget_expired(self) -> None:
        now = self._clock()
        for session_id in [s for s, v in self._open.items() if v.expires < now]:
            del self._open[session_id]


class LoginThrottle:
    """Refuses logins after too many failures for one identity or from one address."""

    def __init__(
        self,
        *,
        per_identity: int = MAX_FAILURES_PER_IDENTITY,
        per_address: int = MAX_FAILURES_PER_ADDRESS,
        window_s: float = FAILURE_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {"identity": per_identity, "address": per_address}
        self._window_s = window_s
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= self._clock() - self._window_s:
            times.popleft()
        return times

    def wait(self, identity: str, address: str) -> tuple[str, float] | None:
        """None if a login may be tried now, else (what is limited, seconds to wait)."""
        with self._lock:
            for kind, value in (("identity", identity), ("address", address)):
                times = self._recent((kind, value))
                if len(times) >= self._limits[kind]:
                    return kind, times[0] + self._window_s - self._clock()
        return None

    def failed(self, identity: str, address: str) -> None:
        """Count a failed login against ``identity`` and ``address``."""
        with self._lock:
            if len(self._failures) > MAX_TRACKED:
                # Many made-up identities must not grow the table without bound.
                for key in list(self._failures):
                    if not self._recent(key):
                        del self._failures[key]
            for key in (("identity", identity), ("address", address)):
                self._recent(key).append(self._clock())

    def succeeded(self, identity: str) -> None:
        """A successful login clears its identity's failures (not its address's)."""
        with self._lock:
            self._failures.pop(("identity", identity), None)
