"""What the network operations raise: one :class:`NetworkError` root under the
package's :class:`~healthledger.errors.HealthledgerError`, and what the HTTP client
(:mod:`healthledger.network.client`) makes of an answer it cannot use."""

from __future__ import annotations

from typing import Any

from healthledger.errors import HealthledgerError

FAILED = 1
"""The operation could not be done (a peer refused, a process ended, a timeout)."""
UNUSABLE = 2
"""The input is not usable (no such folder, a bad port, a malformed request file)."""


class NetworkError(HealthledgerError):
    """The network cannot be brought up, inspected, joined or stopped as asked;
    ``code`` is :data:`FAILED` or :data:`UNUSABLE` (what a command exits with)."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


class PeerUnreachable(NetworkError):
    """No answer from a peer (or a NATS monitor): refused, reset, timed out."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


class BadAnswer(NetworkError):
    """An answer that is not what the API promises (not JSON, a missing field)."""


class ProblemAnswer(NetworkError):
    """An RFC 9457 problem answer (or a bare HTTP error status) from a peer."""

    def __init__(self, url: str, status: int, problem: dict[str, Any]) -> None:
        self.url = url
        self.status = status
        self.problem = problem
        """The problem document (``type``, ``title``, ``status``, ``detail``, ...)."""
        self.type = str(problem.get("type", "about:blank"))
        self.detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        super().__init__(self.detail)


class RequestRefused(ProblemAnswer):
    """A 4xx problem: the peer understood the request and refused it."""


class PeerFailed(ProblemAnswer):
    """A 5xx problem: the peer could not do it (ordering down, no commit in time, ...)."""
