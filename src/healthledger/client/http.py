"""The clients an integrating system holds: :class:`Client` (blocking) and
:class:`AsyncClient` (asyncio), over httpx. Both drive the same operations
(client.flows), sign locally with an :class:`~healthledger.client.identity.Identity`
and turn every problem answer into a typed exception (client.errors)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from healthledger.client import flows
from healthledger.client.errors import (
    ClientError,
    ConnectionFailed,
    ProblemError,
    UnexpectedAnswer,
    problem_error,
)
from healthledger.client.events import Event, EventParser, cursor_before
from healthledger.client.identity import Identity, SignedCall, read_passphrase
from healthledger.client.read_auth import SignedReads
from healthledger.client.receipts import Committed, Evidence, Receipt
from healthledger.ledger.transaction import Transaction

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0
"""How long a request may take, and a commit may be awaited, by default."""
RECONNECT_ATTEMPTS = 5
"""Consecutive failed reconnections after which an event stream gives up."""


def _answer(response: httpx.Response) -> Any:
    """The JSON body of a successful answer; the typed exception of a problem."""
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError as exc:
        if response.is_success:
            raise UnexpectedAnswer(
                f"{response.request.url.path} answered {response.status_code} with no JSON"
            ) from exc
        body = None
    if response.is_success:
        return body
    problem = body if isinstance(body, Mapping) else {"detail": response.text[:200] or None}
    raise problem_error(problem, status=response.status_code)


def _request(call: flows.Call) -> dict[str, Any]:
    headers = {"Accept": "application/json"}
    if call.body is not None:
        headers["Content-Type"] = "application/json"
    return {
        "method": call.method,
        "url": call.path,
        "params": dict(call.params or {}),
        "content": call.body,
        "headers": headers,
    }


def _timeout(call: flows.Call, base: float) -> httpx.Timeout:
    return httpx.Timeout(base + call.wait_s, connect=min(base, 10.0))


def _stream_params(cursor: str | None, limit: int | None) -> tuple[dict[str, str], dict[str, str]]:
    headers = {"Accept": "text/event-stream"}
    if cursor is not None:
        headers["Last-Event-ID"] = cursor
    return ({} if limit is None else {"limit": str(limit)}), headers


def _start(after: str | None, from_height: int | None) -> str | None:
    if after is not None and from_height is not None:
        raise ValueError("give after or from_height, not both")
    return after if from_height is None else cursor_before(from_height)


class Client:
    """A blocking client of one node, signing as ``identity`` its proposals and every
    request (signed reads, for the members-only routes); None: public reads only."""

    def __init__(
        self,
        url: str,
        *,
        identity: Identity | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
        verify_tls: bool | str = True,
    ) -> None:
        self.identity = identity
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            transport=transport,
            verify=verify_tls,
            timeout=timeout,
            auth=None if identity is None else SignedReads.of(identity),
        )
        self._keys: dict[str, bytes] = {}

    @classmethod
    def signing(
        cls,
        url: str,
        *,
        key_file: Path | str,
        certificate_file: Path | str | None = None,
        passphrase_file: Path | str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> Client:
        """A client of ``url`` signing as the identity of ``key_file``, its passphrase
        read from ``passphrase_file`` or asked on the terminal."""
        passphrase = read_passphrase(passphrase_file, prompt=f"Passphrase of {key_file}: ")
        identity = Identity.load(key_file, passphrase=passphrase, certificate_file=certificate_file)
        return cls(url, identity=identity, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _send(self, call: flows.Call) -> Any:
        try:
            response = self._http.request(**_request(call), timeout=_timeout(call, self.timeout))
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"{self._http.base_url}: {exc or type(exc).__name__}") from exc
        return _answer(response)

    def _run(self, flow: flows.Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                try:
                    answer = self._send(call)
                except ProblemError as problem:
                    call = flow.throw(problem)
                else:
                    call = flow.send(answer)
        except StopIteration as done:
            result: T = done.value
            return result

    def _query_signer(self) -> flows.Signer | None:
        identity = self.identity
        if identity is None:
            return None
        return lambda contract, function, args: identity.propose(contract, function, args)

    def _signer(self) -> Identity:
        if self.identity is None:
            raise ClientError("this client has no identity to sign with")
        return self.identity

    # --- writes and queries -------------------------------------------------------

    def propose(
        self,
        contract: str,
        function: str,
        args: Mapping[str, Any] | None = None,
        *,
        transient: Mapping[str, Any] | None = None,
    ) -> SignedCall:
        """A proposal signed locally by the client's identity."""
        return self._signer().propose(contract, function, args, transient=transient)

    def endorse(self, call: SignedCall) -> Transaction:
        """The endorsed transaction of ``call``, checked against what was signed."""
        return self._run(flows.endorse(call, self._keys, self._query_signer()))

    def submit(self, transaction: Transaction, *, timeout: float | None = None) -> Receipt:
        """Order an endorsed transaction and await its receipt."""
        return self._run(flows.submit(transaction, timeout=timeout or self.timeout))

    def invoke(
        self,
        contract: str,
        function: str,
        args: Mapping[str, Any] | None = None,
        *,
        transient: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Committed:
        """Sign, endorse, check, order and await a call of a transaction function."""
        call = self.propose(contract, function, args, transient=transient)
        return self.send(call, timeout=timeout)

    def send(self, call: SignedCall, *, timeout: float | None = None) -> Committed:
        """Endorse, check, order and await an already signed call."""
        return self._run(
            flows.invoke(
                call, self._keys, timeout=timeout or self.timeout, signer=self._query_signer()
            )
        )

    def send_many(
        self, calls: Sequence[SignedCall], *, timeout: float | None = None
    ) -> list[Committed | ClientError]:
        """Endorse, check, order and await many signed calls with two requests per 200:
        per call, in order, what it committed or the typed error that refused it."""
        return self._run(
            flows.invoke_many(
                calls, self._keys, timeout=timeout or self.timeout, signer=self._query_signer()
            )
        )

    def query(self, contract: str, function: str, args: Mapping[str, Any] | None = None) -> Any:
        """Run a query function as the client's identity; its result."""
        return self._run(flows.query(self.propose(contract, function, args)))

    # --- receipts and proofs ------------------------------------------------------

    def receipt(self, tx_id: str) -> Receipt:
        """The receipt of a committed transaction."""
        return self._run(flows.receipt(tx_id))

    def evidence(self, receipt: Receipt) -> Evidence:
        """What proves ``receipt``, fetched but not yet checked."""
        return self._run(flows.evidence(receipt))

    def verify(self, receipt: Receipt) -> Evidence:
        """Fetch what proves ``receipt`` and check it offline (ProofNotVerified if not)."""
        return self._run(flows.verified(receipt))

    # --- reads --------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The node's chain head and global log."""
        return self._run(flows.status())

    def registered(self, identity_id: str) -> dict[str, Any] | None:
        """The membership record of ``identity_id`` (None: not registered)."""
        return self._run(flows.identity(identity_id, self._query_signer()))

    def organisation(self, org: str) -> dict[str, Any] | None:
        """The membership record of organisation ``org`` (None: not a member)."""
        return self._run(flows.organisation(org, self._query_signer()))

    def events(
        self,
        *,
        after: str | None = None,
        from_height: int | None = None,
        limit: int | None = None,
        reconnects: int = RECONNECT_ATTEMPTS,
    ) -> Iterator[Event]:
        """Committed events after event id ``after`` (or from block ``from_height``),
        then new ones as blocks commit; closes after ``limit`` events if given. A broken
        connection is resumed from the last event seen (``Last-Event-ID``), so no event
        is lost or repeated; ``reconnects`` failed attempts in a row end it."""
        cursor = _start(after, from_height)
        sent, failures = 0, 0
        while limit is None or sent < limit:
            params, headers = _stream_params(cursor, None if limit is None else limit - sent)
            parser = EventParser()
            try:
                with self._http.stream(
                    "GET",
                    "/api/v1/events",
                    params=params,
                    headers=headers,
                    timeout=httpx.Timeout(self.timeout, read=None),
                ) as response:
                    if not response.is_success:
                        response.read()
                        _answer(response)
                    failures = 0
                    for line in response.iter_lines():
                        event = parser.feed(line)
                        if event is not None:
                            cursor, sent = event.id, sent + 1
                            yield event
                            if limit is not None and sent >= limit:
                                return
            except httpx.HTTPError as exc:
                failures += 1
                if failures > reconnects:
                    raise ConnectionFailed(f"the event stream broke off: {exc}") from exc
                time.sleep(min(0.1 * 2**failures, 5.0))


class AsyncClient:
    """The asyncio client of one node, signing as ``identity`` its proposals and every
    request (signed reads); None: public reads only."""

    def __init__(
        self,
        url: str,
        *,
        identity: Identity | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
        verify_tls: bool | str = True,
    ) -> None:
        self.identity = identity
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            transport=transport,
            verify=verify_tls,
            timeout=timeout,
            auth=None if identity is None else SignedReads.of(identity),
        )
        self._keys: dict[str, bytes] = {}

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _send(self, call: flows.Call) -> Any:
        try:
            response = await self._http.request(
                **_request(call), timeout=_timeout(call, self.timeout)
            )
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"{self._http.base_url}: {exc or type(exc).__name__}") from exc
        return _answer(response)

    async def _run(self, flow: flows.Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                try:
                    answer = await self._send(call)
                except ProblemError as problem:
                    call = flow.throw(problem)
                else:
                    call = flow.send(answer)
        except StopIteration as done:
            result: T = done.value
            return result

    def _query_signer(self) -> flows.Signer | None:
        identity = self.identity
        if identity is None:
            return None
        return lambda contract, function, args: identity.propose(contract, function, args)

    def _signer(self) -> Identity:
        if self.identity is None:
            raise ClientError("this client has no identity to sign with")
        return self.identity

    def propose(
        self,
        contract: str,
        function: str,
        args: Mapping[str, Any] | None = None,
        *,
        transient: Mapping[str, Any] | None = None,
    ) -> SignedCall:
        """A proposal signed locally by the client's identity."""
        return self._signer().propose(contract, function, args, transient=transient)

    async def endorse(self, call: SignedCall) -> Transaction:
        """The endorsed transaction of ``call``, checked against what was signed."""
        return await self._run(flows.endorse(call, self._keys, self._query_signer()))

    async def submit(self, transaction: Transaction, *, timeout: float | None = None) -> Receipt:
        """Order an endorsed transaction and await its receipt."""
        return await self._run(flows.submit(transaction, timeout=timeout or self.timeout))

    async def invoke(
        self,
        contract: str,
        function: str,
        args: Mapping[str, Any] | None = None,
        *,
        transient: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Committed:
        """Sign, endorse, check, order and await a call of a transaction function."""
        call = self.propose(contract, function, args, transient=transient)
        return await self.send(call, timeout=timeout)

    async def send(self, call: SignedCall, *, timeout: float | None = None) -> Committed:
        """Endorse, check, order and await an already signed call."""
        return await self._run(
            flows.invoke(
                call, self._keys, timeout=timeout or self.timeout, signer=self._query_signer()
            )
        )

    async def send_many(
        self, calls: Sequence[SignedCall], *, timeout: float | None = None
    ) -> list[Committed | ClientError]:
        """As :meth:`Client.send_many`, without holding a thread."""
        return await self._run(
            flows.invoke_many(
                calls, self._keys, timeout=timeout or self.timeout, signer=self._query_signer()
            )
        )

    async def query(
        self, contract: str, function: str, args: Mapping[str, Any] | None = None
    ) -> Any:
        """Run a query function as the client's identity; its result."""
        return await self._run(flows.query(self.propose(contract, function, args)))

    async def receipt(self, tx_id: str) -> Receipt:
        """The receipt of a committed transaction."""
        return await self._run(flows.receipt(tx_id))

    async def evidence(self, receipt: Receipt) -> Evidence:
        """What proves ``receipt``, fetched but not yet checked."""
        return await self._run(flows.evidence(receipt))

    async def verify(self, receipt: Receipt) -> Evidence:
        """Fetch what proves ``receipt`` and check it offline (ProofNotVerified if not)."""
        return await self._run(flows.verified(receipt))

    async def status(self) -> dict[str, Any]:
        """The node's chain head and global log."""
        return await self._run(flows.status())

    async def registered(self, identity_id: str) -> dict[str, Any] | None:
        """The membership record of ``identity_id`` (None: not registered)."""
        return await self._run(flows.identity(identity_id, self._query_signer()))

    async def organisation(self, org: str) -> dict[str, Any] | None:
        """The membership record of organisation ``org`` (None: not a member)."""
        return await self._run(flows.organisation(org, self._query_signer()))

    async def events(
        self,
        *,
        after: str | None = None,
        from_height: int | None = None,
        limit: int | None = None,
        reconnects: int = RECONNECT_ATTEMPTS,
    ) -> AsyncIterator[Event]:
        """As :meth:`Client.events`, without holding a thread."""
        cursor = _start(after, from_height)
        sent, failures = 0, 0
        while limit is None or sent < limit:
            params, headers = _stream_params(cursor, None if limit is None else limit - sent)
            parser = EventParser()
            try:
                async with self._http.stream(
                    "GET",
                    "/api/v1/events",
                    params=params,
                    headers=headers,
                    timeout=httpx.Timeout(self.timeout, read=None),
                ) as response:
                    if not response.is_success:
                        await response.aread()
                        _answer(response)
                    failures = 0
                    async for line in response.aiter_lines():
                        event = parser.feed(line)
                        if event is not None:
                            cursor, sent = event.id, sent + 1
                            yield event
                            if limit is not None and sent >= limit:
                                return
            except httpx.HTTPError as exc:
                failures += 1
                if failures > reconnects:
                    raise ConnectionFailed(f"the event stream broke off: {exc}") from exc
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
