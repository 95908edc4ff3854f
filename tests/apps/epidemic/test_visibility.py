"""Who sees what, as a matrix of identities: a hospital its own reports, a CDC its
area, the province all, everyone else aggregates with small counts suppressed; and
detail across regions only by a grant recorded on chain."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.apps.epidemic.dashboard import Dashboard, scope_of
from healthledger.apps.epidemic.provision import CONFIGURER
from healthledger.contracts.errors import AccessDenied, InvalidArguments
from healthledger.node.embedded import EmbeddedNode
from healthledger.ordering.solo import wall_clock_ms
from tests.apps.epidemic.conftest import CONTRACTS
from tests.apps.epidemic.support import person, report, today
from tests.support.members import member_reads
from tests.support.seam import epidemic_seam

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


# --- detail across regions only by a grant recorded on chain -------------------------

OFFICER = "gd-commission/officer-chen"
GRANT_MATRIX = [
    # identity, cases it sees (the CDC serving Guangzhou only) without, with the grant
    ("gd-cdc/epi-wang", {GZ}, {GZ, SZ}),
    ("gd-cdc/epi-zhao", {GZ}, {GZ, SZ}),
    ("gd-commission/officer-chen", {GZ, SZ}, {GZ, SZ}),
    ("gz-first-hospital/dr-li", {GZ}, {GZ}),
    ("sz-peoples-hospital/lab-wu", {SZ}, {SZ}),
    ("gd-mpa/inspector-feng", set(), set()),
]


def _city_cdc(node: EmbeddedNode) -> None:
    node.invoke(
        CONFIGURER, "epidemic", "register_org", {"org": "gd-cdc", "kind": "cdc", "region": "440100"}
    )


def _grant(node: EmbeddedNode, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "grantee": "gd-cdc",
        "regions": ["440300"],
        "until_date": today(node) + 7,
        "purpose": "cross-border-cluster",
        "reference": "GD-2026-0042",
    }
    _, grant = node.invoke(OFFICER, "epidemic", "grant_access", {**args, **overrides})
    assert isinstance(grant, dict)
    return grant


def _visible(node: EmbeddedNode, identity: str, cases: dict[str, str]) -> set[str]:
    seen = set()
    for name, case_id in cases.items():
        try:
            node.query(identity, "epidemic", "get_case", {"case_id": case_id})
        except AccessDenied:
            continue
        seen.add(name)
    if seen:
        listed = {c["case_id"] for c in node.query(identity, "epidemic", "list_cases", {})}
        assert listed == {cases[n] for n in seen}
    return seen


@pytest.mark.parametrize(("identity", "without", "with_grant"), GRANT_MATRIX)
def test_detail_across_regions_only_by_a_recorded_grant(
    node: EmbeddedNode,
    cases: dict[str, str],
    identity: str,
    without: set[str],
    with_grant: set[str],
) -> None:
    _city_cdc(node)
    assert _visible(node, identity, cases) == without
    grant = _grant(node)
    assert _visible(node, identity, cases) == with_grant
    node.invoke(
        OFFICER,
        "epidemic",
        "revoke_grant",
        {"grantee": "gd-cdc", "grant_id": grant["grant_id"]},
    )
    assert _visible(node, identity, cases) == without


def test_a_grant_records_who_whom_which_regions_until_when_and_why(
    node: EmbeddedNode, cases: dict[str, str]
) -> None:
    _city_cdc(node)
    grant = _grant(node)
    assert {k: grant[k] for k in ("grantor_org", "by", "grantee", "regions", "purpose")} == {
        "grantor_org": "gd-commission",
        "by": OFFICER,
        "grantee": "gd-cdc",
        "regions": ["440300"],
        "purpose": "cross-border-cluster",
    }
    assert grant["until_day"] == today(node) + 7 and grant["reference"] == "GD-2026-0042"
    listed = node.query("gd-cdc/epi-wang", "epidemic", "grants", {})
    assert [g["grant_id"] for g in listed] == [grant["grant_id"]]
    with pytest.raises(AccessDenied):
        node.query("gd-mpa/inspector-feng", "epidemic", "grants", {})
    # After its last day it grants nothing: the same ledger, its node's clock eight
    # days on.
    data = node.data_dir
    node.stop()
    later = EmbeddedNode(
        data,
        contracts=CONTRACTS,
        clock=lambda: wall_clock_ms() + 8 * 86_400_000,
        batch_timeout_s=0.005,
    ).start()
    try:
        with pytest.raises(AccessDenied):
            later.query("gd-cdc/epi-wang", "epidemic", "get_case", {"case_id": cases[SZ]})
        later.query(OFFICER, "epidemic", "get_case", {"case_id": cases[SZ]})
        scope = scope_of(epidemic_seam(later), "gd-cdc/epi-wang")
        assert scope is not None and scope.prefixes == ("4401",)
    finally:
        later.stop()


def test_grants_are_refused_outside_the_grantors_area_and_to_the_wrong_parties(
    node: EmbeddedNode,
) -> None:
    _city_cdc(node)
    with pytest.raises(AccessDenied, match="not in the area of gd-cdc"):
        node.invoke(
            "gd-cdc/epi-wang",
            "epidemic",
            "grant_access",
            {
                "grantee": "gd-commission",
                "regions": ["440304"],
                "until_date": today(node) + 1,
                "purpose": "mutual-aid",
            },
        )
    with pytest.raises(AccessDenied):  # a hospital grants nothing
        node.invoke(
            "gz-first-hospital/dr-li",
            "epidemic",
            "grant_access",
            {
                "grantee": "gd-cdc",
                "regions": ["440104"],
                "until_date": today(node),
                "purpose": "audit",
            },
        )
    with pytest.raises(InvalidArguments) as refused:
        _grant(node, grantee="gz-first-hospital", regions=["449999"], until_date=today(node) - 1)
    assert {e["field"] for e in refused.value.errors} == {"grantee", "regions", "until_date"}
    with pytest.raises(InvalidArguments, match="reference"):
        _grant(node, reference="Patient Zhang San")
    with pytest.raises(InvalidArguments, match="until_date"):
        _grant(node, until_date=today(node) + 400)


def test_the_dashboard_and_its_exports_follow_grants(
    node: EmbeddedNode, cases: dict[str, str]
) -> None:
    _city_cdc(node)
    dashboard = Dashboard(epidemic_seam(node))
    try:
        scope = scope_of(epidemic_seam(node), "gd-cdc/epi-wang")
        assert scope is not None and scope.prefixes == ("4401",)
        assert {r["case_id"] for r in dashboard.line_list(scope)} == {cases[GZ]}
        _grant(node)
        scope = scope_of(epidemic_seam(node), "gd-cdc/epi-wang")
        assert scope is not None and scope.prefixes == ("4401", "4403")
        assert "granted on chain" in scope.label
        assert {r["case_id"] for r in dashboard.line_list(scope)} == set(cases.values())
        figures = dashboard.figures(scope, disease="influenza")
        assert figures["total"] == 2
        assert sum(r["count"] for r in dashboard.aggregates(scope)) == 2
    finally:
        dashboard.close()


def test_the_api_refuses_detail_across_regions_without_a_grant(
    node: EmbeddedNode, cases: dict[str, str]
) -> None:
    _city_cdc(node)
    with TestClient(create_api(node, demo_custody=True), raise_server_exceptions=False) as api:
        api.auth = member_reads(node)

        def get_case(case_id: str) -> Any:
            body = {
                "identity": "gd-cdc/epi-wang",
                "contract": "epidemic",
                "function": "get_case",
                "args": {"case_id": case_id},
            }
            return api.post("/api/v1/demo/query", json=body)

        refused = get_case(cases[SZ])
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert get_case(cases[GZ]).status_code == 200
        grant = {
            "identity": OFFICER,
            "contract": "epidemic",
            "function": "grant_access",
            "args": {
                "grantee": "gd-cdc",
                "regions": ["440300"],
                "until_date": today(node) + 1,
                "purpose": "outbreak-investigation",
            },
        }
        assert api.post("/api/v1/demo/invoke", json=grant).status_code == 200
        shown = get_case(cases[SZ])
        assert shown.status_code == 200 and shown.json()["result"]["case_id"] == cases[SZ]
