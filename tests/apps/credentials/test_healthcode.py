"""The health code: rules in force only once a majority approves them, never changed
after; each clause's colour from recorded facts; no colour without a clause; appeals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from healthledger.apps.credentials.healthcode_rules import RULES_V1, RULES_V2, digest
from healthledger.contracts.errors import CallerNotAdmitted, InvalidArguments, Rejected
from healthledger.node.embedded import EmbeddedNode
from tests.apps.credentials.healthcode_support import (
    ADMINS,
    DOCTOR,
    EPI,
    OFFICER,
    confirmed_case,
    evaluate,
    lab,
    pid_of,
    propose_and_approve,
    start,
)
from tests.apps.epidemic.support import today


def propose(node: EmbeddedNode, who: str, version: str, rules: object, summary: str) -> None:
    node.invoke(
        who, "healthcode", "propose_rules", {"version": version, "rules": rules, "summary": summary}
    )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    yield from start(tmp_path_factory.mktemp("healthcode") / "data")


def test_rules_are_in_force_once_a_majority_approves_and_never_change(node: EmbeddedNode) -> None:
    seen = node.query(OFFICER, "healthcode", "rule_versions", {})
    assert seen["current"]["version"] == "2026.1"
    assert seen["versions"][0]["status"] == "approved"
    assert len(seen["versions"][0]["approved_by"]) == len(ADMINS) // 2 + 1
    with pytest.raises(Rejected, match="never changes"):
        propose(node, OFFICER, "2026.1", RULES_V2, "Change it afterwards")
    with pytest.raises(Rejected, match="approved already"):
        node.invoke(ADMINS[-1], "healthcode", "approve_rules",
                    {"version": "2026.1", "digest": digest(RULES_V1)})  # fmt: skip
    propose(node, OFFICER, "2026.9", RULES_V2, "Pending for this test")
    with pytest.raises(Rejected, match="digest"):
        node.invoke(ADMINS[0], "healthcode", "approve_rules",
                    {"version": "2026.9", "digest": digest(RULES_V1)})  # fmt: skip
    node.invoke(ADMINS[0], "healthcode", "approve_rules",
                {"version": "2026.9", "digest": digest(RULES_V2)})  # fmt: skip
    after = node.query(OFFICER, "healthcode", "rule_versions", {})
    assert after["current"]["version"] == "2026.1"  # one approval of ten is not a majority
    bad = {**RULES_V1, "clauses": RULES_V1["clauses"][:-1]}
    with pytest.raises(InvalidArguments, match="fact none"):
        propose(node, OFFICER, "2026.8", bad, "No default clause here")
    with pytest.raises(CallerNotAdmitted):
        propose(node, EPI, "2026.7", RULES_V1, "A CDC cannot propose")


def test_each_clause_gives_its_colour_citing_the_facts(node: EmbeddedNode) -> None:
    nobody = pid_of(node, 11)
    assert evaluate(node, nobody)["clause"] == "no-finding"

    tested = pid_of(node, 12)
    lab(node, 12, "positive", days_ago=2)
    code = evaluate(node, tested)
    assert (code["colour"], code["clause"], code["version"]) == (
        "yellow",
        "positive-test",
        "2026.1",
    )
    [trigger] = code["inputs"]
    assert trigger["kind"] == "lab" and trigger["day"] == today(node) - 2
    assert len(trigger["commitment"]) == 64 and trigger["part"] == "trigger"
    lab(node, 12, "negative", days_ago=1)
    code = evaluate(node, tested)
    assert (code["colour"], code["previous"]) == ("green", "yellow")
    assert [i["part"] for i in code["inputs"]][1] == "exemption of positive-test"

    case = pid_of(node, 13)
    case_id = confirmed_case(node, 13, days_ago=3)
    code = evaluate(node, case)
    assert (code["colour"], code["clause"]) == ("red", "confirmed-case")
    assert code["inputs"][0]["id"] == case_id
    assert (code["region"], code["region_name"]) == ("440104", "Yuexiu")

    contact = pid_of(node, 14)
    node.invoke(EPI, "healthcode", "notify_contact",
                {"pid": contact, "day": today(node) - 8, "region": "440106"})  # fmt: skip
    assert evaluate(node, contact)["colour"] == "green"  # 8 days ago: outside 7 days
    with pytest.raises(InvalidArguments, match="disease"):
        args = {"pid": contact, "day": today(node), "region": "440106", "disease": "rabies"}
        node.invoke(EPI, "healthcode", "notify_contact", args)


def test_a_colour_without_a_satisfying_clause_is_refused(node: EmbeddedNode) -> None:
    depositor = pid_of(node, 21)
    evaluate(node, depositor)
    height = node.peer.store.height()
    with pytest.raises(Rejected, match=r"no clause of rules 2026\.1 makes this person red"):
        evaluate(node, depositor, expect="red")
    with pytest.raises(Rejected, match="already green"):
        evaluate(node, depositor)
    assert node.peer.store.height() == height
    assert node.query(EPI, "healthcode", "code", {"pid": depositor})["colour"] == "green"
    with pytest.raises(CallerNotAdmitted):
        node.invoke(DOCTOR, "healthcode", "evaluate", {"pid": depositor, "expect": "red"})


def test_an_appeal_is_decided_by_the_cdc_and_an_overturn_cites_it(node: EmbeddedNode) -> None:
    contact = pid_of(node, 31)
    node.invoke(EPI, "healthcode", "notify_contact",
                {"pid": contact, "day": today(node) - 1, "region": "440106"})  # fmt: skip
    assert evaluate(node, contact)["clause"] == "close-contact"
    _, appeal = node.invoke(DOCTOR, "healthcode", "file_appeal",
                            {"pid": contact, "grounds": "no-exposure"})  # fmt: skip
    assert (appeal["filed_by"], appeal["filer"]) == ("gz-first-hospital", DOCTOR)
    filed = node.query(EPI, "healthcode", "appeals", {"status": "filed"})
    assert [a["filer"] for a in filed if a["appeal_id"] == appeal["appeal_id"]] == [DOCTOR]
    with pytest.raises(Rejected, match="awaits"):
        node.invoke(
            DOCTOR, "healthcode", "file_appeal", {"pid": contact, "grounds": "wrong-person"}
        )
    with pytest.raises(InvalidArguments, match="reason"):
        node.invoke(EPI, "healthcode", "decide_appeal",
                    {"appeal_id": appeal["appeal_id"], "ruling": "overturned",
                     "reason": "rules-applied-correctly"})  # fmt: skip
    _, decided = node.invoke(EPI, "healthcode", "decide_appeal",
                             {"appeal_id": appeal["appeal_id"], "ruling": "overturned",
                              "reason": "fact-wrong-person"})  # fmt: skip
    assert decided["colour_after"] == "green"
    code = node.query(EPI, "healthcode", "code", {"pid": contact})
    assert (code["colour"], code["appeal"]) == ("green", appeal["appeal_id"])
    with pytest.raises(Rejected, match="already green"):  # the notice stays set aside
        evaluate(node, contact)

    case = pid_of(node, 32)
    confirmed_case(node, 32, days_ago=1)
    evaluate(node, case)
    _, appeal = node.invoke(DOCTOR, "healthcode", "file_appeal",
                            {"pid": case, "grounds": "recovered"})  # fmt: skip
    _, decided = node.invoke(EPI, "healthcode", "decide_appeal",
                             {"appeal_id": appeal["appeal_id"], "ruling": "upheld",
                              "reason": "rules-applied-correctly"})  # fmt: skip
    assert decided["status"] == "upheld"
    assert node.query(EPI, "healthcode", "code", {"pid": case})["colour"] == "red"
    with pytest.raises(Rejected, match="only a yellow or red"):
        node.invoke(DOCTOR, "healthcode", "file_appeal", {"pid": contact, "grounds": "no-exposure"})


def test_a_rules_change_turns_a_code_citing_the_new_version(node: EmbeddedNode) -> None:
    contact = pid_of(node, 41)
    node.invoke(EPI, "healthcode", "notify_contact",
                {"pid": contact, "day": today(node) - 8, "region": "440106"})  # fmt: skip
    assert evaluate(node, contact)["colour"] == "green"
    propose_and_approve(node, "2026.2", RULES_V2)
    code = evaluate(node, contact)
    assert (code["colour"], code["clause"], code["version"]) == (
        "yellow",
        "close-contact",
        "2026.2",
    )
