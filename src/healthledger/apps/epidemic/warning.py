"""The early-warning scan: EARS C1-C3 on each city's daily cases per disease, and the
CDC recording each new alert on chain (``epidemic.raise_alert``).

The scan reads the read model (what every peer committed); the alert is a signed,
endorsed transaction, so every organisation sees the same alerts at the same height.
On a live server :class:`LiveWarning` runs the scan each time new blocks commit, so
an alert is recorded (once per disease, region and day: the contract refuses a second)
within moments of the report that tipped it, and the dashboard shows it at once
(its page follows the event stream).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from healthledger.apps.epidemic.batch import Call, commit_all
from healthledger.apps.epidemic.dates import day_of_ms
from healthledger.apps.epidemic.readmodel import CaseReadModel, snapshot_folder
from healthledger.apps.epidemic.surveillance import ears
from healthledger.node.seam import AppNode

LOOKBACK_DAYS = 14
"""Only days this recent are scanned for new alerts."""
POLL_S = 1.0
"""How long the live scan waits for a block before checking whether to stop."""
LOG = logging.getLogger(__name__)


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
    node: AppNode, model: CaseReadModel, identity: str, *, today: int
) -> list[dict[str, Any]]:
    """Scan and have ``identity`` (a CDC epidemiologist) record the alerts not yet on
    chain; the alerts recorded."""
    model.catch_up()
    regions = {value["code"]: value for _, value in node.range("region/", limit=100_000)}
    known = {key for key, _ in node.range("alert/", limit=100_000)}
    fresh = [
        a
        for a in scan(model, regions, today=today)
        if f"alert/{a['disease']}/{a['region']}/{a['day']}" not in known
    ]
    results = commit_all(node, [Call(identity, "raise_alert", a) for a in fresh])
    model.catch_up()
    return [r for r in results if r is not None]


class LiveWarning:
    """The early-warning scan on a live server: a thread that follows the chain and,
    whenever new blocks commit, scans and has ``identity`` (a CDC epidemiologist whose
    key this node holds) record the new alerts. Start and stop are idempotent."""

    def __init__(self, node: AppNode, identity: str) -> None:
        self._node = node
        self._identity = identity
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.recorded = 0
        """Alerts recorded since start."""
        self.scans = 0

    def start(self) -> None:
        """Start following the chain on a thread of its own (once); for tests and
        callers without a worker supervisor."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self.run, args=(self._stop,), name="epidemic-live-warning", daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread ``start`` began, waiting for a scan under way."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)

    def run(self, stop: threading.Event) -> None:
        """Scan each time new blocks commit, until ``stop`` is set (the worker's body)."""
        # Starts from the dashboard's snapshot, which it does not write.
        model = CaseReadModel(self._node, snapshots=snapshot_folder(self._node))
        try:
            seen = -1
            while not stop.is_set():
                height = self._node.height()
                if height == seen:
                    self._node.wait_for_height(height, POLL_S)
                    continue
                seen = height
                self.scan_once(model)
        finally:
            model.close()

    def scan_once(self, model: CaseReadModel) -> int:
        """One scan now; how many alerts were recorded. A failure is logged in one
        line and the next block brings the next scan."""
        self.scans += 1
        try:
            today = day_of_ms(self._node.clock())
            recorded = len(record_alerts(self._node, model, self._identity, today=today))
        except Exception as exc:  # noqa: BLE001 - a live scan must not end the server
            LOG.warning("early-warning scan failed: %s: %s", type(exc).__name__, exc)
            return 0
        self.recorded += recorded
        return recorded
