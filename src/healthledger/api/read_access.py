"""Who may read what: the API's public routes, its members' routes, and the check.

Every request to the API is one of:

- **public**: proofs, checkpoints, status (health), the problem types, the consortium's
  organisations (their CA certificates verify everything else), public verification
  (a pack, a credential, a health code, a proof), the public statistics release and the
  code lists, the credentials trust list, status lists, health-code rules and JWKS, and
  a holder's wallet claiming an offered credential (its one-time token is the right);
- **signed by its body**: a proposal or transaction sent to ``/invoke``, ``/query``,
  ``/proposals/endorse``, ``/transactions`` (or many to their ``/batch``) or
  ``/network/endorse`` carries its creator's signature, which the node checks as it
  always has;
- **demo custody**: ``POST /api/v1/demo/invoke`` and ``/demo/query`` exist only in the
  demo, where the server holds every key and its identity picker lets anyone act as
  anyone; guarding them would pretend otherwise;
- **members only**: everything else under ``/api/`` (blocks, transactions, receipts,
  identities, key history, application state and events, the event stream, snapshots,
  workers, applications' custody calls) and ``/metrics`` (per-contract call counts say how many
  cases are being reported before any public release). A member proves itself with a
  signed read (crypto.signed_reads) or a console session cookie; ``/metrics`` also
  answers the node's own host (a scraper beside the node).

The console's pages are not API routes: they keep their own login. A request with no
credentials is refused 401 ``unauthenticated`` naming how to authenticate; a signature
that is malformed, tampered, stale or replayed 401 ``bad-read-signature``; an identity
that is unknown, revoked or expired 403 ``access-denied``.
"""

from __future__ import annotations

import enum
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from healthledger.api.problems import PROBLEM_MEDIA_TYPE, Problem, problem
from healthledger.crypto.certs import load_certificate
from healthledger.crypto.errors import CryptoError
from healthledger.crypto.keys import decode_b64, verify_signature
from healthledger.crypto.signed_reads import (
    IDENTITY_HEADER,
    NONCE_HEADER,
    NONCE_RE,
    READ_HEADERS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    read_message,
    wall_clock_ms,
)

SKEW_MS = 60_000
"""How far a signed read's timestamp may be from the node's clock, either way."""
REPLAY_CACHE_SIZE = 200_000
"""Nonces remembered inside the skew window; past this, signed reads wait (503)."""
HOW_TO_AUTHENTICATE = (
    "sign the request as a registered identity (headers HL-Identity, HL-Timestamp, "
    "HL-Nonce, HL-Signature: see /docs, 'Who may read what') or log in to the console"
)
WWW_AUTHENTICATE = 'HL-Signature realm="healthledger members", headers="{}"'.format(
    " ".join(h.lower() for h in READ_HEADERS)
)


class Access(enum.Enum):
    """Who may make a request."""

    PUBLIC = "public"
    SIGNED_BODY = "signed body"
    MEMBERS = "members"
    DEMO_CUSTODY = "demo custody"
    """The demo's own calls, served only in demo custody: open, as its identity picker is."""
    CONSOLE = "console"
    """Not an API route: a console page, which keeps its own login."""


