"""Live demo traffic (``App.live_step``): one small round of the outbreak while the
console is served, so that the dashboard moves.

How many cases and doses a day follows the story of ``wave.py`` (a wave that peaks
and declines under measures and a vaccination campaign, capped a day), however many
rounds run in the day. Each round continues the outbreak the chain holds: the
infection pressure in each district is the renewal equation over its recent onsets
(Σ w_s I_{t-s} with the dashboard's serial interval), and the round's new cases (up
to what today still has to come) are placed in proportion to it, with
onsets in the last few days (the calendar cannot run ahead of the node's clock: a
report dated in the future is refused). A share of the new cases gets a lab result
with negatives around it, a dose or two of the vaccination campaign is given, and the
CDC reviews a few waiting reports. Everything is read from committed state, so a
round keeps to what earlier rounds (and the initial simulation) left.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from healthledger.apps.epidemic.batch import Call, commit_all
from healthledger.apps.epidemic.dashboard import state_prefix
from healthledger.apps.epidemic.dates import day_of_ms
from healthledger.apps.epidemic.observations import VACCINATING_ROLES
from healthledger.apps.epidemic.releases import cdc_staff
from healthledger.apps.epidemic.simulate import (
    DEMO_PARAMS,
    SeirParams,
    SimulatedCase,
    hospital_for,
    lab_calls,
    person,
    places_of,
    staff_of,
    vaccination_calls,
)
from healthledger.apps.epidemic.surveillance import serial_interval
from healthledger.apps.epidemic.wave import Outlook, outlook
from healthledger.node.seam import AppNode

MAX_NEW_CASES = 4
MAX_REVIEWS = 3
MAX_DOSES = 2
SPARK = 0.05
"""Pressure every district has from travel, so a quiet chain still sees a case."""


def pressure(
    cases: Mapping[str, Mapping[str, Any]], places: list[str], today: int
) -> dict[str, float]:
    """Today's infection pressure per district: Σ_s w_s I_{d, today-s} over recent
    onsets (rejected reports left out)."""
    weights = serial_interval()
    onsets: dict[tuple[str, int], int] = {}
    for record in cases.values():
        if record["status"] != "rejected" and today - record["onset"] <= len(weights):
            key = (record["region"], record["onset"])
            onsets[key] = onsets.get(key, 0) + 1
    return {
        place: SPARK
        + sum(w * onsets.get((place, today - s), 0) for s, w in enumerate(weights, start=1))
        for place in places
    }


def live_step(
    node: AppNode, rng: random.Random, params: SeirParams = DEMO_PARAMS
) -> Mapping[str, int]:
    """One round of live traffic (see the module docstring); counts of what committed.
    Nothing happens on a chain where the epidemic app is not configured."""
    regions = state_prefix(node, "region/")
    orgs = state_prefix(node, "org/")
    hospitals = sorted(k.split("/", 1)[1] for k, v in orgs.items() if v["kind"] == "hospital")
    places = places_of(regions)
    if not places or not hospitals or not state_prefix(node, "pseudonymisation"):
        return {}
    staff = staff_of(node, hospitals)
    today = day_of_ms(node.clock())
    cases = state_prefix(node, "case/")
    doses = state_prefix(node, "vaccination/")
    reported_today = sum(1 for r in cases.values() if day_of_ms(r["reported_at"]) == today)
    given_today = sum(1 for r in doses.values() if r.get("day") == today)
    plans = node.shared("live-day-plans", dict[int, tuple[Outlook, int, int]])
    if today not in plans:  # the day's first round: the day's story is fixed from here
        story = outlook(cases.values(), len(doses), len(places), today, params)
        plans[today] = (story, reported_today, given_today)
    story, reported_before, given_before = plans[today]
    reported_today -= reported_before  # what earlier rounds of the day reported
    given_today -= given_before
    weights = pressure(cases, places, today)
    new: list[SimulatedCase] = []
    people: list[dict[str, str]] = []
    reports: list[Call] = []
    for _ in range(min(rng.randint(1, MAX_NEW_CASES), story.expected - reported_today)):
        region = rng.choices(places, weights=[weights[p] for p in places])[0]
        onset = today - rng.choice((0, 1, 1, 2, 3))
        diagnosis = min(today, onset + rng.choice((0, 1, 2)))
        org = hospital_for(region, hospitals, orgs, rng)
        if not staff.get(org):
            continue
        identity, role = rng.choice(staff[org])
        patient = person(rng.randrange(1_000_000), region, rng)
        new.append(SimulatedCase(len(people), region, onset, diagnosis))
        people.append(patient)
        args = {
            "disease": params.icd10,
            "classification": "confirmed"
            if role == "lab"
            else rng.choice(("suspected", "probable")),
            "onset_date": onset,
            "diagnosis_date": diagnosis,
            "region": region,
        }
        reports.append(Call(identity, "report_case", args, {"patient": patient}))
    reported = sum(1 for r in commit_all(node, reports) if r is not None)
    labs = lab_calls(new, staff, orgs, hospitals, rng, params, people, today=today)
    due = max(0, min(rng.randint(0, MAX_DOSES), story.doses - given_today))
    campaign = SeirParams(vaccinations=due, second_dose_share=0.0)
    vaccinators = staff_of(node, hospitals, VACCINATING_ROLES)
    given = vaccination_calls(
        places, vaccinators, orgs, rng, campaign, people, today=today, days_back=(0, 0)
    )
    reviews = _reviews(node, cases, rng)
    results = commit_all(node, labs + given + reviews)
    done = [r is not None for r in results]
    return {
        "cases": reported,
        "lab results": sum(done[: len(labs)]),
        "vaccinations": sum(done[len(labs) : len(labs) + len(given)]),
        "reviewed": sum(done[len(labs) + len(given) :]),
    }


def _reviews(
    node: AppNode, cases: Mapping[str, Mapping[str, Any]], rng: random.Random
) -> list[Call]:
    """The CDC confirms (or asks about) a few of the oldest waiting reports."""
    reviewers = cdc_staff(node)
    if not reviewers:
        return []
    waiting = sorted(
        (record["reported_at"], record["case_id"], record["classification"])
        for record in cases.values()
        if record["status"] == "reported"
    )[:MAX_REVIEWS]
    calls = []
    for _, case_id, classification in waiting:
        if classification == "suspected":
            args: dict[str, Any] = {"case_id": case_id, "fields": ["lab-evidence"]}
            calls.append(Call(rng.choice(reviewers), "request_info", args))
        else:
            calls.append(Call(rng.choice(reviewers), "confirm", {"case_id": case_id}))
    return calls
