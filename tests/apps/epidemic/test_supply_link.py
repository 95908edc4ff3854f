"""A vaccination given through the supply application is linked from its contract
event (the node's block event stream), never re-entered in the epidemic contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from healthledger.apps.epidemic.dashboard import Dashboard, scope_of
from healthledger.apps.epidemic.dates import day_of_ms
from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.readmodel import CaseReadModel
from healthledger.apps.epidemic.regions import RegionTable
from healthledger.apps.registry import installed_contracts
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.conftest import TEST_REGIONS
from tests.apps.supply.conftest import (
    HOSPITAL,
    HOSPITAL_GLN,
    MAKER_OPS,
    capture,
    commission,
    event_hash,
    register_master_data,
    step,
    unit,
)
from tests.support.founding import found
from tests.support.seam import epidemic_seam

PERSON = "p-9b1d7c2e4a6f8d0c"


@pytest.fixture
def both(tmp_path: Path) -> Iterator[EmbeddedNode]:
    """A node with every installed application's contracts, supply master data and the
    epidemic app configured (the vaccinating hospital serves Guangzhou, 440100)."""
    node = found(tmp_path / "data", contracts=installed_contracts(), batch_timeout_s=0.005).start()
    configure(epidemic_seam(node), RegionTable.from_source(TEST_REGIONS))
    register_master_data(node)
    yield node
    node.stop()


def _administer(node: EmbeddedNode, serial: str) -> str:
    commission(node, serial)
    capture(
        node, MAKER_OPS, step(f"ship-{serial}", "ship", [unit(serial)], destination=HOSPITAL_GLN)
    )
    capture(node, HOSPITAL, step(f"recv-{serial}", "receive", [unit(serial)]))
    args = {
        "event_hash": event_hash(f"jab-{serial}"),
        "unit": unit(serial),
        "site": HOSPITAL_GLN,
        "person": PERSON,
    }
    receipt, outcome = node.invoke(HOSPITAL, "supply", "administer", args)
    assert outcome["accepted"]
    return receipt.tx_id


def test_a_supply_administration_is_linked_not_re_entered(both: EmbeddedNode) -> None:
    tx_ids = [_administer(both, "V1"), _administer(both, "V2")]
    model = CaseReadModel(epidemic_seam(both))
    try:
        model.catch_up()
        linked = model.linked_doses()
        assert sorted(d["tx_id"] for d in linked) == sorted(tx_ids)
        for dose in linked:
            assert dose["org"] == "gz-first-hospital" and dose["lot"] == "L1"
            assert dose["day"] == day_of_ms(both.clock())
            tx, _ = both.peer.transaction(dose["tx_id"])
            assert "vaccine_administered" in [e.name for e in tx.response.events]
        # Nothing was written to the epidemic contract for them.
        assert (
            list(both.peer.store.range_state("epidemic", "vaccination/", "vaccination0", 10)) == []
        )
        assert PERSON not in str(model.linked_doses())  # the person id is not kept
        model.rebuild()
        assert len(model.linked_doses()) == 2  # rebuilt from the chain alike
    finally:
        model.close()
    scope = scope_of(epidemic_seam(both), "gd-cdc/epi-wang")
    assert scope is not None
    dashboard = Dashboard(epidemic_seam(both))
    try:
        coverage = {row["code"]: row for row in dashboard.figures(scope)["coverage"]}
    finally:
        dashboard.close()
    assert coverage["440100"]["linked_supply_doses"] == 2
    assert coverage["440100"]["vaccinated"] == 0  # linked beside coverage, not re-counted
