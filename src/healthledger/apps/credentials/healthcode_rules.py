"""The health code's rules: published, versioned data, and the one function that turns a
person's recorded facts into a colour under them.

A rule set is JSON::

    {"diseases": ["covid-19", "influenza"],
     "clauses": [
       {"id": "confirmed-case", "colour": "red", "title": "...",
        "fact": "case", "match": {"status": ["confirmed"]}, "within_days": 14},
       {"id": "close-contact", "colour": "yellow", "title": "...",
        "fact": "contact", "within_days": 7,
        "unless": [{"fact": "lab", "match": {"result": ["negative"]}, "after_trigger": true,
                    "title": "a negative test since the notice"}]},
       {"id": "no-finding", "colour": "green", "title": "...", "fact": "none"}]}

The rules read a person's facts about the ``diseases`` named. Clauses are tried in
order. A clause fires on the newest fact of its kind (``case``: a
case report, dated by diagnosis; ``lab``: a test result, by its result day; ``dose``: a
vaccination; ``contact``: a close-contact notice) that matches every ``match`` field
(one of the listed values), reaches every ``min`` field and is dated within the last
``within_days`` days, unless an exemption of ``unless`` holds (a fact of its kind that
matches, within its own ``within_days`` if given, and, with ``after_trigger``, dated on
or after the fact that fired). The last clause has ``"fact": "none"``: what holds when no
other clause does. Pure functions: the contract and the pages run the same code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from healthledger.contracts.errors import InvalidArguments
from healthledger.crypto.hashing import hash_canonical

COLOURS = ("green", "yellow", "red")
FACT_KINDS = ("case", "lab", "dose", "contact")
MAX_CLAUSES = 20
MAX_DAYS = 366
_ID = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
_CLAUSE_KEYS = {"id", "colour", "title", "fact", "match", "min", "within_days", "unless"}
_EXEMPTION_KEYS = {"fact", "match", "min", "within_days", "after_trigger", "title"}


@dataclass(frozen=True)
class Fact:
    """One recorded fact about a person, as a rule reads it."""

    kind: str
    id: str
    day: int
    """Day number (days since 1970-01-01) the rule dates the fact by."""
    fields: Mapping[str, Any]
    commitment: str
    """SHA-256 of the fact's canonical JSON as recorded: what a colour change cites."""
    region_name: str = ""
    """The name of the fact's region, where known (not part of the commitment)."""


@dataclass(frozen=True)
class Decision:
    """What the rules give: a colour, the clause that gave it and the facts it rests on."""

    colour: str
    clause: str
    title: str
    inputs: tuple[dict[str, Any], ...]
    """Each fact cited: kind, id, day, commitment, and its part (trigger or exemption)."""


def _problem(field: str, message: str) -> InvalidArguments:
    return InvalidArguments(f"rules: {field}: {message}", [{"field": field, "message": message}])


def _check_conditions(item: Mapping[str, Any], at: str) -> None:
    match = item.get("match", {})
    if not isinstance(match, dict) or not all(
        isinstance(v, list) and v and all(isinstance(x, str | int) for x in v)
        for v in match.values()
    ):
        raise _problem(f"{at}.match", "field names each with a list of accepted values")
    least = item.get("min", {})
    if not isinstance(least, dict) or not all(isinstance(v, int) for v in least.values()):
        raise _problem(f"{at}.min", "field names each with a whole-number minimum")
    within = item.get("within_days")
    if within is not None and (not isinstance(within, int) or not 1 <= within <= MAX_DAYS):
        raise _problem(f"{at}.within_days", f"a number of days from 1 to {MAX_DAYS}")


def check_rules(rules: object) -> dict[str, Any]:
    """``rules`` if it is a well-formed rule set; InvalidArguments naming what is not."""
    if not isinstance(rules, dict) or set(rules) - {"diseases", "clauses"}:
        raise _problem("rules", "an object of diseases and clauses")
    diseases = rules.get("diseases")
    if (
        not isinstance(diseases, list)
        or not 1 <= len(diseases) <= 10
        or not all(isinstance(d, str) and _ID.match(d) for d in diseases)
    ):
        raise _problem("rules.diseases", "1 to 10 disease ids, such as covid-19")
    clauses = rules.get("clauses")
    if not isinstance(clauses, list) or not 1 <= len(clauses) <= MAX_CLAUSES:
        raise _problem("rules.clauses", f"a list of 1 to {MAX_CLAUSES} clauses")
    seen: set[str] = set()
    for i, clause in enumerate(clauses):
        at = f"rules.clauses[{i}]"
        if not isinstance(clause, dict) or set(clause) - _CLAUSE_KEYS:
            raise _problem(at, f"an object of {', '.join(sorted(_CLAUSE_KEYS))}")
        if not isinstance(clause.get("id"), str) or not _ID.match(clause["id"]):
            raise _problem(f"{at}.id", "2 to 40 lower-case letters, digits or hyphens")
        if clause["id"] in seen:
            raise _problem(f"{at}.id", "used twice")
        seen.add(clause["id"])
        if clause.get("colour") not in COLOURS:
            raise _problem(f"{at}.colour", "green, yellow or red")
        title = clause.get("title")
        if not isinstance(title, str) or not 3 <= len(title) <= 120:
            raise _problem(f"{at}.title", "3 to 120 characters")
        last = i == len(clauses) - 1
        if last != (clause.get("fact") == "none"):
            raise _problem(f"{at}.fact", "the last clause, and only it, has fact none")
        if not last and clause.get("fact") not in FACT_KINDS:
            raise _problem(f"{at}.fact", f"one of {', '.join(FACT_KINDS)}")
        if not last and "within_days" not in clause:
            raise _problem(f"{at}.within_days", "a clause on a fact says how long it holds")
        _check_conditions(clause, at)
        unless = clause.get("unless", [])
        if not isinstance(unless, list) or len(unless) > 5:
            raise _problem(f"{at}.unless", "a list of at most 5 exemptions")
        for j, exemption in enumerate(unless):
            where = f"{at}.unless[{j}]"
            if not isinstance(exemption, dict) or set(exemption) - _EXEMPTION_KEYS:
                raise _problem(where, f"an object of {', '.join(sorted(_EXEMPTION_KEYS))}")
            if exemption.get("fact") not in FACT_KINDS:
                raise _problem(f"{where}.fact", f"one of {', '.join(FACT_KINDS)}")
            if not isinstance(exemption.get("after_trigger", False), bool):
                raise _problem(f"{where}.after_trigger", "true or false")
            _check_conditions(exemption, where)
    return rules


