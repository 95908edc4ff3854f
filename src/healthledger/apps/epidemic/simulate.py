"""A seeded SEIR outbreak across the regions on chain, reported through the contract.

A stochastic chain-binomial SEIR model per district, with a little mixing between
districts, produces symptom onsets; a share of them is seen at a hospital (the one
of the same city if there is one), diagnosed after a short delay and reported by a
doctor or lab with synthetic personal data that goes only to the hospital's vault.
The CDC then reviews most reports. Floats live only inside the model; everything
sent to the ledger is integers and strings. Same seed, same outbreak.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from healthledger.apps.epidemic.dates import day_of_ms, iso
from healthledger.apps.epidemic.pseudonym import resident_id_check
from healthledger.contracts.errors import ContractError
from healthledger.node.embedded import EmbeddedNode

FAMILY = ("Chen", "Li", "Wang", "Zhang", "Liu", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Lin", "He")
GIVEN = ("Wei", "Fang", "Min", "Jie", "Lei", "Yan", "Tao", "Hui", "Jun", "Ping", "Xin", "Yu")
STREETS = ("Zhongshan", "Huanshi", "Dongfeng", "Jiefang", "Binjiang", "Shennan", "Huaqiang")


@dataclass(frozen=True)
class SeirParams:
    """Parameters of the simulated outbreak."""

    population: int = 3000
    """People per district."""
    days: int = 45
    beta: float = 0.45
    """Transmission rate per day."""
    sigma: float = 1 / 2.5
    """1 / latent period (days)."""
    gamma: float = 1 / 4
    """1 / infectious period (days)."""
    mixing: float = 0.05
    """Share of contacts made outside one's own district."""
    seeds: int = 3
    """Infectious people in the first district on day 0."""
    reported_share: float = 0.3
    icd10: str = "J10.1"
    duplicate_share: float = 0.03
    """Share of reported people reported again by another hospital."""


@dataclass(frozen=True)
class SimulatedCase:
    """One onset that will be reported."""

    serial: int
    region: str
    onset: int
    diagnosis: int


def person(serial: int, region: str, rng: random.Random) -> dict[str, str]:
    """A synthetic person living in ``region`` (valid resident-id check character)."""
    year = rng.randint(1940, 2020)
    first17 = f"{region}{year}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{serial % 1000:03d}"
    return {
        "name": f"{rng.choice(FAMILY)} {rng.choice(GIVEN)}{rng.choice(GIVEN).lower()}",
        "id_type": "NI",
        "id_number": first17 + resident_id_check(first17),
        "phone": f"+86 13{rng.randint(0, 9)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
        "address": f"{rng.randint(1, 999)} {rng.choice(STREETS)} Road, {region}",
        "sex": rng.choice(("male", "female")),
        "birth_date": f"{year}-{first17[10:12]}-{first17[12:14]}",
    }


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if n <= 0 or p <= 0:
        return 0
    if n < 60:
        return sum(rng.random() < p for _ in range(n))
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    return max(0, min(n, round(rng.gauss(mean, sd))))


def run_seir(
    districts: list[str], rng: random.Random, params: SeirParams, *, last_day: int
) -> list[SimulatedCase]:
    """The onsets to report, over ``params.days`` days ending at ``last_day``."""
    n = params.population
    s = [n] * len(districts)
    e = [0] * len(districts)
    i = [0] * len(districts)
    s[0] -= params.seeds
    i[0] += params.seeds
    first_day = last_day - params.days + 1
    cases: list[SimulatedCase] = []
    for t in range(params.days):
        mean_prevalence = sum(i) / (n * len(districts))
        new_i = []
        for d in range(len(districts)):
            force = params.beta * ((1 - params.mixing) * i[d] / n + params.mixing * mean_prevalence)
            infected = _binomial(rng, s[d], 1 - math.exp(-force))
            onsets = _binomial(rng, e[d], 1 - math.exp(-params.sigma))
            removed = _binomial(rng, i[d], 1 - math.exp(-params.gamma))
            s[d] -= infected
            e[d] += infected - onsets
            i[d] += onsets - removed
            new_i.append(onsets)
        for d, onsets in enumerate(new_i):
            for _ in range(_binomial(rng, onsets, params.reported_share)):
                onset = first_day + t
                diagnosis = min(last_day, onset + rng.choice((0, 1, 1, 2, 3)))
                cases.append(SimulatedCase(len(cases), districts[d], onset, diagnosis))
    return cases


