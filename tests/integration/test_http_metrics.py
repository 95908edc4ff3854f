"""Operations: `/metrics` carries HTTP request metrics by route template and status and
committed calls by contract and function; an event-stream client that goes away is not
an error in the server's log. A real uvicorn server on a socket, a real embedded node."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from healthledger.api.app import create_api
from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, transaction
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from tests.support.members import member_reads


class Tally(Contract):
    """A test contract with one write."""

    name = "tally"
    policy = "OR('*.peer')"

    @transaction()
    def add(self, ctx: Context, *, n: int) -> int:
        """Record ``n``."""
        ctx.put(f"n/{n}", n)
        return n


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    started = EmbeddedNode.create(
        Path(tmp_path_factory.mktemp("metrics")) / "node",
        contracts=(*SYSTEM_CONTRACTS, Tally),
        batch_timeout_s=0.01,
        plans=DEMO_ORGS,
    ).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def base_url(node: EmbeddedNode) -> Iterator[str]:
    """The API over ``node`` on 127.0.0.1; uvicorn leaves logging to the test (its
    records reach ``caplog``)."""
    config = uvicorn.Config(
        create_api(node, demo_custody=True),
        host="127.0.0.1",
        port=0,
        log_config=None,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, or None if absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def metrics(base_url: str) -> str:
    return httpx.get(f"{base_url}/metrics").text


def test_requests_are_counted_by_route_template_and_status(
    base_url: str, node: EmbeddedNode
) -> None:
    for height in (0, 0, 99999999):
        httpx.get(f"{base_url}/api/v1/blocks/{height}", auth=member_reads(node))
    httpx.get(f"{base_url}/no/such/page")
    text = metrics(base_url)
    route = "/api/v1/blocks/{height}"
    assert (sample(text, "healthledger_http_requests_total", route=route, status="200") or 0) >= 2
    assert sample(text, "healthledger_http_requests_total", route=route, status="404") == 1
    assert sample(text, "healthledger_http_requests_total", route="unmatched", status="404") == 1
    count = sample(text, "healthledger_http_request_seconds_count", method="GET", route=route)
    assert count is not None and count >= 3
    assert "/api/v1/blocks/99999999" not in text, "raw paths never become labels"


def test_committed_calls_are_counted_by_contract_and_function(
    base_url: str, node: EmbeddedNode
) -> None:
    for n in range(2):
        proposal = node.keystore.propose(
            "gd-cdc/epi-wang", "tally", "add", {"n": n}, timestamp=node.clock()
        )
        answer = httpx.post(f"{base_url}/api/v1/invoke", json=proposal.to_json())
        assert answer.status_code == 200, answer.text
    counted = sample(
        metrics(base_url),
        "healthledger_contract_calls_committed_total",
        contract="tally",
        function="add",
        code="VALID",
    )
    assert counted == 2


def test_a_client_leaving_an_event_stream_is_not_an_error(
    base_url: str, node: EmbeddedNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with httpx.Client(base_url=base_url, timeout=10, auth=member_reads(node)) as client:
        # one stream that has read an event, one idle at the head: both closed by the client
        with client.stream("GET", "/api/v1/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert next(response.iter_lines()).startswith("id: ")
        head = client.get("/api/v1/status").json()["height"] - 1
        with client.stream("GET", f"/api/v1/events?after={head}") as response:
            assert response.status_code == 200
            assert (sample(metrics(base_url), "healthledger_event_streams_open") or 0) >= 1, (
                "the open stream is counted"
            )
    deadline = time.monotonic() + 15
    while sample(metrics(base_url), "healthledger_event_streams_open") != 0:
        assert time.monotonic() < deadline, "the server never noticed the clients had left"
        time.sleep(0.05)
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info is not None]
    assert problems == [], [r.getMessage() for r in problems]
