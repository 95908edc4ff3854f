"""A CDC acknowledges an early-warning alert with the action it takes, once."""

from __future__ import annotations

import pytest

from healthledger.contracts.errors import CallerNotAdmitted, InvalidArguments, Rejected
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.support import today

EPI = "gd-cdc/epi-wang"


def test_an_alert_is_acknowledged_once_by_its_cdc(node: EmbeddedNode) -> None:
    day = today(node) - 1
    alert = {"disease": "influenza", "region": "440104", "day": day}
    node.invoke(
        EPI,
        "epidemic",
        "raise_alert",
        {**alert, "methods": ["C2"], "count": 9, "baseline_milli": 2500},
    )
    receipt, result = node.invoke(
        "gd-cdc/epi-zhao", "epidemic", "acknowledge_alert", {**alert, "action": "investigating"}
    )
    assert receipt.code is ValidationCode.VALID
    assert result["acknowledged"]["by"] == "gd-cdc/epi-zhao"
    assert result["acknowledged"]["action"] == "investigating"
    assert result["count"] == 9 and result["methods"] == ["C2"]
    assert node.peer.store.get_state("epidemic", f"alert/influenza/440104/{day}").value == result
    with pytest.raises(Rejected, match="already acknowledged by gd-cdc/epi-zhao"):
        node.invoke(EPI, "epidemic", "acknowledge_alert", {**alert, "action": "monitoring"})
    with pytest.raises(Rejected, match="no alert"):
        node.invoke(
            EPI, "epidemic", "acknowledge_alert", {**alert, "day": day - 1, "action": "monitoring"}
        )
    with pytest.raises(InvalidArguments):
        node.invoke(EPI, "epidemic", "acknowledge_alert", {**alert, "action": "shrug"})
    with pytest.raises(CallerNotAdmitted):
        node.invoke(
            "gz-first-hospital/dr-li",
            "epidemic",
            "acknowledge_alert",
            {**alert, "action": "monitoring"},
        )
