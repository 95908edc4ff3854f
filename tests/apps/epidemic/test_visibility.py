"""Who sees what, as a matrix of identities: a hospital its own reports, a CDC its
area, the province all, everyone else aggregates with small counts suppressed."""

from __future__ import annotations

import pytest

from healthledger.apps.epidemic.provision import CONFIGURER
from healthledger.contracts.errors import AccessDenied
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.support import person, report

GZ, SZ = "gz", "sz"

MATRIX = [
    # identity, cases it may see
    ("gz-first-hospital/dr-li", {GZ}),
    ("gz-first-hospital/lab-huang", {GZ}),
    ("gz-first-hospital/nurse-lin", {GZ}),
    ("sz-peoples-hospital/dr-zhang", {SZ}),
    ("sz-peoples-hospital/lab-wu", {SZ}),
    ("gd-cdc/epi-wang", {GZ, SZ}),
    ("gd-cdc/epi-zhao", {GZ, SZ}),
    ("gd-commission/officer-chen", {GZ, SZ}),
    ("gd-mpa/inspector-feng", None),
    ("yuexiu-pharmacy/pharm-xu", None),
    ("lingnan-bio/qa-liu", None),
]


@pytest.fixture
def cases(node: EmbeddedNode) -> dict[str, str]:
    return {
        GZ: report(node, "gz-first-hospital/dr-li", person(90))["case_id"],
        SZ: report(node, "sz-peoples-hospital/lab-wu", person(91), region="440304")["case_id"],
    }


@pytest.mark.parametrize(("identity", "visible"), MATRIX)
def test_case_visibility(
    node: EmbeddedNode, cases: dict[str, str], identity: str, visible: set[str] | None
) -> None:
    allowed = visible or set()
    for name, case_id in cases.items():
        if name in allowed:
            assert (
                node.query(identity, "epidemic", "get_case", {"case_id": case_id})["case_id"]
                == case_id
            )
        else:
            with pytest.raises(AccessDenied):
                node.query(identity, "epidemic", "get_case", {"case_id": case_id})
    if visible is None:
        with pytest.raises(AccessDenied, match="aggregates only"):
            node.query(identity, "epidemic", "list_cases", {})
    else:
        listed = {c["case_id"] for c in node.query(identity, "epidemic", "list_cases", {})}
        assert listed == {cases[n] for n in visible}


@pytest.mark.parametrize(("identity", "visible"), MATRIX)
def test_aggregates_suppress_small_counts_outside_the_callers_view(
    node: EmbeddedNode, cases: dict[str, str], identity: str, visible: set[str] | None
) -> None:
    rows = node.query(identity, "epidemic", "aggregates", {})
    by_region = {row["region"]: row for row in rows}
    assert set(by_region) == {"440104", "440304"}
    for name, region in ((GZ, "440104"), (SZ, "440304")):
        row = by_region[region]
        if visible is not None and name in visible:
            assert row["count"] == 1
        else:
            assert row == {
                "disease": "influenza",
                "region": region,
                "classification": "suspected",
                "suppressed": True,
            }


def test_aggregates_show_counts_at_or_above_the_threshold_to_the_public(node: EmbeddedNode) -> None:
    for n in range(5):
        report(node, "gz-first-hospital/dr-li", person(100 + n))
    rows = node.query("yuexiu-pharmacy/pharm-xu", "epidemic", "aggregates", {})
    assert rows == [
        {"disease": "influenza", "region": "440104", "classification": "suspected", "count": 5}
    ]


def test_a_city_cdc_sees_its_city_only(node: EmbeddedNode, cases: dict[str, str]) -> None:
    node.invoke(
        CONFIGURER, "epidemic", "register_org", {"org": "gd-cdc", "kind": "cdc", "region": "440100"}
    )
    listed = {c["case_id"] for c in node.query("gd-cdc/epi-zhao", "epidemic", "list_cases", {})}
    assert listed == {cases[GZ]}
    with pytest.raises(AccessDenied):
        node.query("gd-cdc/epi-zhao", "epidemic", "get_case", {"case_id": cases[SZ]})


def test_list_filters(node: EmbeddedNode, cases: dict[str, str]) -> None:
    report(node, "gz-first-hospital/dr-li", person(92), disease="A16.2")
    officer = "gd-commission/officer-chen"
    assert len(node.query(officer, "epidemic", "list_cases", {"disease": "tuberculosis"})) == 1
    assert len(node.query(officer, "epidemic", "list_cases", {"status": "confirmed"})) == 0
    assert len(node.query(officer, "epidemic", "list_cases", {"limit": 2})) == 2
