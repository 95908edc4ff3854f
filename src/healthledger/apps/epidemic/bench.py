"""``healthledger epidemic bench``: figures for the epidemic application (printed, never
asserted).

Three measurements on a temporary consortium of the demo organisations, set up with
the Guangdong region table as the demo is:

* ingest: case reports of synthetic people (their personal data in the transient map,
  salted and kept only in the hospital's vault, as in production) endorsed, ordered
  and committed in the embedded node from a few client threads; reports committed
  per second, first one report per transaction (``report_case``), then as many
  reports again in batches of ``batch_size`` per transaction (``report_cases``: each
  report still checked, all or nothing, a transient patient per report);
* dashboard: the read model's aggregate queries behind the dashboard (diseases,
  daily counts in a province, city or hospital scope, alerts, test positivity,
  first doses and doses linked from supply; and the all-cases counts) over a DuckDB
  read model holding ``aggregate_rows`` cases. It is fed from the chain and then
  filled in bulk with synthetic case rows (lab and dose tables hold only what the
  chain has), so a large store is reached in seconds; the issue's goal is 10^7
  (``--aggregate-rows 10000000``);
* freshness: how fast the dashboard's read model applies the ingest run's events;
  then, one report at a time, the delay from its commit (the receipt) to the
  dashboard's read model showing it (the dashboard catches up on each request).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from healthledger.apps.epidemic.batch import Call, commit_all
from healthledger.apps.epidemic.contract import Epidemic
from healthledger.apps.epidemic.dashboard import state_prefix
from healthledger.apps.epidemic.dates import day_of_ms, iso
from healthledger.apps.epidemic.diseases import NOTIFIABLE_DISEASES
from healthledger.apps.epidemic.readmodel import CaseReadModel
from healthledger.apps.epidemic.simulate import person, places_of, setup_demo, staff_of
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.seam import AppNode, scratch_ledger

GOAL_ROWS = 10_000_000
"""Read-model size the issue's dashboard goal is stated for."""
WINDOW = 100
"""Reports one client endorses, orders and awaits together."""
FILL_CHUNK = 1_000_000


@dataclass(frozen=True)
class EpidemicFigures:
    """What ``epidemic bench`` measured."""

    reports: int
    """Reports committed valid in the ingest run."""
    clients: int
    ingest_s: float
    ingest_reports_per_s: float
    """One report per transaction."""
    batch_size: int
    batched_reports: int
    batched_ingest_s: float
    batched_reports_per_s: float
    """``batch_size`` reports per transaction, the same clients."""
    aggregate_rows: int
    """Cases in the read model when the dashboard queries were timed."""
    aggregate_synthetic_rows: int
    """Of those, rows written straight into DuckDB (not from the chain)."""
    aggregate_goal_rows: int
    aggregate_at_goal: bool
    """True if the read model held at least the issue's 10^7 cases."""
    aggregate_fill_s: float
    dashboard_samples: int
    dashboard_p50_ms: float
    dashboard_p99_ms: float
    counts_samples: int
    counts_p50_ms: float
    counts_p99_ms: float
    catch_up_events: int
    """Ledger events the dashboard's read model applied after the ingest run."""
    catch_up_events_per_s: float
    """How fast it applied them: above the ingest rate, it keeps up under load."""
    freshness_samples: int
    freshness_p50_ms: float
    freshness_p99_ms: float

    def to_json(self) -> dict[str, Any]:
        """The figures as ``--json`` prints them."""
        return {"benchmark": "epidemic", **asdict(self)}


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(samples: list[float]) -> tuple[float, float]:
    return round(statistics.median(samples), 3), round(_percentile(samples, 0.99), 3)


def epidemic_benchmark(
    *,
    reports: int = 2_000,
    clients: int = 4,
    batch_size: int = 100,
    aggregate_rows: int = 1_000_000,
    samples: int = 200,
    freshness_samples: int = 100,
    seed: int = 5,
    status: Callable[[str], None] = lambda _: None,
) -> EpidemicFigures:
    """Run the three measurements on a temporary node; nothing is kept."""
    with (
        tempfile.TemporaryDirectory(prefix="healthledger-epidemic-bench-") as tmp,
        scratch_ledger(
            Path(tmp) / "node",
            name="epidemic",
            namespaces=(Epidemic.name,),
            contracts=(*SYSTEM_CONTRACTS, Epidemic),
            plans=DEMO_ORGS,
        ) as node,
    ):
        return _run(
            node,
            Path(tmp),
            random.Random(seed),
            reports=reports,
            clients=clients,
            batch_size=batch_size,
            aggregate_rows=aggregate_rows,
            samples=samples,
            freshness_samples=freshness_samples,
            status=status,
        )


