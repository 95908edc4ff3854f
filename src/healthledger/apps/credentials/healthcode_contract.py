"""The ``healthcode`` contract: green, yellow or red from a person's recorded facts under
published, versioned rules approved by a majority of the consortium's members.

No colour is ever written by hand. ``evaluate`` reads the person's facts itself (the
epidemic application's case reports, test results and doses through its declared query
``subject_facts``, and the close-contact notices recorded here), applies the rules in
force and records the colour with the rule version, the clause that fired and the
commitments of the facts it rests on; a caller who expects another colour is refused.
The only other way a colour changes is a CDC's decision to overturn it on appeal, which
sets the contested facts aside and applies the same rules again, citing the appeal.

People are known by their pseudonymous id (``pid``, the epidemic application's): no
name and no free text reach the chain (appeal grounds and decisions are coded).

State keys::

    rules/<version>                     a rule set: proposed, then approved (immutable)
    rules-approval/<version>/<org>      one organisation's approval of its digest
    current                             {version, digest, since}: the rules in force
    code-key/<kid>                      a public key the codes' QR signatures verify with
    contact/<pid>/<notice_id>           a close-contact notice (a CDC)
    code/<pid>                          the person's colour, why, and its inputs
    aside/<pid>/<fact_id>               a fact set aside by an overturned appeal
    appeal/<appeal_id>                  an appeal and its decision
    open-appeal/<pid>                   the person's appeal awaiting decision
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Literal

from healthledger.apps.credentials.healthcode_rules import (
    Decision,
    Fact,
    check_rules,
    decide,
    digest,
    fact,
)
from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, query, transaction
from healthledger.contracts.errors import InvalidArguments, Rejected
from healthledger.contracts.system.approval import (
    agreeing_orgs,
    approved,
    majority_policy,
    record_approval,
    recorded_approvals,
)

DAY_MS = 86_400_000
CDC_KINDS = ("cdc",)
CDC_ROLES = ("epidemiologist",)
GOVERNING_ROLES = ("admin", "officer")
APPEAL_ROLES = ("doctor", "nurse")
Grounds = Literal["no-exposure", "negative-test", "wrong-person", "recovered", "no-health-reason"]
Reason = Literal[
    "rules-applied-correctly", "fact-wrong-person", "fact-in-error", "no-health-reason"
]
Ruling = Literal["upheld", "overturned"]
_VERSION = re.compile(r"^[0-9]{4}\.[0-9]{1,3}$")
_PID = re.compile(r"^p[0-9]+-[0-9a-f]{16,64}$")
_REGION = re.compile(r"^[0-9]{6}$")


def _field(name: str, message: str) -> InvalidArguments:
    return InvalidArguments(f"{name}: {message}", [{"field": name, "message": message}])


def _pid(pid: str) -> str:
    if not _PID.match(pid):
        raise _field("pid", "a pseudonymous person id (p1-...)")
    return pid


def _end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def rules_in_force(ctx: Context) -> dict[str, Any]:
    """The approved rule set in force, with its version; Rejected if none is."""
    current = ctx.get("current")
    if not isinstance(current, dict):
        raise Rejected("no health-code rules are approved yet")
    record = ctx.get(f"rules/{current['version']}")
    assert isinstance(record, dict)
    return record


def facts_of(ctx: Context, pid: str, diseases: list[str]) -> list[Fact]:
    """The person's facts about ``diseases``: the epidemic application's (through its
    declared query) and the close-contact notices, less those set aside on appeal; each
    fact's region named (``region_name``) where the epidemic application names it."""
    recorded = ctx.ask("epidemic", "subject_facts", {"pid": pid})
    names = recorded.get("region_names", {})
    aside = {k.rsplit("/", 1)[1] for k, _ in ctx.range(f"aside/{pid}/", _end(f"aside/{pid}/"))}
    found = [
        *(fact("case", c, id_field="case_id", day_field="diagnosis") for c in recorded["cases"]),
        *(fact("lab", x, id_field="lab_id", day_field="result_day") for x in recorded["labs"]),
        *(fact("dose", d, id_field="vaccination_id", day_field="day") for d in recorded["doses"]),
        *(
            fact("contact", n, id_field="notice_id", day_field="day")
            for _, n in ctx.range(f"contact/{pid}/", _end(f"contact/{pid}/"))
        ),
    ]
    return [
        replace(f, region_name=str(names.get(f.fields.get("region"), "")))
        for f in found
        if f.fields.get("disease") in diseases and f.id not in aside
    ]


