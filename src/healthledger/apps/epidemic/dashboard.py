"""The monitoring dashboard's figures, from the read model and the region table on
chain, limited to what the viewer may see (ARCHITECTURE.md section 6; issue 5 item 5):
a hospital its own reports, a CDC or commission its region and the regions granted to
it on chain (see visibility.py)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from healthledger.apps.epidemic.dates import day_of_ms, iso
from healthledger.apps.epidemic.filters import choose, region_label, region_prefix
from healthledger.apps.epidemic.positivity import POSITIVITY_RULE, positivity
from healthledger.apps.epidemic.readmodel import CaseReadModel, snapshot_folder
from healthledger.apps.epidemic.snapshot import SNAPSHOT_EVERY_TX
from healthledger.apps.epidemic.surveillance import (
    NOWCAST_MAX_DELAY,
    NOWCAST_MIN_COMPLETENESS,
    RT_PRIOR_MEAN,
    RT_PRIOR_SD,
    RT_WINDOW,
    SERIAL_INTERVAL_MEAN,
    SERIAL_INTERVAL_SD,
    RtEstimate,
    cori_rt,
    delay_distribution,
    doubling_time,
    nowcast,
    serial_interval,
)
from healthledger.apps.epidemic.warning import city_of
from healthledger.node.seam import AppNode

DELAY_HISTORY_DAYS = 60
"""Onsets this recent give the nowcast's delay distribution."""
RT_EXPLAINED = (
    "Rt, latest window, uses the cases reported so far: the last few days are still "
    "incomplete (cases are reported days after onset), so it reads low while cases rise. "
    "Rt, nowcast-corrected, first scales each recent day up by how complete it is "
    f"expected to be, from the onset-to-diagnosis delays of the last {DELAY_HISTORY_DAYS} "
    "days, and is the better guide to where the epidemic is heading now."
)
__all__ = ["Dashboard", "Scope", "region_prefix", "regions_on_chain", "scope_of", "state_prefix"]


@dataclass(frozen=True)
class Scope:
    """What a viewer may see: cases in a region (code prefix) and the regions granted
    to it (prefixes), or of one organisation."""

    label: str
    region_prefix: str | None = None
    org: str | None = None
    granted: tuple[str, ...] = ()
    """Code prefixes of regions granted on chain, in force today."""

    @property
    def prefixes(self) -> tuple[str, ...] | None:
        """Every region code prefix in scope; None for an organisation's own reports."""
        if self.region_prefix is None:
            return None
        return (self.region_prefix, *self.granted)

    def covers(self, region: str) -> bool:
        """True if an aggregate over ``region`` lies in this scope (an org sees its own
        reports wherever they are)."""
        prefixes = self.prefixes
        return prefixes is None or any(region.startswith(p) for p in prefixes)


def regions_on_chain(node: AppNode) -> dict[str, dict[str, Any]]:
    """The region table the commission wrote, by code."""
    return {value["code"]: value for _, value in node.range("region/", limit=100_000)}


def state_prefix(node: AppNode, prefix: str) -> dict[str, Any]:
    """Committed epidemic state under ``prefix``, by key."""
    return dict(node.range(prefix, limit=100_000))


def scope_of(node: AppNode, identity: str) -> Scope | None:
    """The viewer's scope from their organisation's record and the grants to it on
    chain; None for those who may see protected aggregates only."""
    org = identity.split("/", 1)[0]
    record = node.get(f"org/{org}")
    if record is None:
        return None
    if record["kind"] == "hospital":
        return Scope(label=f"cases reported by {org}", org=org)
    today = day_of_ms(node.clock())
    granted = sorted(
        {
            region_prefix(code)
            for grant in state_prefix(node, f"grant/{org}/").values()
            if "revoked" not in grant and grant["from_day"] <= today <= grant["until_day"]
            for code in grant["regions"]
        }
    )
    label = "region " + region_label(str(record["region"]), regions_on_chain(node))
    if granted:
        label += " and regions granted on chain: " + ", ".join(granted)
    own = region_prefix(record["region"])
    return Scope(
        label=label,
        region_prefix=own,
        granted=tuple(p for p in granted if not p.startswith(own)),
    )


