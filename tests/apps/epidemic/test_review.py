"""The CDC's review: confirm, reject, ask for more; CDC endorsement; timeliness."""

from __future__ import annotations

from typing import Any

import pytest

from healthledger.apps.epidemic.provision import CONFIGURER
from healthledger.contracts.errors import AccessDenied, InvalidArguments, Rejected
from healthledger.ledger.transaction import Transaction, ValidationCode, sign_endorsement
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.errors import TransactionRefused
from tests.apps.epidemic.support import person, report, today

EPI = "gd-cdc/epi-wang"


def _case(node: EmbeddedNode, case_id: str) -> dict[str, Any]:
    case = node.query(EPI, "epidemic", "get_case", {"case_id": case_id})
    assert isinstance(case, dict)
    return case


def _review(node: EmbeddedNode, fn: str, case_id: str, identity: str = EPI, **args: Any) -> Any:
    receipt, result = node.invoke(identity, "epidemic", fn, {"case_id": case_id, **args})
    assert receipt.code is ValidationCode.VALID
    return receipt, result


def test_the_cdc_confirms_with_its_own_endorsement(node: EmbeddedNode) -> None:
    case_id = report(node)["case_id"]
    receipt, result = _review(node, "confirm", case_id)
    assert result["status"] == "confirmed"
    tx, _ = node.peer.transaction(receipt.tx_id)
    assert [e.endorser for e in tx.endorsements] == ["gd-cdc/peer0"]
    case = _case(node, case_id)
    assert case["status"] == "confirmed"
    assert case["review"]["by"] == EPI
    assert case["timeliness"]["diagnosis_to_report_days"] == 1
    assert (
        0 <= case["timeliness"]["report_to_review_ms"] == case["review"]["at"] - case["reported_at"]
    )


def test_the_cdc_rejects_with_a_coded_reason(node: EmbeddedNode) -> None:
    case_id = report(node)["case_id"]
    _review(node, "reject", case_id, identity="gd-cdc/epi-zhao", reason="not-a-case")
    case = _case(node, case_id)
    assert case["status"] == "rejected"
    assert case["review"]["reason"] == "not-a-case"
    with pytest.raises(InvalidArguments):
        node.invoke(EPI, "epidemic", "reject", {"case_id": case_id, "reason": "Patient Chen lied"})
    with pytest.raises(Rejected):
        node.invoke(
            "gz-first-hospital/dr-li",
            "epidemic",
            "update_outcome",
            {"case_id": case_id, "outcome": "recovered", "outcome_date": today(node)},
        )


def test_more_information_then_amendment_then_confirmation(node: EmbeddedNode) -> None:
    case_id = report(node, classification="suspected")["case_id"]
    _review(node, "request_info", case_id, fields=["lab-evidence", "classification"])
    case = _case(node, case_id)
    assert case["status"] == "info-requested"
    assert case["review"]["fields"] == ["classification", "lab-evidence"]
    first_review_ms = case["timeliness"]["report_to_review_ms"]
    now = today(node)
    receipt, _ = node.invoke(
        "gz-first-hospital/lab-huang",
        "epidemic",
        "amend_case",
        {
            "case_id": case_id,
            "classification": "confirmed",
            "onset_date": now - 4,
            "diagnosis_date": now - 1,
        },
    )
    tx, _ = node.peer.transaction(receipt.tx_id)
    assert "gd-cdc/peer0" in [e.endorser for e in tx.endorsements]
    amended = _case(node, case_id)
    assert (amended["status"], amended["classification"], amended["onset"]) == (
        "reported",
        "confirmed",
        now - 4,
    )
    _review(node, "confirm", case_id)
    # Timeliness measures the first review, not the last.
    assert _case(node, case_id)["timeliness"]["report_to_review_ms"] == first_review_ms


def test_status_rules(node: EmbeddedNode) -> None:
    case_id = report(node)["case_id"]
    with pytest.raises(Rejected, match="only info-requested"):
        node.invoke(
            "gz-first-hospital/dr-li",
            "epidemic",
            "amend_case",
            {
                "case_id": case_id,
                "classification": "confirmed",
                "onset_date": today(node) - 3,
                "diagnosis_date": today(node),
            },
        )
    _review(node, "confirm", case_id)
    for fn, extra in (
        ("confirm", {}),
        ("reject", {"reason": "duplicate"}),
        ("request_info", {"fields": ["region"]}),
    ):
        with pytest.raises(Rejected, match="is confirmed"):
            node.invoke(EPI, "epidemic", fn, {"case_id": case_id, **extra})
    with pytest.raises(InvalidArguments):
        node.invoke(
            EPI,
            "epidemic",
            "request_info",
            {"case_id": report(node, patient=person(2))["case_id"], "fields": []},
        )


@pytest.mark.parametrize(
    "identity",
    [
        "gz-first-hospital/dr-li",
        "gd-commission/officer-chen",
        "gd-cdc/admin",
        "gd-mpa/inspector-feng",
    ],
)
def test_only_cdc_epidemiologists_review(node: EmbeddedNode, identity: str) -> None:
    case_id = report(node)["case_id"]
    height = node.peer.store.height()
    with pytest.raises(AccessDenied):
        node.invoke(identity, "epidemic", "confirm", {"case_id": case_id})
    assert node.peer.store.height() == height
    assert _case(node, case_id)["status"] == "reported"


def test_a_cdc_reviews_only_its_own_area(node: EmbeddedNode) -> None:
    node.invoke(
        CONFIGURER, "epidemic", "register_org", {"org": "gd-cdc", "kind": "cdc", "region": "440100"}
    )
    guangzhou = report(node)["case_id"]
    shenzhen = report(node, "sz-peoples-hospital/dr-zhang", person(9), region="440304")["case_id"]
    _review(node, "confirm", guangzhou)
    with pytest.raises(AccessDenied, match="not in the area"):
        node.invoke(EPI, "epidemic", "confirm", {"case_id": shenzhen})


def test_a_review_endorsed_without_the_cdc_peer_is_refused(node: EmbeddedNode) -> None:
    case_id = report(node)["case_id"]
    signed = node.propose(EPI, "epidemic", "confirm", {"case_id": case_id})
    honest = node.peer.endorse(signed)
    hospital_peer = node.keystore.get("gz-first-hospital/peer0")
    assert hospital_peer is not None
    forged = Transaction(
        honest.signed_proposal,
        honest.response,
        (
            sign_endorsement(
                honest.tx_id, honest.response, endorser=hospital_peer.id, key=hospital_peer.key
            ),
        ),
    )
    with pytest.raises(TransactionRefused) as caught:
        node.peer.submit(forged)
    assert caught.value.code is ValidationCode.ENDORSEMENT_POLICY_FAILURE
    assert _case(node, case_id)["status"] == "reported"
