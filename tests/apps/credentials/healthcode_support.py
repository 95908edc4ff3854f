"""A module's node for the health-code tests: epidemic configured with the tests'
regions, the health-code contract deployed, rules v1 approved; and people's facts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthledger.apps.credentials.healthcode_contract import HealthCode
from healthledger.apps.credentials.healthcode_rules import RULES_V1, digest
from healthledger.apps.epidemic.contract import Epidemic
from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.regions import RegionTable
from healthledger.contracts.contract import Contract
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.seam import AppNode, attach
from tests.apps.epidemic.conftest import TEST_REGIONS
from tests.apps.epidemic.support import person, today
from tests.support.founding import found
from tests.support.seam import epidemic_seam

CONTRACTS = (*SYSTEM_CONTRACTS, Epidemic, HealthCode)
OFFICER = "gd-commission/officer-chen"
EPI = "gd-cdc/epi-wang"
DOCTOR = "gz-first-hospital/dr-li"
LAB = "gz-first-hospital/lab-huang"
NURSE = "gz-first-hospital/nurse-lin"
ADMINS = [f"{plan.id}/admin" for plan in DEMO_ORGS]


@dataclass(frozen=True)
class HealthCodeApp:
    """The seam's view for the health code (the credentials application's namespace)."""

    name: str = "credentials"
    namespaces: tuple[str, ...] = ("healthcode",)


def start(
    folder: Path, *, rules: bool = True, contracts: Sequence[type[Contract]] = CONTRACTS
) -> Iterator[EmbeddedNode]:
    """A started node (with rules v1 in force if ``rules``), stopped after the module."""
    node = found(folder, contracts=contracts, batch_timeout_s=0.005).start()
    configure(epidemic_seam(node), RegionTable.from_source(TEST_REGIONS))
    if rules:
        propose_and_approve(node, "2026.1", RULES_V1)
    yield node
    node.stop()


def seam(node: EmbeddedNode) -> AppNode:
    """``node`` as the health code's application sees it."""
    return attach(node, HealthCodeApp())


def propose_and_approve(node: EmbeddedNode, version: str, rules: dict[str, Any]) -> None:
    """Rules ``version`` proposed by the commission and approved by a majority."""
    node.invoke(
        OFFICER, "healthcode", "propose_rules",
        {"version": version, "rules": rules, "summary": f"Rules {version} for the tests"},
    )  # fmt: skip
    for admin in ADMINS[: len(ADMINS) // 2 + 1]:
        node.invoke(
            admin, "healthcode", "approve_rules", {"version": version, "digest": digest(rules)}
        )


def pid_of(node: EmbeddedNode, serial: int) -> str:
    """The pseudonymous id of test person ``serial`` (a dose recorded for them)."""
    _, found = node.invoke(
        NURSE, "epidemic", "record_vaccination",
        {"vaccine": "208", "dose_number": 1, "administered_date": today(node) - 200,
         "region": "440106"},
        transient={"patient": person(serial)},
    )  # fmt: skip
    args = {"kind": "vaccination", "ids": [found["vaccination_id"]]}
    return str(node.query(EPI, "epidemic", "get_observations", args)[0]["pid"])


def lab(node: EmbeddedNode, serial: int, result: str, days_ago: int) -> None:
    """A SARS-CoV-2 PCR result for test person ``serial``, ``days_ago`` days ago."""
    node.invoke(
        LAB, "epidemic", "report_lab_result",
        {"test": "94500-6", "result": result, "specimen_date": today(node) - days_ago - 1,
         "result_date": today(node) - days_ago, "region": "440104"},
        transient={"patient": person(serial)},
    )  # fmt: skip


def confirmed_case(node: EmbeddedNode, serial: int, days_ago: int) -> str:
    """A COVID-19 case of test person ``serial`` diagnosed ``days_ago`` days ago,
    confirmed by the CDC; its id."""
    _, reported = node.invoke(
        DOCTOR, "epidemic", "report_case",
        {"disease": "U07.1", "classification": "confirmed",
         "onset_date": today(node) - days_ago - 2, "diagnosis_date": today(node) - days_ago,
         "region": "440104"},
        transient={"patient": person(serial)},
    )  # fmt: skip
    node.invoke(EPI, "epidemic", "confirm", {"case_id": reported["case_id"]})
    return str(reported["case_id"])


def evaluate(node: EmbeddedNode, pid: str, **extra: Any) -> dict[str, Any]:
    """Record ``pid``'s colour (the CDC); the code recorded."""
    _, code = node.invoke(EPI, "healthcode", "evaluate", {"pid": pid, **extra})
    assert isinstance(code, dict)
    return code
