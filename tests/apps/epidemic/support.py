"""Test data: people with valid resident-id numbers, case arguments."""

from __future__ import annotations

import datetime
from typing import Any

from healthledger.apps.epidemic.dates import day_of_ms, iso
from healthledger.apps.epidemic.pseudonym import resident_id_check
from healthledger.node.embedded import EmbeddedNode


def resident_id(serial: int, *, birth: str = "19850312", area: str = "440104") -> str:
    """A resident-id number with a correct check character."""
    first17 = f"{area}{birth}{serial % 1000:03d}"
    return first17 + resident_id_check(first17)


def person(serial: int) -> dict[str, str]:
    """A made-up person whose every field is easy to search for."""
    return {
        "name": f"Testname{serial:04d} 陈小明",
        "id_type": "NI",
        "id_number": resident_id(serial),
        "phone": f"+86 138 0013 {serial:04d}",
        "address": f"{serial} Zhongshan Road Unit-{serial:04d}X, Yuexiu",
    }


def today(node: EmbeddedNode) -> int:
    """The node clock's day number."""
    return day_of_ms(node.clock())


def case_args(node: EmbeddedNode, **overrides: Any) -> dict[str, Any]:
    """Valid report_case arguments: influenza in Yuexiu, onset 3 days ago."""
    now = today(node)
    args: dict[str, Any] = {
        "disease": "J10.1",
        "classification": "suspected",
        "onset_date": iso(now - 3),
        "diagnosis_date": now - 1,
        "region": "440104",
    }
    args.update(overrides)
    return args


def report(
    node: EmbeddedNode,
    identity: str = "gz-first-hospital/dr-li",
    patient: dict[str, str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Report a case and return the contract's result."""
    _, result = node.invoke(
        identity,
        "epidemic",
        "report_case",
        case_args(node, **overrides),
        transient={"patient": patient or person(1)},
    )
    assert isinstance(result, dict)
    return result


def report_many(
    node: EmbeddedNode,
    count: int,
    *,
    first: int = 0,
    identity: str = "gz-first-hospital/dr-li",
    **overrides: Any,
) -> list[str]:
    """``count`` reports (``case_args`` with ``overrides``) of distinct people, in
    batches of 500 (``report_cases``); their case ids."""
    ids: list[str] = []
    for start in range(first, first + count, 500):
        serials = range(start, min(start + 500, first + count))
        patients = [
            {**person(i), "id_number": resident_id(i % 1000, birth=f"19{50 + i // 1000}0312")}
            for i in serials
        ]
        _, results = node.invoke(
            identity,
            "epidemic",
            "report_cases",
            {"reports": [case_args(node, **overrides) for _ in serials]},
            transient={"patients": patients},
        )
        ids += [r["case_id"] for r in results]
    return ids


def state_records(node: EmbeddedNode, prefix: str) -> list[dict[str, Any]]:
    """Every record under ``prefix`` (``case/``, ``lab/``) in the peer's state, read past
    the contract (in pages)."""
    found: list[dict[str, Any]] = []
    start, end = prefix, prefix[:-1] + "0"
    while True:
        chunk = list(node.peer.store.range_state("epidemic", start, end, 5000))
        found += [item.value for key, item in chunk if key != start]
        if len(chunk) < 5000:
            return found
        start = chunk[-1][0]


def iso_today(node: EmbeddedNode) -> str:
    """Today's ISO date on the node clock."""
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=today(node))).isoformat()
