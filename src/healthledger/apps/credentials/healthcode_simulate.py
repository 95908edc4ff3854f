"""Demo traffic of the health code: the commission's first rules approved by a majority,
the CDC's signing key published, colours following the epidemic simulator's confirmed
cases and positive tests (read through the epidemic application's declared queries),
close-contact notices, a rules change approved and applied, and two appeals (one
overturned, one upheld). ``live_step`` follows newly confirmed cases as the demo runs."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from healthledger.apps import Simulate
from healthledger.apps.credentials import healthcode_service as service
from healthledger.apps.credentials.healthcode_rules import RULES_V1, RULES_V2, digest
from healthledger.node.seam import AppNode, Call

NS = service.NAMESPACE
DAY_MS = 86_400_000
FIRST, CHANGE = "2026.1", "2026.2"
SUMMARIES = {
    FIRST: "First rules: red for a confirmed case within 14 days; yellow for a positive "
    "test awaiting confirmation or a close-contact notice within 7 days, unless tested "
    "negative since.",
    CHANGE: "Close contacts stay yellow for 10 days instead of 7, unless tested negative "
    "since or boosted (a third dose) in the last 180 days.",
}
RULES = {FIRST: RULES_V1, CHANGE: RULES_V2}
MAX_PEOPLE = 120
"""People evaluated by the simulator (enough for the pages; quick to commit)."""
CURSOR = "healthcode-live-cursor"


def _one(node: AppNode, *, role: str, kind: str) -> str | None:
    kinds = {o["id"]: o.get("kind") for o in node.organisations()}
    return next((i for i in node.identities(role=role) if kinds.get(i.split("/")[0]) == kind), None)


def _order(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def approve(node: AppNode, version: str) -> bool:
    """Propose rules ``version`` (the commission) and approve them by a majority of the
    members' admins held on this node; True if they are in force."""
    current = node.get("current", ns=NS)
    if isinstance(current, dict) and _order(current["version"]) >= _order(version):
        return True
    officer = _one(node, role="officer", kind="commission")
    if officer is None:
        return False
    if node.get(f"rules/{version}", ns=NS) is None:
        node.invoke(officer, NS, "propose_rules", {"version": version, "rules": RULES[version],
                                                  "summary": SUMMARIES[version]})  # fmt: skip
    members = [o["id"] for o in node.organisations()]
    for org in members:
        record = node.get(f"rules/{version}", ns=NS)
        if not isinstance(record, dict) or record["status"] == "approved":
            break
        if org not in record["approved_by"] and node.holds(f"{org}/admin"):
            args = {"version": version, "digest": digest(RULES[version])}
            node.invoke(f"{org}/admin", NS, "approve_rules", args)
    final = node.get(f"rules/{version}", ns=NS)
    return isinstance(final, dict) and final["status"] == "approved"


def publish_key(node: AppNode) -> None:
    """Publish the CDC's health-code signing key if it is not on chain yet."""
    org = service.issuer_org(node)
    if org is None or not node.holds(f"{org}/admin"):
        return
    jwk = service.code_key(node)
    if node.get(f"code-key/{jwk['kid']}", ns=NS) is None:
        node.invoke(f"{org}/admin", NS, "publish_code_key", {"jwk": jwk})


def evaluate_all(node: AppNode, epi: str, pids: Sequence[str]) -> int:
    """Evaluate each person; the number whose colour changed (an unchanged code is
    refused by the contract and counted out)."""
    calls = [Call(epi, NS, "evaluate", {"pid": pid}) for pid in dict.fromkeys(pids)]
    return sum(outcome.valid for outcome in node.invoke_many(calls)) if calls else 0


def _recent_pids(
    node: AppNode, epi: str, today: int
) -> tuple[list[str], list[dict[str, Any]], str]:
    """People with a recent confirmed case or positive test, doses, the main disease."""
    cases = node.query(epi, "epidemic", "list_cases", {"status": "confirmed", "limit": 5000})
    cases = [c for c in cases if c["diagnosis"] > today - 14]
    recent = [c["pid"] for c in cases]
    main = Counter(c["disease"] for c in cases).most_common(1)
    newest = {"kind": "lab", "limit": 5000, "count": False}
    labs = node.query(epi, "epidemic", "list_observations", newest)
    positive = [
        x["pid"]
        for x in labs["observations"]
        if x["result"] == "positive" and x["result_day"] > today - 7
    ]
    args = {"kind": "vaccination", "limit": 400, "count": False}
    doses = node.query(epi, "epidemic", "list_observations", args)["observations"]
    return [*recent, *positive][:MAX_PEOPLE], doses, main[0][0] if main else "covid-19"


