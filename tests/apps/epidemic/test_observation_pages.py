"""``list_observations`` pages lab results and vaccinations newest recorded first, with a
cursor: every record the caller may see is on exactly one page, past the 10,000 keys one
range read returns and whatever is recorded between pages; the viewer rules are those
of cases."""

from __future__ import annotations

from typing import Any

import pytest

from healthledger.contracts.errors import AccessDenied, InvalidArguments
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.support import person, state_records, today

LAB = "gz-first-hospital/lab-huang"
SZ_LAB = "sz-peoples-hospital/lab-wu"
NURSE = "gz-first-hospital/nurse-lin"
EPI = "gd-cdc/epi-wang"


def _lab(node: EmbeddedNode, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "test": "94500-6",
        "result": "negative",
        "specimen_date": today(node) - 2,
        "result_date": today(node) - 1,
        "region": "440104",
    }
    return {**args, **overrides}


def _post_labs(node: EmbeddedNode, count: int) -> None:
    """``count`` lab results of one person, in bundles of 500."""
    for start in range(0, count, 500):
        labs = [{**_lab(node), "patient": 0} for _ in range(min(500, count - start))]
        node.invoke(
            LAB,
            "epidemic",
            "report_bundle",
            {"cases": [], "labs": labs, "doses": []},
            transient={"patients": [person(5)]},
        )


def _post_one(node: EmbeddedNode, identity: str = LAB, **overrides: Any) -> str:
    _, found = node.invoke(
        identity,
        "epidemic",
        "report_lab_result",
        _lab(node, **overrides),
        transient={"patient": person(6)},
    )
    return str(found["lab_id"])


def _page(node: EmbeddedNode, identity: str, **args: Any) -> dict[str, Any]:
    found = node.query(identity, "epidemic", "list_observations", args)
    assert isinstance(found, dict)
    return found


def _ids(page: dict[str, Any], kind: str = "lab") -> list[str]:
    return [r[f"{'lab' if kind == 'lab' else 'vaccination'}_id"] for r in page["observations"]]


def _newest_first(records: list[dict[str, Any]], id_field: str = "lab_id") -> list[str]:
    return [r[id_field] for r in sorted(records, key=lambda r: (-r["reported_at"], r[id_field]))]


def test_every_lab_result_is_on_one_page_past_the_first_10000_keys(node: EmbeddedNode) -> None:
    _post_labs(node, 10_000)
    newest = _post_one(node)
    expected = _newest_first(state_records(node, "lab/"))
    assert len(expected) == 10_001 and expected[0] == newest

    first = _page(node, LAB, kind="lab", limit=4000)
    assert (first["total"], first["offset"]) == (10_001, 0)
    assert _ids(first) == expected[:4000]
    # A result recorded between pages is newer than the place asked after: the pages
    # that follow neither repeat nor skip anything.
    later = _post_one(node)
    second = _page(node, LAB, kind="lab", limit=4000, after=first["next"])
    third = _page(node, LAB, kind="lab", limit=4000, after=second["next"])
    assert (second["total"], second["offset"]) == (10_002, 4001)
    assert third["next"] == "" and third["offset"] == 8001
    assert _ids(first) + _ids(second) + _ids(third) == expected
    assert _ids(_page(node, LAB, kind="lab", limit=1)) == [later]


def test_pages_follow_the_viewer_rules_of_cases(node: EmbeddedNode) -> None:
    gz = [_post_one(node) for _ in range(3)]
    sz = _post_one(node, SZ_LAB, region="440304")
    for serial, number in ((7, 1), (7, 2), (8, 1)):
        node.invoke(
            NURSE,
            "epidemic",
            "record_vaccination",
            {"vaccine": "510", "dose_number": number, "administered_date": today(node) - 3},
            transient={"patient": person(serial)},
        )
    records = state_records(node, "lab/")
    for identity, seen in ((LAB, set(gz)), (SZ_LAB, {sz}), (EPI, {*gz, sz})):
        pages, after = [], ""
        while True:
            found = _page(node, identity, kind="lab", limit=2, after=after)
            pages.append(_ids(found))
            after = found["next"]
            if not after:
                break
        listed = [i for page in pages for i in page]
        assert listed == [i for i in _newest_first(records) if i in seen]
        assert all(len(page) == 2 for page in pages[:-1])
    doses = _page(node, NURSE, kind="vaccination", limit=2)
    rest = _page(node, NURSE, kind="vaccination", limit=2, after=doses["next"])
    assert len(_ids(doses, "vaccination") + _ids(rest, "vaccination")) == 3
    assert _ids(doses, "vaccination") + _ids(rest, "vaccination") == _newest_first(
        state_records(node, "vaccination/"), "vaccination_id"
    )
    assert _page(node, SZ_LAB, kind="vaccination")["observations"] == []


def test_outside_reporting_and_bad_arguments_are_refused(node: EmbeddedNode) -> None:
    _post_one(node)
    with pytest.raises(AccessDenied, match="aggregates only"):
        _page(node, "yuexiu-pharmacy/pharm-xu", kind="lab")
    with pytest.raises(InvalidArguments, match="not a position"):
        _page(node, EPI, kind="lab", after="yesterday")
    with pytest.raises(InvalidArguments, match="limit 0"):
        _page(node, EPI, kind="lab", limit=0)
    with pytest.raises(InvalidArguments):
        _page(node, EPI, kind="results")