@dataclass(frozen=True)
class _Setting:
    districts: list[str]
    staff: dict[str, list[tuple[str, str]]]
    today: int


def _report(setting: _Setting, serial: int, rng: random.Random) -> Call:
    """One hospital's report of a synthetic person, personal data in the transient map."""
    region = rng.choice(setting.districts)
    org = rng.choice(sorted(setting.staff))
    identity, role = rng.choice(setting.staff[org])
    onset = setting.today - rng.randint(1, 30)
    args = {
        "disease": "J10.1",
        "classification": "confirmed" if role == "lab" else "suspected",
        "onset_date": iso(onset),
        "diagnosis_date": min(setting.today, onset + rng.randint(0, 3)),
        "region": region,
    }
    return Call(identity, "report_case", args, {"patient": person(serial, region, rng)})


def _batches(
    setting: _Setting, reports: int, size: int, rng: random.Random, *, first_serial: int
) -> list[Call]:
    """``reports`` reports in ``report_cases`` calls of up to ``size``, each call by one
    member of staff (a batch is one hospital's upload)."""
    calls = []
    for start in range(0, reports, size):
        singles = [
            _report(setting, first_serial + serial, rng)
            for serial in range(start, min(reports, start + size))
        ]
        identity = singles[0].identity
        calls.append(
            Call(
                identity,
                "report_cases",
                {"reports": [c.args for c in singles]},
                {"patients": [c.transient["patient"] for c in singles if c.transient]},
            )
        )
    return calls


def _run(
    node: AppNode,
    tmp: Path,
    rng: random.Random,
    *,
    reports: int,
    clients: int,
    batch_size: int,
    aggregate_rows: int,
    samples: int,
    freshness_samples: int,
    status: Callable[[str], None],
) -> EpidemicFigures:
    status("setup: Guangdong region table and the reporting organisations")
    setup_demo(node)
    orgs = state_prefix(node, "org/")
    hospitals = sorted(k.split("/", 1)[1] for k, v in orgs.items() if v["kind"] == "hospital")
    setting = _Setting(
        districts=places_of(state_prefix(node, "region/")),
        staff=staff_of(node, hospitals),
        today=day_of_ms(node.clock()),
    )
    calls = [_report(setting, serial, rng) for serial in range(reports)]
    windows = [calls[i : i + WINDOW] for i in range(0, len(calls), WINDOW)]

    status(f"ingest: {reports} reports from {clients} clients")
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = [r for done in pool.map(lambda w: commit_all(node, w), windows) for r in done]
    ingest_s = time.perf_counter() - start
    committed = sum(1 for r in results if r is not None)
    if committed != reports:
        raise RuntimeError(f"{reports - committed} reports were refused: the benchmark is broken")

    status(f"ingest: {reports} reports in batches of {batch_size} from {clients} clients")
    batches = _batches(setting, reports, batch_size, rng, first_serial=reports)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        done = list(pool.map(lambda b: commit_all(node, [b]), batches))
    batched_s = time.perf_counter() - start
    batched = sum(len(r[0]) for r in done if r[0] is not None)
    if batched != reports:
        raise RuntimeError(f"{reports - batched} batched reports were refused: broken benchmark")

    status("freshness: commit to read model, one report at a time")
    live = CaseReadModel(node)
    try:
        start = time.perf_counter()
        caught_up = live.catch_up()
        catch_up_s = time.perf_counter() - start
        fresh_ms = _freshness(node, live, setting, rng, freshness_samples, 2 * reports)
    finally:
        live.close()

    status(f"dashboard: filling the read model to {aggregate_rows} cases")
    path = tmp / "cases.duckdb"
    model = CaseReadModel(node, path)
    model.catch_up()
    from_chain = model.size()
    model.close()
    start = time.perf_counter()
    synthetic = _fill(path, max(0, aggregate_rows - from_chain), setting, sorted(orgs))
    fill_s = time.perf_counter() - start
    model = CaseReadModel(node, path)
    try:
        dashboard_ms, counts_ms, total = _aggregates(model, hospitals, samples)
    finally:
        model.close()

    dashboard = _ms(dashboard_ms)
    counts = _ms(counts_ms)
    fresh = _ms(fresh_ms)
    return EpidemicFigures(
        reports=committed,
        clients=clients,
        ingest_s=round(ingest_s, 3),
        ingest_reports_per_s=round(committed / ingest_s, 1),
        batch_size=batch_size,
        batched_reports=batched,
        batched_ingest_s=round(batched_s, 3),
        batched_reports_per_s=round(batched / batched_s, 1),
        aggregate_rows=total,
        aggregate_synthetic_rows=synthetic,
        aggregate_goal_rows=GOAL_ROWS,
        aggregate_at_goal=total >= GOAL_ROWS,
        aggregate_fill_s=round(fill_s, 3),
        dashboard_samples=len(dashboard_ms),
        dashboard_p50_ms=dashboard[0],
        dashboard_p99_ms=dashboard[1],
        counts_samples=len(counts_ms),
        counts_p50_ms=counts[0],
        counts_p99_ms=counts[1],
        catch_up_events=caught_up,
        catch_up_events_per_s=round(caught_up / catch_up_s, 1),
        freshness_samples=len(fresh_ms),
        freshness_p50_ms=fresh[0],
        freshness_p99_ms=fresh[1],
    )