def _region(
    decision: Decision, facts: list[Fact], previous: dict[str, Any] | None
) -> tuple[str, str]:
    """The person's district (code and name): the fact that fired's, else the newest."""
    cited = {i["id"] for i in decision.inputs if i["part"] == "trigger"}
    for item in sorted(facts, key=lambda f: (f.id not in cited, -f.day)):
        region = item.fields.get("region")
        if isinstance(region, str) and _REGION.match(region):
            return region, item.region_name
    if previous:
        return str(previous["region"]), str(previous.get("region_name", ""))
    return "unknown", ""


def record_colour(ctx: Context, pid: str, *, expect: str = "", appeal: str = "") -> dict[str, Any]:
    """Apply the rules in force to the person's facts and record the colour if it changed
    (Rejected if it did not, or if it is not ``expect``)."""
    rules = rules_in_force(ctx)
    facts = facts_of(ctx, pid, rules["rules"]["diseases"])
    today = ctx.timestamp // DAY_MS
    decision = decide(rules["rules"], facts, today)
    previous = ctx.get(f"code/{pid}")
    if expect and expect != decision.colour:
        raise Rejected(
            f"no clause of rules {rules['version']} makes this person {expect}: they give "
            f"{decision.colour} ({decision.clause}); a colour is recorded only as the rules give it"
        )
    same = isinstance(previous, dict) and (
        previous["colour"],
        previous["version"],
        previous["clause"],
        previous["inputs"],
    ) == (decision.colour, rules["version"], decision.clause, list(decision.inputs))
    if same:
        raise Rejected(f"the code is already {decision.colour} under rules {rules['version']}")
    region, region_name = _region(decision, facts, previous if isinstance(previous, dict) else None)
    code = {
        "pid": pid,
        "colour": decision.colour,
        "previous": previous["colour"] if isinstance(previous, dict) else "",
        "version": rules["version"],
        "clause": decision.clause,
        "title": decision.title,
        "inputs": list(decision.inputs),
        "region": region,
        "region_name": region_name,
        "day": today,
        "at": ctx.timestamp,
        "by": ctx.caller.id,
        "appeal": appeal,
        "change": ctx.tx_id,
    }
    ctx.put(f"code/{pid}", code)
    shown = ("colour", "previous", "version", "clause", "region", "region_name", "day", "appeal")
    ctx.emit("colour_changed", {k: code[k] for k in shown})
    return code