def _state(node: EmbeddedNode, prefix: str) -> dict[str, Any]:
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return {
        key: item.value
        for key, item in node.peer.store.range_state("epidemic", prefix, end, 100_000)
    }


def simulate(node: EmbeddedNode, rng: random.Random) -> Mapping[str, int]:
    """App.simulate: report a seeded outbreak through ``node`` (see :func:`run`)."""
    counts, _ = run(node, rng)
    return counts


def run(
    node: EmbeddedNode, rng: random.Random, params: SeirParams | None = None
) -> tuple[dict[str, int], list[dict[str, str]]]:
    """Report a seeded outbreak; return counts and the synthetic people reported. The
    epidemic app must be configured (regions, organisations, key), else nothing runs."""
    params = params or SeirParams()
    regions = _state(node, "region/")
    orgs = _state(node, "org/")
    hospitals = sorted(k.split("/", 1)[1] for k, v in orgs.items() if v["kind"] == "hospital")
    cdc = sorted(k.split("/", 1)[1] for k, v in orgs.items() if v["kind"] == "cdc")
    districts = sorted(r["code"] for r in regions.values() if r["level"] == "district")
    if not districts or not hospitals or not _state(node, "pseudonymisation"):
        return {"cases": 0}, []
    staff = _staff(node, hospitals)
    reviewers = [
        e.id
        for org in cdc
        for e in node.keystore.entries()
        if e.id.startswith(f"{org}/") and e.cert.role == "epidemiologist"
    ]
    today = day_of_ms(node.clock())
    outbreak = run_seir(districts, rng, params, last_day=today)
    counts = {"cases": 0, "duplicates": 0, "reviewed": 0, "refused": 0}
    population: list[dict[str, str]] = []
    for case in outbreak:
        people = person(case.serial, case.region, rng)
        population.append(people)
        org = _hospital_for(case.region, hospitals, orgs, rng)
        reports = [org]
        if len(hospitals) > 1 and rng.random() < params.duplicate_share:
            reports.append(rng.choice([h for h in hospitals if h != org]))
        for reporter_org in reports:
            identity, role = rng.choice(staff[reporter_org])
            args = {
                "disease": params.icd10,
                "classification": "confirmed"
                if role == "lab"
                else rng.choice(("suspected", "probable")),
                "onset_date": iso(case.onset),
                "diagnosis_date": case.diagnosis,
                "region": case.region,
            }
            try:
                _, result = node.invoke(
                    identity, "epidemic", "report_case", args, transient={"patient": people}
                )
            except ContractError:
                counts["refused"] += 1
                continue
            counts["cases"] += 1
            counts["duplicates"] += sum(
                1 for link in result["links"] if link["kind"] == "duplicate"
            )
            if reviewers and rng.random() < 0.8:
                decision = "confirm" if args["classification"] != "suspected" else "request_info"
                extra: dict[str, Any] = (
                    {} if decision == "confirm" else {"fields": ["lab-evidence"]}
                )
                node.invoke(
                    rng.choice(reviewers),
                    "epidemic",
                    decision,
                    {"case_id": result["case_id"], **extra},
                )
                counts["reviewed"] += 1
    return counts, population


def _staff(node: EmbeddedNode, hospitals: list[str]) -> dict[str, list[tuple[str, str]]]:
    staff: dict[str, list[tuple[str, str]]] = {h: [] for h in hospitals}
    for entry in node.keystore.entries():
        org = entry.id.split("/", 1)[0]
        if org in staff and entry.cert.role in ("doctor", "lab"):
            staff[org].append((entry.id, entry.cert.role))
    return {h: s for h, s in staff.items() if s}


def _hospital_for(
    region: str, hospitals: list[str], orgs: dict[str, Any], rng: random.Random
) -> str:
    """A hospital of the same city (GB/T 2260: same first four digits), else any."""
    local = [h for h in hospitals if orgs[f"org/{h}"]["region"][:4] == region[:4]]
    return rng.choice(local or hospitals)
