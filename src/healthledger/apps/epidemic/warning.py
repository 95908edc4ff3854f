"""The early-warning scan: EARS C1-C3 on each city's daily cases per disease, and the
CDC recording each new alert on chain (``epidemic.raise_alert``).

The scan reads the read model (what every peer committed); the alert is a signed,
endorsed transaction, so every organisation sees the same alerts at the same height.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from healthledger.apps.epidemic.batch import Call, commit_all
from healthledger.apps.epidemic.readmodel import CaseReadModel
from healthledger.apps.epidemic.surveillance import ears
from healthledger.node.embedded import EmbeddedNode

LOOKBACK_DAYS = 14
"""Only days this recent are scanned for new alerts."""


def city_of(code: str, regions: Mapping[str, Mapping[str, Any]]) -> str:
    """The city-level region of ``code`` (itself for a city, or a district directly
    under a province)."""
    region = regions.get(code)
    if region is None or region["level"] != "district":
        return code
    parent = regions.get(region["parent"] or "")
    return code if parent is None or parent["level"] == "province" else str(parent["code"])


def scan(
    model: CaseReadModel,
    regions: Mapping[str, Mapping[str, Any]],
    *,
    today: int,
    lookback: int = LOOKBACK_DAYS,
) -> list[dict[str, Any]]:
    """raise_alert arguments for every EARS flag per disease and city in the last
    ``lookback`` days up to ``today``."""
    series: dict[tuple[str, str], dict[int, int]] = {}
    for disease, region, day, count in model.daily():
        days = series.setdefault((disease, city_of(region, regions)), {})
        days[day] = days.get(day, 0) + count
    alerts = []
    for (disease, city), days in sorted(series.items()):
        first = min(days)
        counts = [days.get(day, 0) for day in range(first, today + 1)]
        for flag in ears(counts, first_day=first):
            if flag.day > today - lookback:
                alerts.append(
                    {
                        "disease": disease,
                        "region": city,
                        "day": flag.day,
                        "methods": list(flag.methods),
                        "count": flag.count,
                        "baseline_milli": round(flag.baseline * 1000),
                    }
                )
    return alerts


def record_alerts(
    node: EmbeddedNode, model: CaseReadModel, identity: str, *, today: int
) -> list[dict[str, Any]]:
    """Scan and have ``identity`` (a CDC epidemiologist) record the alerts not yet on
    chain; the alerts recorded."""
    model.catch_up()
    regions = {
        item.value["code"]: item.value
        for _, item in node.peer.store.range_state("epidemic", "region/", "region0", 100_000)
    }
    known = {key for key, _ in node.peer.store.range_state("epidemic", "alert/", "alert0", 100_000)}
    fresh = [
        a
        for a in scan(model, regions, today=today)
        if f"alert/{a['disease']}/{a['region']}/{a['day']}" not in known
    ]
    results = commit_all(node, [Call(identity, "raise_alert", a) for a in fresh])
    model.catch_up()
    return [r for r in results if r is not None]
