"""Who may make a product: only the holder of a GTIN's GS1 company prefix registers it,
only the holder of a GLN's prefix binds it, and the consortium records who holds which
prefix (set at founding or admission, changed only by the members' majority)."""

from __future__ import annotations

from typing import Any

import pytest

from healthledger.apps.supply.verification import verify_pack
from healthledger.contracts.errors import AccessDenied, Rejected
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import MAKER, MAKER_OPS, PLANT, capture, step, unit, with_check
from tests.support.seam import supply_seam

PRODUCT = {
    "name": "Influenza vaccine 0.5 ml",
    "dosage_form": "injection",
    "temp_min_dc": 20,
    "temp_max_dc": 80,
    "shelf_life_days": 365,
}
MAKERS_GTIN = with_check("0695123400077")
"""A GTIN inside the maker's (lingnan-bio's) company prefix 6951234."""
MAKERS_GLN = with_check("695123400077")


@pytest.mark.parametrize(
    "admin", ["gz-first-hospital/admin", "yuexiu-pharmacy/admin", "gd-insurance/admin"]
)
def test_the_counterfeit_sequence_is_refused_at_its_first_step(
    node: EmbeddedNode, admin: str
) -> None:
    """The outside probe's sequence: a non-maker's admin registers a GTIN inside a maker's
    prefix (then would bind a GLN there and commission packs). Refused at step one,
    and the second step is refused on its own too."""
    before = node.peer.store.height()
    with pytest.raises(AccessDenied, match="manufacturer"):
        node.invoke(admin, "supply", "register_product", {"gtin": MAKERS_GTIN, **PRODUCT})
    with pytest.raises(AccessDenied):
        node.invoke(admin, "supply", "register_location", {"gln": MAKERS_GLN, "name": "fake"})
    assert node.peer.store.height() == before
    assert node.peer.store.get_state("supply", f"product/{MAKERS_GTIN}") is None


def test_a_maker_registers_only_inside_its_own_prefixes(node: EmbeddedNode) -> None:
    other_makers = with_check("0690000000011")
    with pytest.raises(AccessDenied, match=r"outside the GS1 company prefixes of lingnan-bio"):
        node.invoke(MAKER, "supply", "register_product", {"gtin": other_makers, **PRODUCT})
    pharmacy_prefix = with_check("0695123600011")
    with pytest.raises(AccessDenied, match=r"\(6951234\)"):
        node.invoke(MAKER, "supply", "register_product", {"gtin": pharmacy_prefix, **PRODUCT})
    _, product = node.invoke(MAKER, "supply", "register_product", {"gtin": MAKERS_GTIN, **PRODUCT})
    assert product["maker"] == "lingnan-bio"


def test_a_role_allowed_in_the_wrong_kind_of_organisation_is_refused(node: EmbeddedNode) -> None:
    """An admin may register products, but only an admin of a manufacturer: the
    hospital's admin is refused even for a GTIN inside its own prefix 6951237."""
    own = with_check("0695123700011")
    with pytest.raises(AccessDenied, match="kind manufacturer; gz-first-hospital is hospital"):
        node.invoke(
            "gz-first-hospital/admin", "supply", "register_product", {"gtin": own, **PRODUCT}
        )


def test_regulators_and_insurers_hold_no_places(node: EmbeddedNode) -> None:
    with pytest.raises(AccessDenied, match="gd-mpa is regulator"):
        node.invoke("gd-mpa/admin", "supply", "register_location", {"gln": PLANT, "name": "x"})
    _, bound = node.invoke(MAKER_OPS, "supply", "register_location", {"gln": PLANT, "name": "P"})
    assert bound["org"] == "lingnan-bio"


def organisation(node: EmbeddedNode, org: str) -> dict[str, Any]:
    found = node.peer.store.get_state("membership", f"org/{org}")
    assert found is not None
    return dict(found.value)


