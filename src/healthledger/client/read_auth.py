"""Signed reads for httpx: every request a client sends carries its identity's
read signature (crypto.signed_reads), so a node's members-only routes answer it.

:class:`Client` and :class:`AsyncClient` install it themselves when they hold an
identity; any other httpx client (a script, a test's ``TestClient``) can too::

    http = httpx.Client(base_url=url, auth=SignedReads.of(identity))
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Protocol

import httpx

from healthledger.crypto.keys import SigningKey
from healthledger.crypto.signed_reads import sign_read, wall_clock_ms

Clock = Callable[[], int]


class _HasKey(Protocol):
    """What :meth:`SignedReads.of` needs of a signer."""

    @property
    def id(self) -> str:
        """The identity id."""

    @property
    def key(self) -> SigningKey:
        """Its Ed25519 key."""


class SignedReads(httpx.Auth):
    """An httpx ``auth`` that signs each request as ``identity`` with ``key``."""

    def __init__(self, *, identity: str, key: SigningKey, clock: Clock = wall_clock_ms) -> None:
        self.identity = identity
        self._key = key
        self._clock = clock

    @classmethod
    def of(cls, signer: _HasKey, *, clock: Clock = wall_clock_ms) -> SignedReads:
        """Signed reads as an identity that has an ``id`` and a ``key`` (a client
        :class:`~healthledger.client.identity.Identity`, a keystore entry)."""
        return cls(identity=signer.id, key=signer.key, clock=clock)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the four signed-read headers, over the request exactly as it is sent."""
        path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        headers = sign_read(
            self._key,
            identity=self.identity,
            method=request.method,
            path=path,
            query=request.url.query.decode("ascii"),
            clock=self._clock,
        )
        request.headers.update(headers)
        yield request
