"""Shared fixtures: a real embedded node on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from tests.support.contracts import Notebook

CONTRACTS = (*SYSTEM_CONTRACTS, Notebook)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[EmbeddedNode]:
    """A started embedded node with the demo consortium and the Notebook contract."""
    created = EmbeddedNode.create(
        tmp_path / "data", contracts=CONTRACTS, batch_timeout_s=0.01, plans=DEMO_ORGS
    )
    created.start()
    yield created
    created.stop()


@pytest.fixture
def idle_node(tmp_path: Path) -> Iterator[EmbeddedNode]:
    """A node whose orderer is not running: tests append blocks to its chain directly."""
    created = EmbeddedNode.create(tmp_path / "data", contracts=CONTRACTS, plans=DEMO_ORGS)
    yield created
    created.stop()