def test_prefixes_change_only_by_a_majority_of_members(node: EmbeddedNode) -> None:
    wanted = {"org": "lingnan-bio", "gs1_prefixes": ["6951234", "6960001"]}
    orgs = [o["id"] for o in node.query(MAKER, "membership", "organisations", {})]
    assert len(orgs) == 10
    for org in orgs[:5]:
        _, answer = node.invoke(f"{org}/admin", "membership", "approve_gs1_prefixes", wanted)
        assert answer["status"] == "pending"
        assert organisation(node, "lingnan-bio")["gs1_prefixes"] == ["6951234"]
    new_gtin = with_check("0696000100015")
    with pytest.raises(AccessDenied):
        node.invoke(MAKER, "supply", "register_product", {"gtin": new_gtin, **PRODUCT})
    _, answer = node.invoke(f"{orgs[5]}/admin", "membership", "approve_gs1_prefixes", wanted)
    assert answer["status"] == "set" and len(answer["approved_by"]) == 6
    assert organisation(node, "lingnan-bio")["gs1_prefixes"] == ["6951234", "6960001"]
    node.invoke(MAKER, "supply", "register_product", {"gtin": new_gtin, **PRODUCT})


@pytest.mark.parametrize(
    ("prefixes", "message"),
    [
        (["6951235"], "overlaps 6951235, held by pearl-logistics"),
        (["695123"], r"695123 overlaps 695123\d, held by"),
        (["12345"], "not 6 to 12 digits"),
        (["6960001", "69600012"], "overlap"),
        (["6960001", "6960001"], "listed twice"),
        (["6951234"], "already holds exactly"),
    ],
)
def test_a_prefix_change_that_would_clash_is_refused(
    node: EmbeddedNode, prefixes: list[str], message: str
) -> None:
    with pytest.raises(Rejected, match=message):
        node.invoke(
            "gd-commission/admin",
            "membership",
            "approve_gs1_prefixes",
            {"org": "lingnan-bio", "gs1_prefixes": prefixes},
        )


def test_only_an_admin_approves_prefixes(node: EmbeddedNode) -> None:
    with pytest.raises(AccessDenied):
        node.invoke(
            MAKER,
            "membership",
            "approve_gs1_prefixes",
            {"org": "lingnan-bio", "gs1_prefixes": ["6960001"]},
        )


def test_public_verify_names_the_brand_owner_and_never_vouches_for_a_stray_gtin(
    node: EmbeddedNode,
) -> None:
    """A pack is genuine only while its maker holds its GTIN's prefix: once the members
    take the prefix away, its packs are no longer vouched for."""
    orgs = [o["id"] for o in node.query(MAKER, "membership", "organisations", {})]

    def set_prefixes(prefixes: list[str]) -> None:
        for org in orgs[:6]:
            node.invoke(
                f"{org}/admin",
                "membership",
                "approve_gs1_prefixes",
                {"org": "lingnan-bio", "gs1_prefixes": prefixes},
            )

    set_prefixes(["6951234", "6960001"])
    gtin = with_check("0696000100015")
    node.invoke(MAKER, "supply", "register_product", {"gtin": gtin, **PRODUCT})
    node.invoke(MAKER_OPS, "supply", "register_location", {"gln": PLANT, "name": "Plant"})
    capture(
        node,
        MAKER_OPS,
        step("c", "commission", [unit("V1", gtin)], location=PLANT, lot="L1", expiry="2099-12-31"),
    )
    uri = f"https://id.gs1.org/01/{gtin}/10/L1/21/V1?17=991231"
    answer = verify_pack(supply_seam(node), uri)
    assert answer["status"] == "genuine"
    assert answer["brand_owner"] == {
        "org": "lingnan-bio",
        "name": "Lingnan Biologics (vaccine maker)",
        "prefix": "6960001",
    }
    set_prefixes(["6951234"])
    answer = verify_pack(supply_seam(node), uri)
    assert answer["status"] == "unknown"
    assert answer["brand_owner"] is None and answer["product"] is None
    assert "not registered by the holder of its GS1 company prefix" in answer["reason"]
