"""The monitoring dashboard's figures, from the read model and the region table on
chain, limited to what the viewer may see (ARCHITECTURE.md section 6; issue 5 item 5):
a hospital its own reports, a CDC or commission its region."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from healthledger.apps.epidemic.dates import day_of_ms, iso
from healthledger.apps.epidemic.readmodel import CaseReadModel
from healthledger.apps.epidemic.surveillance import (
    RT_PRIOR_MEAN,
    RT_PRIOR_SD,
    RT_WINDOW,
    SERIAL_INTERVAL_MEAN,
    SERIAL_INTERVAL_SD,
    cori_rt,
    doubling_time,
    serial_interval,
)
from healthledger.apps.epidemic.warning import city_of
from healthledger.node.embedded import EmbeddedNode


@dataclass(frozen=True)
class Scope:
    """What a viewer may see: cases in a region (code prefix) or of one organisation."""

    label: str
    region_prefix: str | None = None
    org: str | None = None

    def covers(self, region: str) -> bool:
        """True if an aggregate over ``region`` lies in this scope (an org sees its own
        reports wherever they are)."""
        return self.region_prefix is None or region.startswith(self.region_prefix)


def region_prefix(code: str) -> str:
    """The GB/T 2260 prefix of a region's subregions: ``440000`` -> ``44``."""
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


def regions_on_chain(node: EmbeddedNode) -> dict[str, dict[str, Any]]:
    """The region table the commission wrote, by code."""
    return {
        item.value["code"]: item.value
        for _, item in node.peer.store.range_state("epidemic", "region/", "region0", 100_000)
    }


def scope_of(node: EmbeddedNode, identity: str) -> Scope | None:
    """The viewer's scope from their organisation's record on chain; None for those
    who may see protected aggregates only."""
    org = identity.split("/", 1)[0]
    item = node.peer.store.get_state("epidemic", f"org/{org}")
    if item is None:
        return None
    record = item.value
    if record["kind"] == "hospital":
        return Scope(label=f"cases reported by {org}", org=org)
    return Scope(label=f"region {record['region']}", region_prefix=region_prefix(record["region"]))


class Dashboard:
    """Figures for one node's dashboard; one read model, safe to share between threads."""

    def __init__(self, node: EmbeddedNode) -> None:
        self._node = node
        self._model = CaseReadModel(node.peer.events)
        self._lock = threading.Lock()
        self._weights = serial_interval()

    def figures(
        self, scope: Scope, *, disease: str | None = None, region: str | None = None
    ) -> dict[str, Any]:
        """Every figure the dashboard shows, as plain data (also served as JSON)."""
        regions = regions_on_chain(self._node)
        prefix = scope.region_prefix
        if region and scope.covers(region):
            prefix = region_prefix(region)
        with self._lock:
            self._model.catch_up()
            diseases = self._model.diseases()
            chosen = disease if disease in diseases else (diseases[0] if diseases else None)
            rows = self._model.daily(disease=chosen, region=prefix, org=scope.org) if chosen else []
            alerts = [
                a
                for a in self._model.alerts(disease=chosen)
                if prefix is None or a["region"].startswith(prefix)
            ]
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
        return {
            "scope": scope.label,
            "disease": chosen,
            "diseases": diseases,
            "region": prefix,
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
            "rt": [
                {
                    "day": e.day,
                    "date": iso(e.day),
                    "mean": round(e.mean, 3),
                    "lower": round(e.lower, 3),
                    "upper": round(e.upper, 3),
                }
                for e in rt
            ],
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
            rows = self._model.line_list(region=scope.region_prefix, org=scope.org)
        return [{**r, "onset": iso(r["onset"]), "diagnosis": iso(r["diagnosis"])} for r in rows]

    def aggregates(self, scope: Scope) -> list[dict[str, Any]]:
        """Exact counts per region, disease and onset date in the viewer's scope."""
        with self._lock:
            self._model.catch_up()
            rows = self._model.daily(region=scope.region_prefix, org=scope.org)
        return [{"disease": d, "region": r, "onset": iso(day), "count": n} for d, r, day, n in rows]

    def close(self) -> None:
        """Close the read model."""
        with self._lock:
            self._model.close()


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