_ANY = ("GET", "HEAD", "POST")
_PUBLIC: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = tuple(
    (methods, re.compile(pattern))
    for methods, pattern in (
        (("GET", "HEAD"), r"/api/v1/status"),
        (("GET", "HEAD"), r"/api/v1/checkpoints(/.*)?"),
        (_ANY, r"/api/v1/proofs/(inclusion/[^/]+|consistency|verify)"),
        (("GET", "HEAD"), r"/api/v1/problems(/[^/]+)?"),
        (("GET", "HEAD"), r"/api/v1/consortium/organisations"),
        (("GET", "HEAD"), r"/api/v1/network/(checkpoints/[^/]+|peers)"),
        (_ANY, r"/api/v1/supply/(verify|verify/photo|qr\.svg|qr\.png)"),
        (("GET", "HEAD"), r"/api/v1/epidemic/(public/release|diseases|lab-tests|vaccines)"),
        (("GET", "HEAD"), r"/api/v1/credentials/(trust-list|trust-list/changes|status)"),
        (("GET", "HEAD"), r"/api/v1/credentials/status-lists/[^/]+"),
        (("POST",), r"/api/v1/credentials/(verify|verify/photo|healthcode/verify)"),
        # a holder's wallet claims an offered credential with a one-time token
        (("POST",), r"/api/v1/credentials/claims/[A-Za-z0-9_-]{1,64}"),
        (("GET", "HEAD"), r"/api/v1/credentials/healthcode/(rules|changes|jwks\.json)"),
        # A holder's page is public (the holder's own phone in the demo); its QR code
        # is refreshed from here, and shows no more than the page does.
        (("GET", "HEAD"), r"/api/v1/credentials/healthcode/holders/[^/]+/qr"),
        # A holder asks its doses due with its own key-bound presentation.
        (("POST",), r"/api/v1/credentials/doses-due"),
    )
)
_DEMO_CUSTODY = re.compile(r"/api/v1/demo/(invoke|query)")
"""Served only in demo custody, where the identity picker lets anyone act as anyone."""
_SIGNED_BODY = re.compile(
    r"/api/v1/(invoke|query|proposals/endorse(/batch)?|transactions(/batch)?|network/endorse)"
)
METRICS_PATH = "/metrics"
_LOOPBACK = {"127.0.0.1", "::1"}


def access_of(method: str, path: str) -> Access:
    """Who may make a ``method`` request of ``path`` (the table in the module doc)."""
    method = method.upper()
    if not path.startswith("/api/") and path != METRICS_PATH:
        return Access.CONSOLE
    if method == "POST" and _SIGNED_BODY.fullmatch(path):
        return Access.SIGNED_BODY
    if method == "POST" and _DEMO_CUSTODY.fullmatch(path):
        return Access.DEMO_CUSTODY
    for methods, pattern in _PUBLIC:
        if method in methods and pattern.fullmatch(path):
            return Access.PUBLIC
    return Access.MEMBERS


class ReplayCache:
    """The nonces of signed reads seen inside the skew window, oldest first."""

    def __init__(self, *, window_ms: int = SKEW_MS, max_entries: int = REPLAY_CACHE_SIZE):
        self._window_ms = window_ms
        self._max = max_entries
        self._seen: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._lock = threading.Lock()

    def first_use(self, identity: str, nonce: str, *, now_ms: int) -> bool | None:
        """True the first time ``(identity, nonce)`` is seen, False on a replay, None if
        the cache is full of unexpired nonces (the request must wait)."""
        with self._lock:
            while self._seen:
                oldest, seen_at = next(iter(self._seen.items()))
                if seen_at >= now_ms - 2 * self._window_ms:
                    break
                del self._seen[oldest]
            if (identity, nonce) in self._seen:
                return False
            if len(self._seen) >= self._max:
                return None
            self._seen[(identity, nonce)] = now_ms
            return True


SessionReader = Callable[[Request], str | None]
"""The identity a console session cookie logs in as, or None (the console supplies it)."""
IdentityRecords = Callable[[str], dict[str, Any] | None]
"""The membership record of an identity id, or None."""


