"""``healthledger supply bench``: figures for the supply application (printed, never asserted).

Three measurements on a temporary consortium of the demo organisations:

* ingest: EPCIS documents (commissioning events, one unit each) validated, hashed,
  reduced and committed through :class:`CaptureService` in the embedded node, from a
  few client threads; events committed per second;
* trace: one unit's full history (its on-chain trail through aggregation, and its
  events by EPC from the read model) among ``store_events`` stored events. The
  read model is filled in bulk with synthetic events beyond those committed, so a
  large store is reached in seconds; the issue's goal is 10^6 (``--store-events``);
* verify: ``GET /api/v1/supply/verify`` through the ASGI app in process (no socket).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.testclient import TestClient

from healthledger.apps.supply.contract import SupplyContract
from healthledger.apps.supply.digital_link import check_digit
from healthledger.apps.supply.event_store import EventQuery, EventStore
from healthledger.apps.supply.routes import build_router
from healthledger.apps.supply.service import CaptureService
from healthledger.apps.supply.verification import PublicLedger
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.seam import AppNode, scratch_ledger

MAKER = "lingnan-bio/qa-liu"
MAKER_OPS = "lingnan-bio/ops-he"
CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]
_COMPANY = "6951234"


def _with_check(digits: str) -> str:
    return digits + str(check_digit(digits))


GTIN = _with_check("0" + _COMPANY + "00001")
PLANT = _with_check(_COMPANY + "00001")


@dataclass(frozen=True)
class SupplyFigures:
    """What ``supply bench`` measured."""

    events: int
    """EPCIS events committed in the ingest run."""
    events_per_document: int
    ingest_s: float
    ingest_events_per_s: float
    store_events: int
    """Events in the read model when the trace was timed."""
    trace_samples: int
    trace_p50_ms: float
    trace_p99_ms: float
    verify_samples: int
    verify_p50_ms: float
    verify_p99_ms: float

    def to_json(self) -> dict[str, Any]:
        """The figures as ``--json`` prints them."""
        return {"benchmark": "supply", **asdict(self)}


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _commission(serials: list[str], when: str) -> dict[str, Any]:
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": when,
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "eventTime": when,
                    "eventTimeZoneOffset": "+08:00",
                    "epcList": [f"https://id.gs1.org/01/{GTIN}/21/{s}"],
                    "action": "ADD",
                    "bizStep": "commissioning",
                    "readPoint": {"id": f"https://id.gs1.org/414/{PLANT}"},
                    "ilmd": {"cbvmda:lotNumber": "B1", "cbvmda:itemExpirationDate": "2099-12-31"},
                }
                for s in serials
            ]
        },
    }


def _timed(call: Callable[[], object], samples: int) -> list[float]:
    found = []
    for _ in range(samples):
        start = time.perf_counter()
        call()
        found.append((time.perf_counter() - start) * 1000)
    return found


def supply_benchmark(
    *,
    events: int = 2_000,
    per_document: int = 50,
    clients: int = 4,
    store_events: int = 100_000,
    samples: int = 500,
    status: Callable[[str], None] = lambda _: None,
) -> SupplyFigures:
    """Run the three measurements on a temporary node; nothing is kept."""
    with (
        tempfile.TemporaryDirectory(prefix="healthledger-supply-bench-") as tmp,
        scratch_ledger(
            Path(tmp) / "node",
            name="supply",
            namespaces=(SupplyContract.name,),
            contracts=(*SYSTEM_CONTRACTS, SupplyContract),
            plans=DEMO_ORGS,
        ) as node,
    ):
        return _run(node, events, per_document, clients, store_events, samples, status)


def _run(
    node: AppNode,
    events: int,
    per_document: int,
    clients: int,
    store_events: int,
    samples: int,
    status: Callable[[str], None],
) -> SupplyFigures:
    node.invoke(
        MAKER,
        "supply",
        "register_product",
        {
            "gtin": GTIN,
            "name": "Bench vaccine",
            "dosage_form": "injection",
            "temp_min_dc": 20,
            "temp_max_dc": 80,
            "shelf_life_days": 365,
        },
    )
    node.invoke(MAKER_OPS, "supply", "register_location", {"gln": PLANT, "name": "Plant"})
    store = EventStore.of(node)
    service = CaptureService(node, events=store)
    documents = [
        _commission(
            [f"S{d:05d}{i:04d}" for i in range(per_document)],
            f"2026-01-05T09:{d // 60 % 60:02d}:{d % 60:02d}.000+08:00",
        )
        for d in range(max(1, events // per_document))
    ]
    status(f"ingest: {len(documents) * per_document} events in {len(documents)} documents")
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(lambda doc: service.capture(MAKER_OPS, doc), documents))
    ingest_s = time.perf_counter() - start
    committed = len(documents) * per_document

    status(f"trace: filling the read model to {store_events} events")
    _fill(store, store_events)
    ledger = PublicLedger(node)
    target = f"01/{GTIN}/21/S00000{per_document // 2:04d}"

    def trace() -> tuple[int, int]:
        trail = ledger.trail(target)
        return len(trail), len(store.query(EventQuery(epc=f"https://id.gs1.org/{target}")))

    if trace() != (1, 1):
        raise RuntimeError(f"the traced unit {target} has no history: the benchmark is broken")

    trace_ms = _timed(trace, samples)

    status("verify: the public endpoint")
    api = FastAPI()
    api.include_router(build_router(node), prefix="/api/v1/supply")
    uri = f"https://id.gs1.org/01/{GTIN}/10/B1/21/S00000{per_document // 2:04d}?17=991231"
    with TestClient(api) as client:
        path = f"/api/v1/supply/verify?uri={quote(uri, safe='')}"
        if client.get(path).json().get("status") != "genuine":
            raise RuntimeError("the verified pack is not genuine: the benchmark is broken")
        verify_ms = _timed(lambda: client.get(path), samples)
    total = store.count()
    store.close()
    return SupplyFigures(
        events=committed,
        events_per_document=per_document,
        ingest_s=round(ingest_s, 3),
        ingest_events_per_s=round(committed / ingest_s, 1),
        store_events=total,
        trace_samples=samples,
        trace_p50_ms=round(statistics.median(trace_ms), 3),
        trace_p99_ms=round(_percentile(trace_ms, 0.99), 3),
        verify_samples=samples,
        verify_p50_ms=round(statistics.median(verify_ms), 3),
        verify_p99_ms=round(_percentile(verify_ms, 0.99), 3),
    )


def _fill(store: EventStore, target: int) -> None:
    """Synthetic observation events of other units, in bulk, up to ``target`` stored."""
    missing = target - store.count()
    chunk = 10_000
    made = 0
    while made < missing:
        size = min(chunk, missing - made)
        batch = []
        for i in range(made, made + size):
            serial = f"F{i:09d}"
            event = {
                "type": "ObjectEvent",
                "eventTime": "2026-01-06T09:00:00.000+08:00",
                "eventTimeZoneOffset": "+08:00",
                "epcList": [f"https://id.gs1.org/01/{GTIN}/21/{serial}"],
                "action": "OBSERVE",
                "bizStep": "inspecting",
                "readPoint": {"id": f"https://id.gs1.org/414/{PLANT}"},
            }
            batch.append((f"ni:///sha-256;{i:064x}?ver=CBV2.0", event))
        store.add("synthetic", CONTEXT, batch)
        made += size