class HealthCode(Contract):
    """Health-code rules, colours and appeals."""

    name = "healthcode"
    code_modules = (
        "healthledger.apps.credentials.healthcode_rules",
        "healthledger.contracts.system.approval",
    )
    policy = "OR('*.peer')"

    # --- rules, through governance ---------------------------------------------------

    @transaction(roles=GOVERNING_ROLES, kinds=("commission",))
    def propose_rules(
        self, ctx: Context, *, version: str, rules: dict[str, Any], summary: str
    ) -> dict[str, Any]:
        """Propose rule set ``version`` (``YYYY.N``); it is in force once a majority of
        the members' admins approve its digest, and never changes after."""
        if not _VERSION.match(version):
            raise _field("version", "YYYY.N, e.g. 2026.1")
        if not 10 <= len(summary.strip()) <= 300:
            raise _field("summary", "say what changes in 10 to 300 characters")
        if ctx.get(f"rules/{version}") is not None:
            raise Rejected(f"rules {version} exist already: a version never changes")
        record = {
            "version": version,
            "rules": check_rules(rules),
            "digest": digest(rules),
            "summary": summary.strip(),
            "status": "proposed",
            "proposed_by": ctx.caller.id,
            "proposed_at": ctx.timestamp,
            "approved_by": [],
        }
        ctx.put(f"rules/{version}", record)
        ctx.emit("rules_proposed", {"version": version, "digest": record["digest"]})
        return record

    @transaction(roles=("admin",), relation="one approval per organisation, of the digest")
    def approve_rules(self, ctx: Context, *, version: str, digest: str) -> dict[str, Any]:
        """Approve rules ``version`` of ``digest`` for the caller's organisation; the
        approval that makes a majority of the members puts them in force."""
        record = ctx.get(f"rules/{version}")
        if not isinstance(record, dict):
            raise Rejected(f"no rules {version} are proposed")
        if record["status"] != "proposed":
            raise Rejected(f"rules {version} are {record['status']} already")
        if digest != record["digest"]:
            raise Rejected(f"rules {version} have digest {record['digest']}, not {digest}")
        prefix = f"rules-approval/{version}/"
        body = {"version": version, "digest": digest}
        record_approval(ctx, prefix, body)
        orgs = agreeing_orgs(recorded_approvals(ctx, prefix), body)
        record = {**record, "approved_by": orgs}
        if approved(majority_policy(ctx.members()), orgs):
            record = {**record, "status": "approved", "approved_at": ctx.timestamp}
            ctx.put("current", {"version": version, "digest": digest, "since": ctx.timestamp})
            ctx.emit("rules_approved", {"version": version, "approved_by": orgs})
        ctx.put(f"rules/{version}", record)
        return record

    @transaction(roles=("admin",), kinds=CDC_KINDS)
    def publish_code_key(self, ctx: Context, *, jwk: dict[str, str]) -> dict[str, Any]:
        """Publish the public key (a P-256 JWK with its ``kid``) that the CDC signs
        health-code QR codes with; verifiers take it from here."""
        if set(jwk) != {"kty", "crv", "x", "y", "kid"} or jwk.get("crv") != "P-256":
            raise _field("jwk", "a P-256 public JWK: kty, crv, x, y and kid")
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", jwk["kid"]):
            raise _field("jwk.kid", "16 to 64 base64url characters")
        key = {**jwk, "org": ctx.caller.org, "published_at": ctx.timestamp}
        ctx.put(f"code-key/{jwk['kid']}", key)
        return key

    # --- facts the health code itself holds, and colours -----------------------------

    @transaction(roles=CDC_ROLES, kinds=CDC_KINDS)
    def notify_contact(
        self, ctx: Context, *, pid: str, day: int, region: str, disease: str = "covid-19"
    ) -> dict[str, Any]:
        """Record a close-contact notice for person ``pid`` (exposure ``day``, their
        district ``region``), from the CDC's investigation."""
        today = ctx.timestamp // DAY_MS
        if not today - 30 <= day <= today:
            raise _field("day", "an exposure day in the last 30 days")
        if not _REGION.match(region):
            raise _field("region", "a six-digit district code")
        if disease not in rules_in_force(ctx)["rules"]["diseases"]:
            raise _field("disease", "a disease the health-code rules in force name")
        notice_id = f"n-{ctx.tx_id[:24]}"
        notice = {"notice_id": notice_id, "disease": disease, "day": day, "region": region,
                  "by": ctx.caller.org}  # fmt: skip
        ctx.put(f"contact/{_pid(pid)}/{notice_id}", notice)
        ctx.emit("contact_notified", {"disease": disease, "day": day, "region": region})
        return notice

    @transaction(roles=CDC_ROLES, kinds=CDC_KINDS)
    def evaluate(self, ctx: Context, *, pid: str, expect: str = "") -> dict[str, Any]:
        """Apply the rules in force to person ``pid``'s recorded facts and record their
        colour if it changed, citing the rule version, clause and facts; refused if the
        rules give another colour than ``expect`` (when given) or the same as now."""
        return record_colour(ctx, _pid(pid), expect=expect)

    # --- appeals ---------------------------------------------------------------------

    @transaction(roles=APPEAL_ROLES, kinds=("hospital",))
    def file_appeal(self, ctx: Context, *, pid: str, grounds: Grounds) -> dict[str, Any]:
        """File an appeal against person ``pid``'s current colour, for them (coded
        ``grounds``); the CDC decides it. The appeal records the filing organisation
        (``filed_by``) and who filed it (``filer``, the caller's identity)."""
        code = ctx.get(f"code/{_pid(pid)}")
        if not isinstance(code, dict) or code["colour"] == "green":
            raise Rejected("only a yellow or red code can be appealed")
        if ctx.get(f"open-appeal/{pid}") is not None:
            raise Rejected("an appeal of this code awaits its decision already")
        appeal_id = f"a-{ctx.tx_id[:24]}"
        appeal = {"appeal_id": appeal_id, "pid": pid, "change": code["change"],
                  "colour": code["colour"], "clause": code["clause"], "region": code["region"],
                  "grounds": grounds, "filed_by": ctx.caller.org, "filer": ctx.caller.id,
                  "filed_at": ctx.timestamp, "status": "filed"}  # fmt: skip
        ctx.put(f"appeal/{appeal_id}", appeal)
        ctx.put(f"open-appeal/{pid}", {"appeal_id": appeal_id})
        shown = ("appeal_id", "colour", "clause", "region", "grounds")
        ctx.emit("appeal_filed", {**{k: appeal[k] for k in shown}, "day": ctx.timestamp // DAY_MS})
        return appeal

    @transaction(roles=CDC_ROLES, kinds=CDC_KINDS)
    def decide_appeal(
        self, ctx: Context, *, appeal_id: str, ruling: Ruling, reason: Reason
    ) -> dict[str, Any]:
        """Decide an appeal: ``upheld`` keeps the colour; ``overturned`` sets the facts it
        rested on aside and applies the rules again, the change citing the appeal."""
        appeal = ctx.get(f"appeal/{appeal_id}")
        if not isinstance(appeal, dict):
            raise Rejected(f"no appeal {appeal_id}")
        if appeal["status"] != "filed":
            raise Rejected(f"appeal {appeal_id} is decided already ({appeal['status']})")
        if (ruling == "upheld") != (reason == "rules-applied-correctly"):
            raise _field("reason", "an upheld code was given correctly; an overturned one not")
        pid = appeal["pid"]
        decided = {**appeal, "status": ruling, "reason": reason, "decided_by": ctx.caller.id,
                   "decided_at": ctx.timestamp}  # fmt: skip
        ctx.delete(f"open-appeal/{pid}")
        if ruling == "overturned":
            code = ctx.get(f"code/{pid}")
            assert isinstance(code, dict)
            for cited in code["inputs"]:
                if cited["part"] == "trigger":
                    ctx.put(f"aside/{pid}/{cited['id']}", {"appeal_id": appeal_id})
            decided["colour_after"] = record_colour(ctx, pid, appeal=appeal_id)["colour"]
        ctx.put(f"appeal/{appeal_id}", decided)
        shown = ("appeal_id", "status", "reason", "region", "colour", "clause", "grounds")
        day = ctx.timestamp // DAY_MS
        ctx.emit("appeal_decided", {**{k: decided[k] for k in shown}, "day": day})
        return decided

    # --- queries ---------------------------------------------------------------------

    @query()
    def rule_versions(self, ctx: Context) -> dict[str, Any]:
        """Every rule set (proposed or approved) and the version in force."""
        versions = [v for _, v in ctx.range("rules/", "rules0")]
        return {"current": ctx.get("current"), "versions": versions}

    @query()
    def code(self, ctx: Context, *, pid: str) -> dict[str, Any] | None:
        """Person ``pid``'s current colour and why, or None if never evaluated."""
        found = ctx.get(f"code/{_pid(pid)}")
        return found if isinstance(found, dict) else None

    @query(roles=CDC_ROLES, kinds=CDC_KINDS)
    def preview(self, ctx: Context, *, pid: str) -> dict[str, Any]:
        """The colour the rules in force give person ``pid`` now (nothing recorded)."""
        rules = rules_in_force(ctx)
        found = facts_of(ctx, _pid(pid), rules["rules"]["diseases"])
        decision = decide(rules["rules"], found, ctx.timestamp // DAY_MS)
        return {"colour": decision.colour, "clause": decision.clause,
                "version": rules["version"], "inputs": list(decision.inputs)}  # fmt: skip

    @query()
    def appeals(self, ctx: Context, *, status: str = "") -> list[dict[str, Any]]:
        """Appeals (``status``: filed, upheld or overturned; "" for all)."""
        found = [a for _, a in ctx.range("appeal/", "appeal0", limit=10_000)]
        return [a for a in found if not status or a["status"] == status]

    @query()
    def code_keys(self, ctx: Context) -> list[dict[str, Any]]:
        """The published keys health-code QR codes are signed with."""
        return [k for _, k in ctx.range("code-key/", "code-key0")]
