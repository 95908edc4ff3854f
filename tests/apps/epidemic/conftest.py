"""Fixtures: a real embedded node with the epidemic contract, configured with a small
region table the tests build themselves (the real table comes from a data package)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from healthledger.apps.epidemic.contract import Epidemic
from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.regions import Region, RegionTable, StaticRegions
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.node.embedded import EmbeddedNode
from tests.support.founding import found
from tests.support.seam import epidemic_seam

CONTRACTS = (*SYSTEM_CONTRACTS, Epidemic)

TEST_REGIONS = StaticRegions(
    (
        Region("440000", "Guangdong", "province", None, 23_132_324, 113_266_410),
        Region("440100", "Guangzhou", "city", "440000", 23_129_110, 113_264_385),
        Region("440104", "Yuexiu", "district", "440100", 23_129_162, 113_280_637),
        Region("440106", "Tianhe", "district", "440100", 23_135_589, 113_335_367),
        Region("440300", "Shenzhen", "city", "440000", 22_547_000, 114_085_947),
        Region("440304", "Futian", "district", "440300", 22_541_009, 114_050_960),
    )
)
"""Six real GB/T 2260 codes, enough for the tests (not a data source)."""


@pytest.fixture
def regions() -> RegionTable:
    """The tests' region table."""
    return RegionTable.from_source(TEST_REGIONS)


@pytest.fixture
def bare_node(tmp_path: Path) -> Iterator[EmbeddedNode]:
    """A started node with the epidemic contract deployed but not configured."""
    created = found(tmp_path / "data", contracts=CONTRACTS, batch_timeout_s=0.005)
    created.start()
    yield created
    created.stop()


@pytest.fixture
def node(bare_node: EmbeddedNode, regions: RegionTable) -> EmbeddedNode:
    """A node configured with the demo organisations and the test regions."""
    configure(epidemic_seam(bare_node), regions)
    return bare_node
