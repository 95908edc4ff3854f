"""Reads never write: a GET of every page and API route the console serves, logged in
and not, leaves the chain exactly as it was (ARCHITECTURE.md section 6)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from healthledger.node.embedded import EmbeddedNode
from healthledger.web.console import create_console
from tests.support.simulated import simulated_node

pytestmark = pytest.mark.slow

STREAMS = {"/api/v1/events"}
"""Routes that never end (server-sent events): read by their own tests."""
CDC = "gd-cdc/epi-wang"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node with every application's simulated traffic, as the demo founds it."""
    with simulated_node(tmp_path_factory, "reads", seed=3) as created:
        yield created


def sample_values(node: EmbeddedNode) -> dict[str, Any]:
    """A real value for each kind of path parameter, so routes reach their reads."""
    block = node.peer.block(node.peer.store.height() - 1)
    unit = next(
        key.removeprefix("unit/")
        for key, _ in node.peer.store.range_state("supply", "unit/01/", "unit/01~", 1)
    )
    return {
        "height": block.header.height,
        "tx_id": block.transactions[0].tx_id,
        "identity": CDC,
        "org": "gd-cdc",
        "unit": unit,
        "fmt": "json",
        "name": "curve",
    }


def get_paths(client: TestClient, node: EmbeddedNode) -> list[str]:
    """Every GET route of the console's app, its parameters filled in."""
    values = sample_values(node)
    paths = []
    # FastAPI keeps included routers lazily: iter_route_contexts walks them all.
    for context in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        methods = getattr(context.original_route, "methods", None) or set()
        template = context.path
        if "GET" not in methods or template is None or template in STREAMS:
            continue
        path = re.sub(r"\{(\w+)(?::path)?\}", lambda m: str(values.get(m.group(1), "x")), template)
        paths.append(path)
    return sorted(set(paths))


def log_in(client: TestClient, identity: str) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    client.post("/login", data={"identity": identity, "csrf": token.group(1)})


def test_a_get_of_every_page_and_api_route_leaves_the_chain_unchanged(
    node: EmbeddedNode,
) -> None:
    store = node.peer.store
    before = (store.height(), store.head())
    with TestClient(create_console(node), follow_redirects=False) as client:
        paths = get_paths(client, node)
        assert len(paths) > 40
        assert {"/epidemic/public.json", "/supply/verify", "/api/v1/blocks"} <= set(paths)
        statuses = {}
        for path in paths:
            statuses[path] = client.get(path).status_code
        log_in(client, CDC)
        for path in paths:
            statuses[path] = client.get(path).status_code
    assert (store.height(), store.head()) == before
    # The reads really ran: most routes answered a logged-in CDC with success.
    assert sum(1 for code in statuses.values() if code == 200) > len(paths) // 2
    assert not [p for p, code in statuses.items() if code >= 500]
