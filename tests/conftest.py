"""Shared fixtures: a real embedded node on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.node.embedded import EmbeddedNode
from tests.support.contracts import Notebook
from tests.support.founding import found

CONTRACTS = (*SYSTEM_CONTRACTS, Notebook)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[EmbeddedNode]:
    """A started embedded node with the demo consortium and the Notebook contract."""
    created = found(tmp_path / "data", contracts=CONTRACTS, batch_timeout_s=0.01)
    created.start()
    yield created
    created.stop()


@pytest.fixture
def idle_node(tmp_path: Path) -> Iterator[EmbeddedNode]:
    """A node whose orderer is not running: tests append blocks to its chain directly."""
    created = found(tmp_path / "data", contracts=CONTRACTS)
    yield created
    created.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with slow tests first (their order kept, module by module), so the many
    quick tests fill in beside them and no long test starts last, alone, on one worker
    while the other has nothing left (pytest-xdist hands out tests in this order)."""
    slow_modules = {item.module for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module not in slow_modules)
