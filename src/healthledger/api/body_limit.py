"""Request body limit: bodies over the limit are refused with a 413 problem, unread."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from healthledger.api.problems import PROBLEM_MEDIA_TYPE, problem
from healthledger.errors import HealthledgerError


class BodyTooLarge(StarletteHTTPException, HealthledgerError):
    """Raised while reading a request body that exceeds the limit."""

    def __init__(self) -> None:
        super().__init__(
            status_code=413,
            detail="the request body is larger than this server accepts; reading stopped there",
        )


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with a 413 problem.

    A declared ``Content-Length`` over the limit is answered before anything is read;
    a streamed body is counted as it arrives and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count what the app reads."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        total = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal total
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        found = problem(
            "payload-too-large", f"the request body is larger than {self.max_bytes} bytes"
        )
        response = JSONResponse(
            found.to_json(scope.get("path", "")),
            status_code=413,
            media_type=PROBLEM_MEDIA_TYPE,
            headers={"Connection": "close"},
        )
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
