"""A seeded SEIR outbreak across the regions on chain, reported through the contract.

A stochastic chain-binomial SEIR model per district, with a little mixing between
districts, produces symptom onsets; a share of them is seen at a hospital (the one
of the same city if there is one), diagnosed after a short delay and reported by a
doctor or lab with synthetic personal data that goes only to the hospital's vault.
The CDC then reviews most reports. Labs report a test result (LOINC) for a share of
the cases and negative results for people tested around them; a vaccination campaign
(CVX) runs in the hospitals' cities, some people coming back for a second dose, and a
two-dose COVID-19 series leaves some second doses due or overdue.
Floats live only inside the model; everything sent to the ledger is integers and
strings. Same seed, same outbreak.
"""

from __future__ import annotations

import datetime
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from healthledger.apps.epidemic.batch import Call, commit_all
from healthledger.apps.epidemic.contract import REPORTING_ROLES
from healthledger.apps.epidemic.dashboard import state_prefix
from healthledger.apps.epidemic.dates import day_of_ms, iso
from healthledger.apps.epidemic.observations import VACCINATING_ROLES
from healthledger.apps.epidemic.provision import CONFIGURER, configure
from healthledger.apps.epidemic.pseudonym import resident_id_check
from healthledger.apps.epidemic.readmodel import CaseReadModel
from healthledger.apps.epidemic.regions import GUANGDONG, province_table
from healthledger.apps.epidemic.warning import record_alerts
from healthledger.node.seam import AppNode