def simulate(node: AppNode, rng: random.Random) -> Mapping[str, int]:
    """The health code's demo history (see the module docstring)."""
    epi = _one(node, role="epidemiologist", kind="cdc")
    doctor = _one(node, role="doctor", kind="hospital")
    if epi is None or doctor is None or not approve(node, FIRST):
        return {}
    publish_key(node)
    today = node.clock() // DAY_MS
    people, doses, disease = _recent_pids(node, epi, today)
    contacts = [d for d in rng.sample(doses, min(len(doses), 24)) if d["pid"] not in people]
    notices = [
        Call(
            epi,
            NS,
            "notify_contact",
            {
                "pid": d["pid"],
                "day": today - rng.randint(0, 9),
                "region": d["region"],
                "disease": disease,
            },
        )
        for d in contacts
    ]
    node.invoke_many(notices)
    changed = evaluate_all(node, epi, [*people, *(d["pid"] for d in contacts)])
    approve(node, CHANGE)
    changed += evaluate_all(node, epi, [*people, *(d["pid"] for d in contacts)])
    return {"colour changes": changed, "contact notices": len(notices),
            "appeals": appeal(node, epi, doctor, rng)}  # fmt: skip


def appeal(node: AppNode, epi: str, doctor: str, rng: random.Random) -> int:
    """Two appeals filed by a hospital: a contact's (overturned: the notice was in error)
    and a case's (upheld)."""
    codes = service.holders(node, limit=10_000)
    filed = 0
    for clause, ruling, grounds, reason in (
        ("close-contact", "overturned", "no-exposure", "fact-in-error"),
        ("confirmed-case", "upheld", "recovered", "rules-applied-correctly"),
    ):
        chosen = [c for c in codes if c["clause"] == clause]
        if not chosen:
            continue
        pid = rng.choice(chosen)["pid"]
        if node.get(f"open-appeal/{pid}", ns=NS) is not None:
            continue
        _, filed_appeal = node.invoke(doctor, NS, "file_appeal", {"pid": pid, "grounds": grounds})
        args = {"appeal_id": filed_appeal["appeal_id"], "ruling": ruling, "reason": reason}
        node.invoke(epi, NS, "decide_appeal", args)
        filed += 1
    return filed


def live_step(node: AppNode, rng: random.Random) -> Mapping[str, int]:
    """Colours of the people whose cases the CDC confirmed since the last round."""
    epi = _one(node, role="epidemiologist", kind="cdc")
    current = node.get("current", ns=NS)
    if epi is None or not isinstance(current, dict):
        return {}
    # Past confirmations were coloured by ``simulate``: follow from the newest block on.
    start = str(max(node.height() - 1, 0))
    cursor: dict[str, str | None] = node.shared(CURSOR, lambda: {"after": start})
    confirmed = []
    while batch := node.events(cursor["after"], limit=500):
        cursor["after"] = batch[-1].id
        confirmed += [
            e.data["payload"]["case_id"]
            for e in batch
            if e.kind == "contract"
            and e.data.get("contract") == "epidemic"
            and e.data["name"] == "case_reviewed"
            and e.data["payload"].get("status") == "confirmed"
        ]
    pids = [node.query(epi, "epidemic", "get_case", {"case_id": c})["pid"] for c in confirmed[-20:]]
    # Yellow and red codes lapse as their facts age out of the rules' windows.
    lapsing = sorted(
        (code for _, code in node.range("code/", ns=NS) if code["colour"] != "green"),
        key=lambda code: int(code["day"]),
    )
    pids += [code["pid"] for code in lapsing[:10]]
    return {"colour changes": evaluate_all(node, epi, pids)}


def joined(*steps: Simulate | None) -> Simulate:
    """One simulator (or live step) running ``steps`` in order, their counts together:
    the credentials application's certificates, then its health code."""

    def run(node: AppNode, rng: random.Random) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        for step in steps:
            if step is not None:
                counts.update(step(node, rng))
        return counts

    return run
