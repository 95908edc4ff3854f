"""``list_observations`` pages lab results and vaccinations newest recorded first, with a
cursor: every record the caller may see is on exactly one page, past the 10,000 keys one
range read returns and whatever is recorded between pages; the viewer rules are those
of cases."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from healthledger.apps.epidemic.provision import CONFIGURER
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


# --- pages read the index newest first, not every record ----------------------------

OFFICER = "gd-commission/officer-chen"
VIEWERS = (LAB, NURSE, SZ_LAB, "sz-peoples-hospital/dr-zhang", EPI, OFFICER)


def _bundle(node: EmbeddedNode, identity: str, regions: list[str], serial: int) -> None:
    """One lab result per region in ``regions``, in one transaction (one recorded time,
    ordered by id)."""
    labs = [{**_lab(node, region=region), "patient": 0} for region in regions]
    node.invoke(
        identity,
        "epidemic",
        "report_bundle",
        {"cases": [], "labs": labs, "doses": []},
        transient={"patients": [person(serial)]},
    )


def _dose(node: EmbeddedNode, identity: str, serial: int, region: str) -> None:
    args = {"vaccine": "510", "dose_number": 1, "administered_date": today(node) - 3}
    node.invoke(
        identity,
        "epidemic",
        "record_vaccination",
        {**args, "region": region},
        transient={"patient": person(serial)},
    )


def _mixed(node: EmbeddedNode) -> None:
    """Lab results and doses of two hospitals in every district, some recorded in one
    transaction, some one by one."""
    districts = ["440104", "440106", "440304"]
    _bundle(node, LAB, districts * 5, 20)
    _bundle(node, SZ_LAB, [*districts, "440300"] * 3, 21)
    for n, region in enumerate(districts):
        _post_one(node, region=region)
        _post_one(node, SZ_LAB, region=region)
        _dose(node, NURSE, 30 + n, region)
        _dose(node, "sz-peoples-hospital/dr-zhang", 40 + n, region)
    _bundle(node, LAB, ["440100", "440104"] * 4, 22)


def _expected(node: EmbeddedNode, identity: str, kind: str) -> list[str]:
    """The old full scan: every record of ``kind``, newest recorded first, that the
    caller sees when it asks for the record by its id."""
    id_field = f"{kind}_id"
    every = _newest_first(state_records(node, f"{kind}/"), id_field)
    seen = []
    for start in range(0, len(every), 1000):  # the most asked at once
        ids = every[start : start + 1000]
        seen += node.query(identity, "epidemic", "get_observations", {"kind": kind, "ids": ids})
    return [found for found, record in zip(every, seen, strict=True) if record is not None]


def _every_page(node: EmbeddedNode, identity: str, kind: str, **args: Any) -> list[dict[str, Any]]:
    pages, after = [], ""
    while True:
        pages.append(_page(node, identity, kind=kind, limit=4, after=after, **args))
        after = pages[-1]["next"]
        if not after:
            return pages


def _assert_pages_equal_the_full_scan(node: EmbeddedNode) -> None:
    for identity in VIEWERS:
        for kind in ("lab", "vaccination"):
            expected = _expected(node, identity, kind)
            pages = _every_page(node, identity, kind)
            assert [i for page in pages for i in _ids(page, kind)] == expected, identity
            offsets = [page["offset"] for page in pages]
            assert offsets == list(range(0, max(len(expected), 1), 4)), identity
            assert {page["total"] for page in pages} == {len(expected)}
            uncounted = _every_page(node, identity, kind, count=False)
            assert [(p["observations"], p["next"]) for p in uncounted] == [
                (p["observations"], p["next"]) for p in pages
            ]
            assert {(p["total"], p["offset"]) for p in uncounted} == {(None, None)}


def test_pages_equal_the_full_scan_for_hospitals_cdcs_and_grants(node: EmbeddedNode) -> None:
    _mixed(node)
    assert len(_expected(node, EPI, "lab")) == len(state_records(node, "lab/")) == 41
    assert 0 < len(_expected(node, LAB, "lab")) < 41
    _assert_pages_equal_the_full_scan(node)
    # The CDC serving Guangzhou only, then with Shenzhen granted to it by the commission.
    node.invoke(
        CONFIGURER, "epidemic", "register_org", {"org": "gd-cdc", "kind": "cdc", "region": "440100"}
    )
    assert 0 < len(_expected(node, EPI, "lab")) < 41
    _assert_pages_equal_the_full_scan(node)
    grant = {
        "grantee": "gd-cdc",
        "regions": ["440300"],
        "until_date": today(node) + 7,
        "purpose": "cross-border-cluster",
        "reference": "GD-2026-0042",
    }
    node.invoke(OFFICER, "epidemic", "grant_access", grant)
    assert len(_expected(node, EPI, "lab")) == 41
    _assert_pages_equal_the_full_scan(node)


class _Reads:
    """Counts the state entries queries read under some key prefixes, on the peer's
    real store."""

    def __init__(self, node: EmbeddedNode, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: Counter[str] = Counter()
        self.node = node
        store = node.peer.store
        ranged, got = store.range_state, store.get_state

        def range_state(namespace: str, start: str, end: str, limit: int) -> Iterator[Any]:
            for key, item in ranged(namespace, start, end, limit):
                self._count(namespace, key)
                yield key, item

        def get_state(namespace: str, key: str) -> Any:
            self._count(namespace, key)
            return got(namespace, key)

        monkeypatch.setattr(store, "range_state", range_state)
        monkeypatch.setattr(store, "get_state", get_state)

    def _count(self, namespace: str, key: str) -> None:
        if namespace == "epidemic":
            self.counts[key.split("/", 1)[0]] += 1

    def of(self, identity: str, **args: Any) -> tuple[dict[str, Any], Counter[str]]:
        """The page ``identity`` is given and the entries read for it, by the first part
        of their keys."""
        self.counts.clear()
        found = _page(self.node, identity, **args)
        return found, Counter(self.counts)


def test_a_page_reads_about_as_many_entries_as_it_lists(
    node: EmbeddedNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n, region in enumerate(("440104", "440106", "440304", "440100")):
        _bundle(node, LAB, [region] * 500, 50 + n)
        _bundle(node, SZ_LAB, [region] * 250, 60 + n)
    newest = _post_one(node, SZ_LAB, region="440304")
    reads = _Reads(node, monkeypatch)
    for identity, in_view in ((LAB, 2000), (SZ_LAB, 1001), (EPI, 3001), (OFFICER, 3001)):
        first = _page(node, identity, kind="lab", limit=10, count=False)
        assert len(first["observations"]) == 10
        following, read = reads.of(identity, kind="lab", limit=10, after=first["next"], count=False)
        # The 10 records listed, and per region or organisation range at most one read
        # of the entries that start it (11 and the cursor's), of thousands in view.
        assert read["lab"] == 10 and read["recent"] <= 6 * 12, (identity, read)
        counted, read = reads.of(identity, kind="lab", limit=10)
        assert read["recent"] >= in_view  # counting reads every entry in view
        assert counted["total"] == in_view
        assert _ids(first) + _ids(following) == _expected(node, identity, "lab")[:20]
    assert _ids(_page(node, SZ_LAB, kind="lab", limit=1, count=False)) == [newest]
