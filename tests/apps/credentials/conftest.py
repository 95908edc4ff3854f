"""Fixtures: one real embedded node per module with the epidemic and credentials
contracts, the epidemic configured with the test regions and every issuer enrolled on
the trust list through governance."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from healthledger.apps.credentials.app import APP as CREDENTIALS
from healthledger.apps.credentials.app import CONTRACTS
from healthledger.apps.credentials.provision import enrol_issuers
from healthledger.apps.epidemic.contract import Epidemic
from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.regions import RegionTable
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.seam import AppNode, attach
from tests.apps.epidemic.conftest import TEST_REGIONS
from tests.support.founding import found
from tests.support.seam import epidemic_seam


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A started node: epidemic configured, the issuers on the trust list."""
    folder = tmp_path_factory.mktemp("credentials") / "data"
    node = found(
        folder,
        contracts=(*SYSTEM_CONTRACTS, Epidemic, *CONTRACTS),
        batch_timeout_s=0.005,
    )
    node.start()
    configure(epidemic_seam(node), RegionTable.from_source(TEST_REGIONS))
    enrol_issuers(attach(node, CREDENTIALS), ["gz-first-hospital", "sz-peoples-hospital"])
    yield node
    node.stop()


@pytest.fixture(scope="module")
def seam(ledger: EmbeddedNode) -> AppNode:
    """The node as the credentials application sees it."""
    return attach(ledger, CREDENTIALS)
