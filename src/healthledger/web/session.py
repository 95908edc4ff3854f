"""Console sessions: which demo identity a browser is logged in as, in an HMAC-signed cookie.

The secret is random per process (``secrets``), so restarting the console logs
everyone out; nothing about sessions is stored server side. Form posts carry a
CSRF token bound to the session's identity.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

COOKIE_NAME = "healthledger_session"
SESSION_SECONDS = 8 * 3600
"""How long a login lasts."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Issues and checks signed session cookies and CSRF tokens."""

    def __init__(
        self,
        *,
        secret: bytes | None = None,
        max_age_s: int = SESSION_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self.max_age_s = max_age_s
        self._clock = clock

    def _mac(self, purpose: str, message: str) -> str:
        digest = hmac.new(self._secret, f"{purpose}\n{message}".encode(), hashlib.sha256)
        return _b64(digest.digest())

    def issue(self, identity: str) -> str:
        """A cookie value naming ``identity`` until the session expires."""
        expires = int(self._clock()) + self.max_age_s
        payload = _b64(f"{identity}\n{expires}".encode())
        return f"{payload}.{self._mac('session', payload)}"

    def read(self, cookie: str | None) -> str | None:
        """The identity of a genuine, unexpired cookie, else None."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            identity, expires = _unb64(payload).decode().split("\n")
            if int(expires) < self._clock():
                return None
        except (ValueError, UnicodeDecodeError):
            return None
        return identity

    def csrf_token(self, identity: str | None) -> str:
        """The token forms must echo for ``identity`` (None: before login)."""
        return self._mac("csrf", identity or "")

    def check_csrf(self, identity: str | None, token: str) -> bool:
        """True if ``token`` is the CSRF token of ``identity``."""
        return hmac.compare_digest(token, self.csrf_token(identity))
