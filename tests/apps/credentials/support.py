"""Test data: a recorded vaccination, lab result and holder."""

from __future__ import annotations

from typing import Any

from healthledger.apps.credentials.facts import HolderName
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.support import person, today

NURSE = "gz-first-hospital/nurse-lin"
LAB = "gz-first-hospital/lab-huang"
HOLDER = HolderName(family_name="Zhongshanlu", given_name="Xiaoming", birth_date="1985-03-12")


def vaccinate(node: EmbeddedNode, serial: int, *, vaccine: str = "510", dose: int = 1) -> str:
    """Record a dose for made-up person ``serial``; its vaccination id."""
    args: dict[str, Any] = {"vaccine": vaccine, "dose_number": dose,
                            "administered_date": today(node) - 20, "region": "440104"}  # fmt: skip
    _, result = node.invoke(NURSE, "epidemic", "record_vaccination", args,
                            transient={"patient": person(serial)})  # fmt: skip
    return str(result["vaccination_id"])


def lab_result(node: EmbeddedNode, serial: int, *, result: str = "negative") -> str:
    """Record a SARS-CoV-2 PCR result; its lab id."""
    args = {"test": "94500-6", "result": result, "specimen_date": today(node) - 2,
            "result_date": today(node) - 1, "region": "440104"}  # fmt: skip
    _, found = node.invoke(LAB, "epidemic", "report_lab_result", args,
                           transient={"patient": person(serial)})  # fmt: skip
    return str(found["lab_id"])