class Dashboard:
    """Figures for one node's dashboard; one read model, safe to share between threads."""

    def __init__(self, node: AppNode, *, snapshot_every: int = SNAPSHOT_EVERY_TX) -> None:
        """The read model starts from its snapshot (when it checks out) and writes one
        every ``snapshot_every`` transactions it applies (0: never)."""
        self._node = node
        self._model = CaseReadModel(
            node, snapshots=snapshot_folder(node), snapshot_every=snapshot_every
        )
        self._lock = threading.Lock()
        self._weights = serial_interval()

    @property
    def started_from(self) -> int | None:
        """The block height of the snapshot its read model started from, or None (it
        replayed the chain from the start)."""
        return self._model.started_from

    def figures(
        self, scope: Scope, *, disease: str | None = None, region: str | None = None
    ) -> dict[str, Any]:
        """Every figure the dashboard shows, as plain data (also served as JSON).
        Raises UnknownFilter for a disease or region it does not know or may not show."""
        regions = regions_on_chain(self._node)
        with self._lock:
            self._model.catch_up()
            diseases = self._model.diseases()
            view = choose(
                disease=disease,
                region=region,
                reported=diseases,
                scope_label=scope.label,
                scope_prefixes=scope.prefixes,
                regions=regions,
            )
            chosen, prefixes = view.disease, view.prefixes
            rows = (
                self._model.daily(disease=chosen, region=prefixes, org=scope.org) if chosen else []
            )
            alerts = [
                a
                for a in self._model.alerts(disease=chosen)
                if prefixes is None or a["region"].startswith(prefixes)
            ]
            tests = (
                self._model.positivity(disease=chosen, region=prefixes, org=scope.org)
                if chosen
                else []
            )
            first_doses = self._model.first_doses(disease=chosen) if chosen else []
            delays = (
                self._model.delays(
                    since=day_of_ms(self._node.clock()) - DELAY_HISTORY_DAYS,
                    disease=chosen,
                    region=prefixes,
                    org=scope.org,
                )
                if chosen
                else {}
            )
            supply_doses = self._model.supply_doses()
            cursor = self._model.last_event
        today = day_of_ms(self._node.clock())
        by_day: dict[int, int] = {}
        by_place: dict[str, int] = {}
        by_city: dict[str, int] = {}
        for _, place, day, count in rows:
            by_day[day] = by_day.get(day, 0) + count
            by_place[place] = by_place.get(place, 0) + count
            city = city_of(place, regions)
            by_city[city] = by_city.get(city, 0) + count
        first = min(by_day, default=today)
        counts = [by_day.get(day, 0) for day in range(first, today + 1)]
        cumulative = []
        running = 0
        for count in counts:
            running += count
            cumulative.append(running)
        rt = cori_rt(counts, self._weights, first_day=first)
        doubling = doubling_time(counts)
        corrected = self._nowcast(counts, delays, first, today)
        return {
            "scope": scope.label,
            "scope_kind": "organisation" if scope.org is not None else "region",
            "disease": chosen,
            "diseases": diseases,
            "region": None if prefixes is None else ",".join(prefixes),
            "region_filter": view.region,
            "subtitle": view.subtitle,
            "positivity": positivity(tests, first, today),
            "positivity_rule": POSITIVITY_RULE,
            # Coverage is a region's figure: a hospital's own doses over a city's
            # population would mislead, so a hospital's dashboard shows none.
            "coverage": []
            if scope.org is not None
            else self._coverage(first_doses, supply_doses, prefixes, regions),
            "today": today,
            "cursor": cursor,
            "total": running,
            "curve": [
                {"day": first + i, "date": iso(first + i), "count": n, "cumulative": c}
                for i, (n, c) in enumerate(zip(counts, cumulative, strict=True))
            ],
            "places": [
                _place(code, n, regions) for code, n in sorted(by_place.items(), key=_biggest)
            ],
            "cities": [
                _place(code, n, regions) for code, n in sorted(by_city.items(), key=_biggest)
            ],
            "map": _map(by_place, prefixes, regions),
            "rt": _rt_points(rt),
            "nowcast": corrected,
            "rt_explained": RT_EXPLAINED,
            "rt_method": (
                f"Cori et al. (2013): sliding {RT_WINDOW}-day windows, gamma prior "
                f"(mean {RT_PRIOR_MEAN:g}, sd {RT_PRIOR_SD:g}), 95% credible interval; serial "
                f"interval gamma with mean {SERIAL_INTERVAL_MEAN:g} d, sd "
                f"{SERIAL_INTERVAL_SD:g} d (influenza)"
            ),
            "doubling": None
            if doubling is None
            else {
                "days": None if doubling.days is None else round(doubling.days, 2),
                "lower": None if doubling.lower is None else round(doubling.lower, 2),
                "upper": None if doubling.upper is None else round(doubling.upper, 2),
                "growth_rate": round(doubling.growth_rate, 4),
            },
            "alerts": [
                {**a, "date": iso(a["day"]), "name": _name(a["region"], regions)} for a in alerts
            ],
        }

    def _nowcast(
        self, counts: list[int], delays: Mapping[tuple[int, int], int], first: int, today: int
    ) -> dict[str, Any] | None:
        """The recent days corrected for cases not yet diagnosed, and Rt over them; None
        when the delay distribution cannot be estimated from the scope's cases."""
        cdf = delay_distribution(delays, today=today)
        if cdf is None:
            return None
        result = nowcast(counts, cdf, first_day=first, today=today)
        # Rt where the nowcast changes it: windows ending on a corrected day (earlier
        # windows equal the plain estimate), not on a day too incomplete to correct.
        rt = [
            e
            for e in cori_rt(result.counts, self._weights, first_day=first)
            if result.corrected[e.day - first]
        ]
        recent = range(max(0, len(counts) - NOWCAST_MAX_DELAY), len(counts))
        return {
            "method": (
                "onset-to-diagnosis delay distribution over the last "
                f"{DELAY_HISTORY_DAYS} days' onsets, estimated for right truncation by the "
                "reverse-time hazard (Lagakos et al. 1988); each recent day's count divided by "
                f"its expected completeness (days under {NOWCAST_MIN_COMPLETENESS:.0%} "
                "complete are not corrected)"
            ),
            "delay_cdf": [round(f, 4) for f in cdf],
            "days": [
                {
                    "day": first + i,
                    "date": iso(first + i),
                    "observed": counts[i],
                    "expected": result.counts[i],
                    "completeness": round(result.completeness[i], 4),
                    "corrected": result.corrected[i],
                }
                for i in recent
            ],
            "rt": _rt_points(rt),
        }

    def _coverage(
        self,
        first_doses: list[tuple[str, str, int]],
        supply_doses: list[tuple[str, str, int]],
        prefixes: tuple[str, ...] | None,
        regions: Mapping[str, Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        """Per city in scope: population (with its source), people with a first dose
        recorded against the chosen disease, coverage, and doses linked from supply."""
        populations = state_prefix(self._node, "population/")
        orgs = state_prefix(self._node, "org/")
        people: dict[str, int] = {}
        for _, place, n in first_doses:
            city = city_of(place, regions)
            people[city] = people.get(city, 0) + n
        linked: dict[str, int] = {}
        for org, _, n in supply_doses:
            record = orgs.get(f"org/{org}")
            if record is not None:
                city = city_of(str(record["region"]), regions)
                linked[city] = linked.get(city, 0) + n
        population: dict[str, int] = {}
        sources: dict[str, str] = {}
        for key, record in populations.items():
            code = key.split("/", 1)[1]
            city = city_of(code, regions)
            if code == city or f"population/{city}" not in populations:
                population[city] = population.get(city, 0) + int(record["population"])
                sources[city] = f"{record['source']} ({record['year']})"
        rows = []
        for city in sorted(set(population) | set(people) | set(linked)):
            if prefixes is not None and not city.startswith(prefixes):
                continue
            pop = population.get(city)
            vaccinated = people.get(city, 0)
            rows.append(
                {
                    "code": city,
                    "name": _name(city, regions),
                    "population": pop,
                    "source": sources.get(city),
                    "vaccinated": vaccinated,
                    "coverage_pct": None if not pop else round(100 * vaccinated / pop, 3),
                    "linked_supply_doses": linked.get(city, 0),
                }
            )
        return rows

    def city_counts(self) -> dict[tuple[str, str], int]:
        """Cases (rejected excluded) per (city, disease) over the whole chain: the true
        counts behind the public release, never served as they are."""
        regions = regions_on_chain(self._node)
        with self._lock:
            self._model.catch_up()
            rows = self._model.daily()
        counts: dict[tuple[str, str], int] = {}
        for disease, place, _, n in rows:
            key = (city_of(place, regions), disease)
            counts[key] = counts.get(key, 0) + n
        return counts

    def line_list(self, scope: Scope) -> list[dict[str, Any]]:
        """The cases the viewer may see, one row each, with ISO dates."""
        with self._lock:
            self._model.catch_up()
            rows = self._model.line_list(region=scope.prefixes, org=scope.org)
        return [{**r, "onset": iso(r["onset"]), "diagnosis": iso(r["diagnosis"])} for r in rows]

    def status_counts(self, scope: Scope) -> dict[str, int]:
        """Cases in the viewer's scope by review status, rejected included."""
        with self._lock:
            self._model.catch_up()
            return self._model.statuses(region=scope.prefixes, org=scope.org)

    def aggregates(self, scope: Scope) -> list[dict[str, Any]]:
        """Exact counts per region, disease and onset date in the viewer's scope."""
        with self._lock:
            self._model.catch_up()
            rows = self._model.daily(region=scope.prefixes, org=scope.org)
        return [{"disease": d, "region": r, "onset": iso(day), "count": n} for d, r, day, n in rows]

    def close(self) -> None:
        """Close the read model."""
        with self._lock:
            self._model.close()


def _rt_points(estimates: list[RtEstimate]) -> list[dict[str, Any]]:
    return [
        {
            "day": e.day,
            "date": iso(e.day),
            "mean": round(e.mean, 3),
            "lower": round(e.lower, 3),
            "upper": round(e.upper, 3),
        }
        for e in estimates
    ]


def _biggest(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])


def _name(code: str, regions: Mapping[str, Mapping[str, Any]]) -> str:
    region = regions.get(code)
    return code if region is None else str(region["name"])


def _place(code: str, count: int, regions: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A region's count with its centroid (its parent's when the table has none)."""
    region: Mapping[str, Any] | None = regions.get(code)
    located = region
    while located is not None and "lat_e6" not in located:
        located = regions.get(located.get("parent") or "")
    return {
        "code": code,
        "name": _name(code, regions),
        "count": count,
        "lat_e6": None if located is None else located["lat_e6"],
        "lon_e6": None if located is None else located["lon_e6"],
    }


def _map(
    by_place: Mapping[str, int],
    prefixes: tuple[str, ...] | None,
    regions: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Cases per district in view, zeros included (a city without districts counts as
    one): the choropleth's values. An organisation's view covers the cities its cases
    are in."""
    if prefixes is None:
        prefixes = tuple(sorted({code[:4] for code in by_place}))
    parents = {str(r.get("parent")) for r in regions.values()}
    leaves = [
        code
        for code, r in regions.items()
        if r["level"] != "province" and code not in parents and code.startswith(prefixes)
    ]
    return [
        {"code": code, "name": _name(code, regions), "count": by_place.get(code, 0)}
        for code in sorted(set(leaves) | {c for c in by_place if c.startswith(prefixes)})
    ]
