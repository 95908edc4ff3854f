"""A node founded as the demo founds one, with every installed application's simulated
traffic: for tests that need realistic data of every kind."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from healthledger.apps.registry import INSTALLED_APPS, installed_contracts
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.seam import attach


@contextmanager
def simulated_node(path: Path, *, seed: int) -> Iterator[EmbeddedNode]:
    """A started node in ``path`` after each application's ``simulate`` (seeded)."""
    node = EmbeddedNode.create(
        path, contracts=installed_contracts(), batch_timeout_s=0.01, plans=DEMO_ORGS
    )
    node.start()
    try:
        rng = random.Random(seed)
        for installed in INSTALLED_APPS:
            if installed.simulate is not None:
                installed.simulate(attach(node, installed), rng)
        yield node
    finally:
        node.stop()