FAMILY = ("Chen", "Li", "Wang", "Zhang", "Liu", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Lin", "He")
GIVEN = ("Wei", "Fang", "Min", "Jie", "Lei", "Yan", "Tao", "Hui", "Jun", "Ping", "Xin", "Yu")
WINDOW = 200
"""Cases whose reports are endorsed and ordered together."""
EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
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
    """Share of contacts made outside one's own district, across the province."""
    city_mixing: float = 0.0
    """Share of contacts made in other districts of one's own city (same first four
    digits of the GB/T 2260 code)."""
    seeds: int = 3
    """Infectious people in the first district on day 0."""
    reported_share: float = 0.3
    icd10: str = "J10.1"
    duplicate_share: float = 0.03
    """Share of reported people reported again by another hospital."""
    tested_share: float = 0.5
    """Share of reported cases with a (positive) lab result on chain."""
    negatives_per_positive: int = 2
    """Mean negative results per positive (people tested around a case)."""
    vaccinations: int = 120
    """First doses given in the campaign over the outbreak's last weeks."""
    second_dose_share: float = 0.3
    loinc: str = "92142-9"
    """The test: influenza A RNA by NAA."""
    cvx: str = "150"
    """The vaccine: influenza, injectable, quadrivalent, preservative free."""
    covid_first_doses: int = 0
    """First doses of a two-dose COVID-19 series (CVX 510, inactivated) given 3 to 11
    weeks ago; some people came back in time, a few too early, the rest are due or
    overdue their second dose (what the CDC's coverage page shows)."""


DEMO_PARAMS = SeirParams(
    population=10_000,
    days=50,
    beta=0.55,
    mixing=0.02,
    city_mixing=0.15,
    seeds=5,
    reported_share=0.1,
    tested_share=0.4,
    vaccinations=150,
    covid_first_doses=90,
)
"""The demo's outbreak over Guangdong: it starts in Liwan (Guangzhou), spreads
through the city first and then along the province; about six hundred reports."""


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
    city_of = [code[:4] for code in districts]
    for t in range(params.days):
        mean_prevalence = sum(i) / (n * len(districts))
        city_infectious: dict[str, list[int]] = {}
        for d, city in enumerate(city_of):
            city_infectious.setdefault(city, []).append(i[d])
        city_prevalence = {c: sum(v) / (n * len(v)) for c, v in city_infectious.items()}
        own = 1 - params.mixing - params.city_mixing
        new_i = []
        for d in range(len(districts)):
            force = params.beta * (
                own * i[d] / n
                + params.city_mixing * city_prevalence[city_of[d]]
                + params.mixing * mean_prevalence
            )
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


def simulate(node: AppNode, rng: random.Random) -> Mapping[str, int]:
    """App.simulate: set the demo up if the chain has no region table yet (see
    :func:`setup_demo`), then report a seeded outbreak through ``node`` (see :func:`run`)."""
    configured = setup_demo(node)
    define_simulated_population(node, DEMO_PARAMS)
    counts, _ = run(node, rng, DEMO_PARAMS)
    alerts = 0
    reviewers = node.identities(role="epidemiologist")
    if reviewers:
        model = CaseReadModel(node)
        try:
            today = day_of_ms(node.clock())
            alerts = len(record_alerts(node, model, reviewers[0], today=today))
        finally:
            model.close()
    return {**counts, "alerts": alerts, "regions defined": configured}


def setup_demo(node: AppNode, province: str = GUANGDONG) -> int:
    """The commission writes ``province``'s region table from the region package on
    chain and registers the reporting organisations; the CDC installs the demo
    pseudonymisation key. Nothing happens on a chain that has regions already.
    Returns how many regions were written."""
    if state_prefix(node, "region/"):
        return 0
    table = province_table(province)
    configure(node, table)
    return len(table)


POPULATION_SOURCE = "simulated SEIR population of the demo (not a census)"


def define_simulated_population(node: AppNode, params: SeirParams) -> int:
    """The commission records the simulated population of each district (the model's
    ``params.population``), the denominator of the demo's coverage; nothing happens if
    a population is on chain already. Returns how many regions were recorded."""
    if state_prefix(node, "population/") or not state_prefix(node, "org/"):
        return 0
    districts = places_of(state_prefix(node, "region/"))
    if not districts:
        return 0
    populations = [{"region": code, "population": params.population} for code in districts]
    year = datetime.date.fromordinal(EPOCH_ORDINAL + day_of_ms(node.clock())).year
    node.invoke(
        CONFIGURER,
        "epidemic",
        "define_population",
        {"populations": populations, "source": POPULATION_SOURCE, "year": year},
    )
    return len(populations)


def run(
    node: AppNode, rng: random.Random, params: SeirParams | None = None
) -> tuple[dict[str, int], list[dict[str, str]]]:
    """Report a seeded outbreak; return counts and the synthetic people reported. The
    epidemic app must be configured (regions, organisations, key), else nothing runs."""
    params = params or SeirParams()
    regions = state_prefix(node, "region/")
    orgs = state_prefix(node, "org/")
    hospitals = sorted(k.split("/", 1)[1] for k, v in orgs.items() if v["kind"] == "hospital")
    cdc = sorted(k.split("/", 1)[1] for k, v in orgs.items() if v["kind"] == "cdc")
    districts = places_of(regions)
    if not districts or not hospitals or not state_prefix(node, "pseudonymisation"):
        return {"cases": 0}, []
    staff = staff_of(node, hospitals)
    reviewers = [i for org in cdc for i in node.identities(role="epidemiologist", org=org)]
    today = day_of_ms(node.clock())
    outbreak = run_seir(districts, rng, params, last_day=today)
    counts = {"cases": 0, "duplicates": 0, "reviewed": 0, "refused": 0}
    population: list[dict[str, str]] = []
    for start in range(0, len(outbreak), WINDOW):
        # Reports of distinct people touch distinct keys, so a window of them is
        # endorsed and ordered together; a second hospital's report of the same
        # person waits for the first to commit, so that the contract links the two.
        waves: tuple[list[Call], list[Call]] = ([], [])
        for case in outbreak[start : start + WINDOW]:
            people = person(case.serial, case.region, rng)
            population.append(people)
            org = hospital_for(case.region, hospitals, orgs, rng)
            reporters = [org]
            if len(hospitals) > 1 and rng.random() < params.duplicate_share:
                reporters.append(rng.choice([h for h in hospitals if h != org]))
            for wave, reporter_org in zip(waves, reporters, strict=False):
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
                wave.append(Call(identity, "report_case", args, {"patient": people}))
        reviews: list[Call] = []
        for wave in waves:
            for call, result in zip(wave, commit_all(node, wave), strict=True):
                if result is None:
                    counts["refused"] += 1
                    continue
                counts["cases"] += 1
                counts["duplicates"] += sum(
                    1 for link in result["links"] if link["kind"] == "duplicate"
                )
                if reviewers and rng.random() < 0.8:
                    confirm = call.args["classification"] != "suspected"
                    reviews.append(
                        Call(
                            rng.choice(reviewers),
                            "confirm" if confirm else "request_info",
                            {"case_id": result["case_id"]}
                            if confirm
                            else {"case_id": result["case_id"], "fields": ["lab-evidence"]},
                        )
                    )
        counts["reviewed"] += sum(1 for r in commit_all(node, reviews) if r is not None)
    labs = lab_calls(outbreak, staff, orgs, hospitals, rng, params, population, today=today)
    counts["lab results"] = _committed(node, labs)
    vaccinators = staff_of(node, hospitals, VACCINATING_ROLES)
    campaign = vaccination_calls(districts, vaccinators, orgs, rng, params, population, today=today)
    counts["vaccinations"] = _committed(node, campaign)
    series = covid_series_calls(districts, vaccinators, orgs, rng, params, population, today=today)
    counts["COVID-19 doses"] = _committed(node, series)
    return counts, population


def _committed(node: AppNode, calls: list[Call]) -> int:
    done = 0
    for start in range(0, len(calls), WINDOW):
        done += sum(1 for r in commit_all(node, calls[start : start + WINDOW]) if r is not None)
    return done


def lab_calls(
    cases: list[SimulatedCase],
    staff: dict[str, list[tuple[str, str]]],
    orgs: dict[str, Any],
    hospitals: list[str],
    rng: random.Random,
    params: SeirParams,
    people: list[dict[str, str]],
    *,
    today: int,
) -> list[Call]:
    """Lab results: a positive for a share of ``cases`` (their patient is
    ``people[case.serial]``) and negatives for people tested around them, by a lab of
    the hospital of their city. The people tested negative are added to ``people``."""
    calls = []
    for case in cases:
        if rng.random() >= params.tested_share:
            continue
        org = hospital_for(case.region, hospitals, orgs, rng)
        labs = [identity for identity, role in staff.get(org, []) if role == "lab"]
        if not labs:
            continue
        negatives = rng.randint(0, 2 * params.negatives_per_positive)
        for positive in [True] + [False] * negatives:
            if positive and case.serial < len(people):
                tested = people[case.serial]  # the case's own patient: same pseudonymous id
            else:
                tested = person(len(people) + 100_000, case.region, rng)
                people.append(tested)
            specimen = case.onset + rng.choice((0, 1, 1, 2)) if positive else case.diagnosis
            specimen = min(specimen, today)
            args = {
                "test": params.loinc,
                "result": "positive" if positive else "negative",
                "specimen_date": specimen,
                "result_date": min(today, specimen + rng.choice((0, 1))),
                "region": case.region,
            }
            calls.append(Call(rng.choice(labs), "report_lab_result", args, {"patient": tested}))
    return calls


@dataclass(frozen=True)
class FirstDose:
    """One simulated person's first dose: where, on which day, by whom."""

    region: str
    day: int
    giver: str
    patient: dict[str, str]


def first_doses(
    districts: list[str],
    vaccinators: dict[str, list[tuple[str, str]]],
    orgs: dict[str, Any],
    rng: random.Random,
    people: list[dict[str, str]],
    *,
    count: int,
    serial_base: int,
    today: int,
    days_back: tuple[int, int],
) -> Iterator[FirstDose]:
    """``count`` new people vaccinated in the cities of the hospitals with
    ``vaccinators``, each ``days_back`` days before ``today`` (at random in that range) by
    a vaccinator of the hospital of their city; each person is added to ``people``."""
    hospitals = sorted(vaccinators)
    cities = {orgs[f"org/{h}"]["region"][:4] for h in hospitals}
    places = [d for d in districts if d[:4] in cities] or districts
    for _ in range(count if places and hospitals else 0):
        region = rng.choice(places)
        org = hospital_for(region, hospitals, orgs, rng)
        patient = person(len(people) + serial_base, region, rng)
        people.append(patient)
        day = today - rng.randint(*days_back)
        yield FirstDose(region, day, rng.choice(vaccinators[org])[0], patient)


def vaccination_calls(
    districts: list[str],
    vaccinators: dict[str, list[tuple[str, str]]],
    orgs: dict[str, Any],
    rng: random.Random,
    params: SeirParams,
    people: list[dict[str, str]],
    *,
    today: int,
    days_back: tuple[int, int] = (7, 21),
) -> list[Call]:
    """A vaccination campaign in the cities of the hospitals with ``vaccinators``,
    dated ``days_back`` days before ``today`` (by default the last three weeks), some
    people coming back for a second dose; the people vaccinated are added to
    ``people``."""
    calls = []
    for dose in first_doses(districts, vaccinators, orgs, rng, people, count=params.vaccinations,
                            serial_base=200_000, today=today, days_back=days_back):  # fmt: skip
        args = {"vaccine": params.cvx, "dose_number": 1, "administered_date": dose.day,
                "region": dose.region, "lot": "SIM-1"}  # fmt: skip
        calls.append(Call(dose.giver, "record_vaccination", args, {"patient": dose.patient}))
        if rng.random() < params.second_dose_share:
            again = {**args, "dose_number": 2, "administered_date": dose.day + 7, "lot": "SIM-2"}
            calls.append(Call(dose.giver, "record_vaccination", again, {"patient": dose.patient}))
    return calls


def covid_series_calls(
    districts: list[str],
    vaccinators: dict[str, list[tuple[str, str]]],
    orgs: dict[str, Any],
    rng: random.Random,
    params: SeirParams,
    people: list[dict[str, str]],
    *,
    today: int,
) -> list[Call]:
    """``params.covid_first_doses`` first doses of a two-dose COVID-19 series, 21 to 77
    days before ``today``: about 55% came back 21 to 35 days later, 10% too early (14
    days later: that dose does not count), the rest not at all; the people vaccinated are
    added to ``people``."""
    calls = []
    for dose in first_doses(districts, vaccinators, orgs, rng, people,
                            count=params.covid_first_doses, serial_base=300_000, today=today,
                            days_back=(21, 77)):  # fmt: skip
        args = {"vaccine": "510", "dose_number": 1, "administered_date": dose.day,
                "region": dose.region, "lot": "SIM-C1"}  # fmt: skip
        calls.append(Call(dose.giver, "record_vaccination", args, {"patient": dose.patient}))
        back = rng.random()
        second = dose.day + (rng.randint(21, 35) if back < 0.55 else 14)
        if back < 0.65 and second <= today:
            again = {**args, "dose_number": 2, "administered_date": second, "lot": "SIM-C2"}
            calls.append(Call(dose.giver, "record_vaccination", again, {"patient": dose.patient}))
    return calls


def places_of(regions: dict[str, Any]) -> list[str]:
    """Where people live: regions below a province that contain no other region (the
    districts, and cities without districts such as Dongguan and Zhongshan)."""
    parents = {r["parent"] for r in regions.values() if r.get("parent")}
    return sorted(
        r["code"] for r in regions.values() if r["level"] != "province" and r["code"] not in parents
    )


def staff_of(
    node: AppNode, hospitals: list[str], roles: tuple[str, ...] = REPORTING_ROLES
) -> dict[str, list[tuple[str, str]]]:
    """Staff of ``roles`` per hospital whose keys this node holds (demo custody); only
    hospitals with such staff are listed."""
    staff: dict[str, list[tuple[str, str]]] = {h: [] for h in hospitals}
    for role in roles:
        for identity in node.identities(role=role):
            org = identity.split("/", 1)[0]
            if org in staff:
                staff[org].append((identity, role))
    for found in staff.values():
        found.sort()
    return {h: s for h, s in staff.items() if s}


def hospital_for(
    region: str, hospitals: list[str], orgs: dict[str, Any], rng: random.Random
) -> str:
    """A hospital of the same city (GB/T 2260: same first four digits), else any."""
    local = [h for h in hospitals if orgs[f"org/{h}"]["region"][:4] == region[:4]]
    return rng.choice(local or hospitals)
