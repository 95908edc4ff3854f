"""A node founded as the demo founds one, with every installed application's simulated
traffic: for tests that need realistic data of every kind.

Simulating takes 10 to 40 s on two cores, so it happens once per test run for each seed:
the first test process to ask founds and simulates a template under a file lock in the
run's shared temporary folder (every xdist worker sees it), closes it cleanly and renames
it into place; every test then starts its own copy, so one test's writes never reach
another's node.
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from healthledger.apps.registry import INSTALLED_APPS, installed_contracts
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.seam import attach

BATCH_TIMEOUT_S = 0.01


def _shared_folder(factory: pytest.TempPathFactory) -> Path:
    """The run's temporary folder every xdist worker shares (a worker's own is below it)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _template(factory: pytest.TempPathFactory, seed: int) -> Path:
    """The closed template node for ``seed``, simulated by whichever process asked first."""
    shared = _shared_folder(factory)
    template = shared / f"simulated-{seed}"
    with (shared / f"simulated-{seed}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            building = shared / f"simulated-{seed}.building-{os.getpid()}"
            shutil.rmtree(building, ignore_errors=True)
            node = EmbeddedNode.create(
                building,
                contracts=installed_contracts(),
                batch_timeout_s=BATCH_TIMEOUT_S,
                plans=DEMO_ORGS,
            )
            node.start()
            try:
                rng = random.Random(seed)
                for installed in INSTALLED_APPS:
                    if installed.simulate is not None:
                        installed.simulate(attach(node, installed), rng)
            finally:
                node.stop()
            building.rename(template)
    return template


@contextmanager
def simulated_node(
    factory: pytest.TempPathFactory, name: str, *, seed: int
) -> Iterator[EmbeddedNode]:
    """A started node of its own, in a fresh folder named after ``name``, holding what each
    application's ``simulate`` wrote (seeded)."""
    path = factory.mktemp(name) / "node"
    shutil.copytree(_template(factory, seed), path)
    node = EmbeddedNode(path, contracts=installed_contracts(), batch_timeout_s=BATCH_TIMEOUT_S)
    node.start()
    try:
        yield node
    finally:
        node.stop()
