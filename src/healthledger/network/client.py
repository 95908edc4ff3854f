"""One typed HTTP client for what an operator (and a peer joining) asks of the peers'
APIs and of the NATS servers' monitors: status, membership reads, signed invocations
and queries, the peer directory.

Built on :func:`healthledger.node.peer_tls.peer_client`, so the TLS material the
environment names (``HEALTHLEDGER_PEER_*``) applies to every call. An RFC 9457 problem
answer becomes a :class:`~healthledger.network.errors.RequestRefused` (4xx) or
:class:`~healthledger.network.errors.PeerFailed` (5xx) carrying the problem document;
no answer at all is :class:`~healthledger.network.errors.PeerUnreachable`; an answer
of the wrong shape is :class:`~healthledger.network.errors.BadAnswer`. All are
:class:`~healthledger.network.errors.NetworkError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from healthledger.crypto.canonical import canonical_json
from healthledger.ledger.transaction import SignedProposal
from healthledger.network.errors import (
    BadAnswer,
    PeerFailed,
    PeerUnreachable,
    ProblemAnswer,
    RequestRefused,
)
from healthledger.node.peer_directory import DirectoryError, PeerDirectory
from healthledger.node.peer_tls import peer_client

DEFAULT_TIMEOUT_S = 30.0
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class PeerStatus:
    """What a peer says of itself at ``/api/v1/status``."""

    height: int
    """Committed blocks (the next block's height)."""
    head_hash: str | None
    genesis_hash: str | None
    """Hash of block 0: which chain it holds."""
    log_size: int | None
    log_root: str | None
    accepting_writes: bool
    """False while its orderer cannot take writes."""
    healthy: bool
    """Ordering, delivering and serving (a consortium peer's own verdict; an embedded
    node, which does not give one, counts as healthy)."""
    checkpoints: Mapping[str, Any] = field(default_factory=dict)
    """A consortium peer's checkpoint view (``state``, ``serving``, ``reason``, ...)."""
    delivery: Mapping[str, Any] = field(default_factory=dict)
    """A consortium peer's delivery health (``stuck``, ``position``, ...)."""

    @classmethod
    def from_json(cls, body: Any) -> PeerStatus:
        """Parse a status answer; BadAnswer if it lacks the height."""
        if not isinstance(body, Mapping) or not isinstance(body.get("height"), int):
            raise BadAnswer("a status answer without a height")
        return cls(
            height=int(body["height"]),
            head_hash=_text(body.get("head_hash")),
            genesis_hash=_text(body.get("genesis_hash")),
            log_size=body.get("log_size") if isinstance(body.get("log_size"), int) else None,
            log_root=_text(body.get("log_root")),
            accepting_writes=bool(body.get("accepting_writes")),
            healthy=bool(body.get("healthy", True)),
            checkpoints=dict(body.get("checkpoints") or {}),
            delivery=dict(body.get("delivery") or {}),
        )


@dataclass(frozen=True)
class Invocation:
    """A committed invocation: the contract's result and the receipt's essentials."""

    result: Any
    height: int
    """The block that holds the transaction."""
    valid: bool
    code: str
    """The validation code (``VALID`` or why the transaction changed nothing)."""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class NetworkClient:
    """HTTP calls to peers' APIs and NATS monitors, one connection pool for all; close
    it (or use it as a context manager) when done."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
        reads: httpx.Auth | None = None,
    ) -> None:
        self._http = peer_client(timeout=timeout, transport=transport)
        if reads is not None:
            self.sign_reads(reads)

    def sign_reads(self, reads: httpx.Auth) -> None:
        """Sign every request from now on with ``reads`` (a member's signed reads,
        ``healthledger.client.read_auth.SignedReads``): blocks, identities and key
        history are for consortium members only."""
        self._http.auth = reads

    def close(self) -> None:
        """Close every connection."""
        self._http.close()

    def __enter__(self) -> NetworkClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- the calls -------------------------------------------------------------------

    def status(self, url: str, *, timeout: float | None = None) -> PeerStatus:
        """The status of the peer at base URL ``url``."""
        return PeerStatus.from_json(self._get(f"{url}/api/v1/status", timeout=timeout))

    def nats_healthy(self, monitor_url: str, *, timeout: float | None = None) -> bool:
        """True if the NATS server whose monitor is at ``monitor_url`` says it is ok;
        False if it says otherwise or does not answer."""
        try:
            body = self._get(f"{monitor_url}/healthz", timeout=timeout)
        except (PeerUnreachable, ProblemAnswer, BadAnswer):
            return False
        return isinstance(body, Mapping) and body.get("status") == "ok"

    def block_hash(self, url: str, height: int, *, timeout: float | None = None) -> str:
        """The hash of block ``height`` of the peer at ``url``."""
        body = self._get(f"{url}/api/v1/blocks/{height}", timeout=timeout)
        if not isinstance(body, Mapping) or not isinstance(body.get("hash"), str):
            raise BadAnswer(f"{url}: block {height} without a hash")
        return str(body["hash"])

    def organisations(self, url: str) -> list[dict[str, Any]]:
        """The consortium's member records, as the peer at ``url`` holds them."""
        return _records(self._get(f"{url}/api/v1/consortium/organisations"), url)

    def identities(self, url: str, org: str) -> list[dict[str, Any]]:
        """The registered identities of ``org``."""
        return _records(self._get(f"{url}/api/v1/consortium/identities", params={"org": org}), url)

    def key_history(
        self, url: str, contract: str, key: str, *, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Committed changes of ``key`` in ``contract``'s state, newest first."""
        body = self._get(
            f"{url}/api/v1/state/{quote(contract)}/{quote(key)}/history",
            params={"limit": limit},
        )
        history = body.get("history") if isinstance(body, Mapping) else None
        return _records(history, url)

    def directory(self, url: str) -> PeerDirectory:
        """The peer directory of the peer at ``url``."""
        try:
            return PeerDirectory.from_json(self._get(f"{url}/api/v1/network/peers"))
        except DirectoryError as exc:
            raise BadAnswer(f"{url}: {exc}") from exc

    def invoke(self, url: str, signed: SignedProposal) -> Invocation:
        """Have the peer at ``url`` endorse, order and commit ``signed``."""
        body = self._post(f"{url}/api/v1/invoke", signed)
        try:
            receipt = body["receipt"]
            return Invocation(
                result=body.get("result"),
                height=int(receipt["height"]),
                valid=bool(receipt["valid"]),
                code=str(receipt["code"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadAnswer(f"{url}: an invoke answer without its receipt ({exc})") from exc

    def query(self, url: str, signed: SignedProposal) -> Any:
        """The result of the signed query ``signed`` at the peer at ``url``."""
        body = self._post(f"{url}/api/v1/query", signed)
        if not isinstance(body, Mapping) or "result" not in body:
            raise BadAnswer(f"{url}: a query answer without a result")
        return body["result"]

    # --- transport -------------------------------------------------------------------

    def _get(
        self, url: str, *, params: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        return self._answer(
            url,
            lambda: self._http.get(
                url,
                params=dict(params or {}),
                timeout=self._http.timeout if timeout is None else timeout,
            ),
        )

    def _post(self, url: str, signed: SignedProposal) -> Any:
        content = canonical_json(signed.to_json())
        return self._answer(url, lambda: self._http.post(url, content=content, headers=JSON))

    @staticmethod
    def _answer(url: str, send: Any) -> Any:
        try:
            response: httpx.Response = send()
        except httpx.HTTPError as exc:
            raise PeerUnreachable(url, str(exc) or type(exc).__name__) from exc
        if response.status_code >= 400:
            raise _problem(url, response)
        try:
            return response.json()
        except ValueError as exc:
            raise BadAnswer(f"{url} answered HTTP {response.status_code} without JSON") from exc


def _problem(url: str, response: httpx.Response) -> ProblemAnswer:
    """The typed error of a 4xx or 5xx answer, with its problem document (or a bare
    one naming the status when the body is not one)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    problem = dict(body) if isinstance(body, Mapping) else {}
    problem.setdefault("status", response.status_code)
    problem.setdefault("title", response.reason_phrase or f"HTTP {response.status_code}")
    kind = RequestRefused if response.status_code < 500 else PeerFailed
    return kind(url, response.status_code, problem)


def _records(body: Any, url: str) -> list[dict[str, Any]]:
    if not isinstance(body, list):
        raise BadAnswer(f"{url}: expected a list of records")
    return [dict(item) for item in body if isinstance(item, Mapping)]