def digest(rules: Mapping[str, Any]) -> str:
    """The rule set's SHA-256 (hex, over its canonical JSON): what approvals name."""
    return hash_canonical(dict(rules))


def fact(kind: str, record: Mapping[str, Any], *, id_field: str, day_field: str) -> Fact:
    """A recorded fact (as its declared query or the health code's state returns it)."""
    return Fact(
        kind=kind,
        id=str(record[id_field]),
        day=int(record[day_field]),
        fields=record,
        commitment=hash_canonical(dict(record)),
    )


def _holds(candidate: Fact, item: Mapping[str, Any], today: int) -> bool:
    within = item.get("within_days")
    if within is not None and not today - within < candidate.day <= today:
        return False
    if candidate.day > today:
        return False
    for name, accepted in item.get("match", {}).items():
        if candidate.fields.get(name) not in accepted:
            return False
    for name, least in item.get("min", {}).items():
        value = candidate.fields.get(name)
        if not isinstance(value, int) or value < least:
            return False
    return True


def _cited(candidate: Fact, part: str) -> dict[str, Any]:
    return {
        "kind": candidate.kind,
        "id": candidate.id,
        "day": candidate.day,
        "commitment": candidate.commitment,
        "part": part,
    }


def decide(rules: Mapping[str, Any], facts: Sequence[Fact], today: int) -> Decision:
    """The colour ``rules`` give a person with ``facts`` on day ``today``."""
    exempted: list[dict[str, Any]] = []
    for clause in rules["clauses"]:
        if clause["fact"] == "none":
            return Decision(clause["colour"], clause["id"], clause["title"], tuple(exempted))
        firing = [f for f in facts if f.kind == clause["fact"] and _holds(f, clause, today)]
        if not firing:
            continue
        trigger = max(firing, key=lambda f: (f.day, f.id))
        exemption = next(
            (
                other
                for rule in clause.get("unless", [])
                for other in facts
                if other.kind == rule["fact"]
                and _holds(other, rule, today)
                and (not rule.get("after_trigger") or other.day >= trigger.day)
            ),
            None,
        )
        if exemption is not None:
            exempted += [_cited(trigger, f"set aside by an exemption of {clause['id']}")]
            exempted += [_cited(exemption, f"exemption of {clause['id']}")]
            continue
        inputs = (_cited(trigger, "trigger"), *exempted)
        return Decision(clause["colour"], clause["id"], clause["title"], inputs)
    raise AssertionError("a checked rule set ends with a clause on no fact")  # pragma: no cover


RULES_V1: dict[str, Any] = {
    "diseases": ["covid-19", "influenza"],
    "clauses": [
        {"id": "confirmed-case", "colour": "red",
         "title": "A confirmed case diagnosed in the last 14 days",
         "fact": "case", "match": {"status": ["confirmed"]}, "within_days": 14},
        {"id": "positive-test", "colour": "yellow",
         "title": "A positive test in the last 7 days, awaiting confirmation",
         "fact": "lab", "match": {"result": ["positive"]}, "within_days": 7,
         "unless": [{"fact": "lab", "match": {"result": ["negative"]}, "after_trigger": True,
                     "title": "a negative test since"}]},
        {"id": "close-contact", "colour": "yellow",
         "title": "A close-contact notice in the last 7 days",
         "fact": "contact", "within_days": 7,
         "unless": [{"fact": "lab", "match": {"result": ["negative"]}, "after_trigger": True,
                     "title": "a negative test since the notice"}]},
        {"id": "no-finding", "colour": "green", "title": "No finding under these rules",
         "fact": "none"},
    ],
}  # fmt: skip
"""The first rules the demo's commission proposes."""

RULES_V2: dict[str, Any] = {
    **RULES_V1,
    "clauses": [
        RULES_V1["clauses"][0],
        RULES_V1["clauses"][1],
        {**RULES_V1["clauses"][2], "title": "A close-contact notice in the last 10 days",
         "within_days": 10,
         "unless": [*RULES_V1["clauses"][2]["unless"],
                    {"fact": "dose", "min": {"dose_number": 3}, "within_days": 180,
                     "title": "a booster dose in the last 180 days"}]},
        RULES_V1["clauses"][3],
    ],
}  # fmt: skip
"""The demo's rules change: contacts yellow for 10 days, unless boosted or tested since."""