class ReadGuard:
    """Decides whether a request may be answered: its route's access and its credentials."""

    def __init__(
        self,
        *,
        identities: IdentityRecords,
        clock: Callable[[], int] = wall_clock_ms,
        skew_ms: int = SKEW_MS,
        replay: ReplayCache | None = None,
    ) -> None:
        self._identities = identities
        self._clock = clock
        self._skew_ms = skew_ms
        self._replay = replay if replay is not None else ReplayCache(window_ms=skew_ms)
        self._sessions: list[SessionReader] = []
        self._keys: dict[str, bytes] = {}

    def accept_sessions(self, reader: SessionReader) -> None:
        """Let a console session (``reader`` names its identity) read members' routes."""
        self._sessions.append(reader)

    def refusal(self, scope: Scope) -> Problem | None:
        """None if the request may be answered, else the problem to answer with."""
        method, path = scope.get("method", "GET"), scope.get("path", "")
        if access_of(method, path) is not Access.MEMBERS:
            return None
        headers = Headers(scope=scope)
        if any(h in headers for h in READ_HEADERS):
            return self._signed(scope, headers)
        request = Request(scope)
        for reader in self._sessions:
            if reader(request) is not None:
                return None
        client = scope.get("client")
        if path == METRICS_PATH and client is not None and client[0] in _LOOPBACK:
            return None
        return problem(
            "unauthenticated",
            f"{method} {path} is for consortium members: {HOW_TO_AUTHENTICATE}",
            extensions={"authenticate": list(READ_HEADERS), "login": "/login"},
            headers={"WWW-Authenticate": WWW_AUTHENTICATE},
        )

    def _signed(self, scope: Scope, headers: Headers) -> Problem | None:
        missing = [h for h in READ_HEADERS if h not in headers]
        if missing:
            return _bad(f"a signed read needs all four headers; missing {', '.join(missing)}")
        identity, stamp = headers[IDENTITY_HEADER], headers[TIMESTAMP_HEADER]
        nonce = headers[NONCE_HEADER]
        if not stamp.isdigit() or len(stamp) > 16:
            return _bad(f"{TIMESTAMP_HEADER} is not Unix milliseconds")
        if not NONCE_RE.fullmatch(nonce):
            return _bad(f"{NONCE_HEADER} is not 16 to 64 lower-case hex digits")
        now = self._clock()
        if abs(now - int(stamp)) > self._skew_ms:
            return _bad(
                f"{TIMESTAMP_HEADER} is {abs(now - int(stamp)) // 1000} s from the node's "
                f"clock; at most {self._skew_ms // 1000} s is accepted: sign it again"
            )
        key = self._key_of(identity, now)
        if isinstance(key, Problem):
            return key
        raw_path = scope.get("raw_path") or scope.get("path", "").encode()
        message = read_message(
            method=scope.get("method", "GET"),
            path=raw_path.decode("latin-1").split("?", 1)[0],
            query=scope.get("query_string", b"").decode("latin-1"),
            timestamp=int(stamp),
            nonce=nonce,
            identity=identity,
        )
        try:
            verify_signature(key, decode_b64(headers[SIGNATURE_HEADER], what="signature"), message)
        except CryptoError:
            return _bad(
                f"{SIGNATURE_HEADER} does not verify as {identity}'s over this method, "
                "path, query, timestamp and nonce"
            )
        first = self._replay.first_use(identity, nonce, now_ms=now)
        if first is None:
            return problem("unavailable", "too many signed reads at once; retry shortly")
        if not first:
            return _bad(f"{NONCE_HEADER} was already used: a replayed request")
        return None

    def _key_of(self, identity: str, now: int) -> bytes | Problem:
        record = self._identities(identity)
        if record is None:
            return problem("access-denied", f"{identity} is not a registered identity")
        if record.get("status") != "active":
            return problem("access-denied", f"{identity} is {record.get('status')}")
        if not int(record.get("not_before", 0)) <= now <= int(record.get("not_after", 0)):
            return problem("access-denied", f"the certificate of {identity} is not valid now")
        fingerprint = str(record.get("fingerprint", ""))
        key = self._keys.get(fingerprint)
        if key is None:
            try:
                key = load_certificate(str(record.get("cert", "")).encode()).public_key
            except CryptoError:
                return problem("access-denied", f"{identity} has no usable certificate")
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[fingerprint] = key
        return key


def _bad(detail: str) -> Problem:
    return problem("bad-read-signature", detail, headers={"WWW-Authenticate": WWW_AUTHENTICATE})


class MembersOnly:
    """ASGI middleware: answer a request the guard refuses with its problem details."""

    def __init__(self, app: ASGIApp, *, guard: ReadGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check, then pass the request on or refuse it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = self.guard.refusal(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            found.to_json(scope.get("path", "")),
            status_code=found.status,
            media_type=PROBLEM_MEDIA_TYPE,
            headers=dict(found.headers),
        )
        await response(scope, receive, send)
