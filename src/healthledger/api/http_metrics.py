"""HTTP request metrics for ``/metrics``: a count and a latency histogram per route
template and status, and the event streams open now.

Labels are route templates (``/api/v1/blocks/{height}``), never raw paths, so that one
label set exists per route and not one per block; a request no route matched is
counted under ``unmatched``.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: from a cached read (about a millisecond) to a write waiting for its block."""
UNMATCHED = "unmatched"


class HttpMetrics:
    """The collectors, registered in the node's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "healthledger_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "healthledger_http_request_seconds",
            "Time from a request's arrival to the end of its answer, by method and route",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.streams_open = Gauge(
            "healthledger_event_streams_open",
            "Server-sent event streams being served now",
            registry=registry,
        )


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, HttpMetrics] = (
    weakref.WeakKeyDictionary()
)


def http_metrics(registry: CollectorRegistry) -> HttpMetrics:
    """The HTTP collectors of ``registry``, made once: several apps over one node (the
    API and the console, or a test's second app) count into the same ones."""
    found = _BY_REGISTRY.get(registry)
    if found is None:
        found = _BY_REGISTRY[registry] = HttpMetrics(registry)
    return found


class MeasuredRequests:
    """ASGI middleware: times and counts every HTTP request by its route template.

    A streamed answer (server-sent events, a snapshot) is timed to its end, and the
    streams open are counted while they last."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        streaming = False

        async def watched_send(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = int(message["status"])
                streaming = _is_event_stream(message.get("headers", []))
                if streaming:
                    self.metrics.streams_open.inc()
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            if streaming:
                self.metrics.streams_open.dec()
            route = _route_template(scope)
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.seconds.labels(method, route).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    """The path template of the route that answered (``/api/v1/blocks/{height}``)."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    return UNMATCHED


def _is_event_stream(headers: Any) -> bool:
    for name, value in headers:
        if bytes(name).lower() == b"content-type":
            return bytes(value).split(b";")[0].strip() == b"text/event-stream"
    return False
