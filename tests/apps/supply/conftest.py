"""A real embedded node with the supply contract, and helpers to build supply traffic."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from healthledger.apps.supply.contract import SupplyContract
from healthledger.apps.supply.digital_link import check_digit
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.node.embedded import EmbeddedNode
from tests.support.founding import found

CONTRACTS = (*SYSTEM_CONTRACTS, SupplyContract)
MAKER = "lingnan-bio/qa-liu"
MAKER_OPS = "lingnan-bio/ops-he"
DISTRIBUTOR = "pearl-logistics/ops-guo"
PHARMACY = "yuexiu-pharmacy/pharm-xu"
HOSPITAL = "gz-first-hospital/nurse-lin"
REGULATOR = "gd-mpa/inspector-feng"


def with_check(digits: str) -> str:
    """``digits`` followed by their GS1 check digit."""
    return digits + str(check_digit(digits))


GTIN = with_check("0695123400001")
OTHER_GTIN = with_check("0695123400002")
PLANT = with_check("695123400001")
WAREHOUSE = with_check("695123500002")
PHARMACY_GLN = with_check("695123600003")
HOSPITAL_GLN = with_check("695123700004")
"""Each place inside its holder's own GS1 company prefix (the demo's: maker 6951234,
distributor 6951235, pharmacy 6951236, hospital 6951237)."""
SSCC = with_check("00695123400000001")


def unit(serial: str, gtin: str = GTIN) -> str:
    return f"01/{gtin}/21/{serial}"


def event_hash(label: str) -> str:
    return f"ni:///sha-256;{hashlib.sha256(label.encode()).hexdigest()}?ver=CBV2.0"


def step(label: str, op: str, units: list[str], **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"event_hash": event_hash(label), "op": op, "units": units}
    return {**base, **extra}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[EmbeddedNode]:
    created = found(tmp_path / "data", contracts=CONTRACTS, batch_timeout_s=0.005)
    created.start()
    yield created
    created.stop()


def register_master_data(node: EmbeddedNode) -> EmbeddedNode:
    """Master data: the maker's product and plant, the warehouse, the pharmacy, the hospital."""
    node.invoke(
        MAKER,
        "supply",
        "register_product",
        {
            "gtin": GTIN,
            "name": "Influenza vaccine 0.5 ml",
            "dosage_form": "injection",
            "temp_min_dc": 20,
            "temp_max_dc": 80,
            "shelf_life_days": 365,
        },
    )
    node.invoke(MAKER_OPS, "supply", "register_location", {"gln": PLANT, "name": "Plant"})
    node.invoke(DISTRIBUTOR, "supply", "register_location", {"gln": WAREHOUSE, "name": "DC"})
    node.invoke(PHARMACY, "supply", "register_location", {"gln": PHARMACY_GLN, "name": "Shop"})
    node.invoke(HOSPITAL, "supply", "register_location", {"gln": HOSPITAL_GLN, "name": "Ward"})
    return node


@pytest.fixture
def supply(node: EmbeddedNode) -> EmbeddedNode:
    """A node with the master data registered."""
    return register_master_data(node)


def capture(node: EmbeddedNode, identity: str, *steps: dict[str, Any]) -> Any:
    _, result = node.invoke(identity, "supply", "capture", {"steps": list(steps)})
    return result


def commission(node: EmbeddedNode, *serials: str, expiry: str = "2099-12-31") -> None:
    capture(
        node,
        MAKER_OPS,
        step(
            f"commission-{serials}",
            "commission",
            [unit(s) for s in serials],
            location=PLANT,
            lot="L1",
            expiry=expiry,
        ),
    )