def _freshness(
    node: AppNode,
    model: CaseReadModel,
    setting: _Setting,
    rng: random.Random,
    count: int,
    first_serial: int,
) -> list[float]:
    """Per report: from the commit's receipt until the read model shows the case."""
    found: list[float] = []
    for i in range(count):
        call = _report(setting, first_serial + i, rng)
        org = call.identity.split("/", 1)[0]
        before = sum(n for *_, n in model.daily(org=org))
        (result,) = commit_all(node, [call])
        committed = time.perf_counter()
        if result is None:
            raise RuntimeError("a freshness report was refused: the benchmark is broken")
        while True:
            model.catch_up()
            if sum(n for *_, n in model.daily(org=org)) > before:
                break
        found.append((time.perf_counter() - committed) * 1000)
    return found


def _fill(path: Path, rows: int, setting: _Setting, orgs: list[str]) -> int:
    """Synthetic case rows written straight into the read model's DuckDB file."""
    diseases = [d.id for d in NOTIFIABLE_DISEASES]
    db = duckdb.connect(str(path))
    try:
        for offset in range(0, rows, FILL_CHUNK):
            size = min(FILL_CHUNK, rows - offset)
            # Skewed like real surveillance: most cases are of a few diseases.
            db.execute(
                "INSERT INTO cases SELECT 'synthetic-' || (i + $offset)::VARCHAR, "
                "list_element($diseases, 1 + ((i * i) % len($diseases))::INTEGER), "
                "list_element(['suspected','probable','confirmed'], 1 + (i % 3)::INTEGER), "
                "$today - (i % 365)::INTEGER, $today - (i % 365)::INTEGER + (i % 4)::INTEGER, "
                "list_element($districts, 1 + (i % len($districts))::INTEGER), "
                "list_element($orgs, 1 + ((i // 7) % len($orgs))::INTEGER), "
                "CASE WHEN i % 20 = 0 THEN 'rejected' ELSE 'confirmed' END, "
                "'under-treatment' FROM range($size) t(i)",
                {
                    "offset": offset,
                    "size": size,
                    "diseases": diseases,
                    "today": setting.today,
                    "districts": setting.districts,
                    "orgs": orgs,
                },
            )
    finally:
        db.close()
    return rows


def _aggregates(
    model: CaseReadModel, hospitals: list[str], samples: int
) -> tuple[list[float], list[float], int]:
    """Times of one dashboard's queries (province, city, hospital scopes in turn) and of
    the all-cases counts; and the number of cases."""
    scopes: list[tuple[str | None, str | None]] = [("44", None), ("4401", None), ("4403", None)]
    scopes += [(None, h) for h in hospitals[:2]]
    total = model.size()

    def dashboard(prefix: str | None, org: str | None) -> None:
        chosen = model.diseases()[0]
        model.daily(disease=chosen, region=prefix, org=org)
        model.alerts(disease=chosen)
        model.positivity(disease=chosen, region=prefix, org=org)
        model.first_doses(disease=chosen, org=org)
        model.supply_doses()

    dashboard_ms = []
    for i in range(samples):
        prefix, org = scopes[i % len(scopes)]
        start = time.perf_counter()
        dashboard(prefix, org)
        dashboard_ms.append((time.perf_counter() - start) * 1000)
    counts_ms = []
    for _ in range(max(1, samples // 4)):
        start = time.perf_counter()
        model.counts()
        counts_ms.append((time.perf_counter() - start) * 1000)
    return dashboard_ms, counts_ms, total
