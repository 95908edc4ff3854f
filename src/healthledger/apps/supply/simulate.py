"""Demo traffic for the supply application: EPCIS documents from maker to patient.

Lingnan Biologics commissions vaccine packs, packs them in cases and ships them
through Pearl River Logistics' refrigerated truck to Yuexiu pharmacy and to a
hospital; packs are dispensed and administered. Now and then: a temperature
excursion (the case is quarantined), a recall, and a counterfeit pack offered
for sale (an unknown serial) or a pack sold twice.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from healthledger.apps.supply.digital_link import check_digit
from healthledger.apps.supply.event_hash import event_hashes
from healthledger.apps.supply.event_store import EventStore
from healthledger.apps.supply.service import CONTRACT, capture_step
from healthledger.contracts.errors import ContractError
from healthledger.node.embedded import EmbeddedNode

MAKER_QA = "lingnan-bio/qa-liu"
MAKER = "lingnan-bio/ops-he"
CARRIER = "pearl-logistics/driver-ma"
DISTRIBUTOR = "pearl-logistics/ops-guo"
PHARMACY = "yuexiu-pharmacy/pharm-xu"
HOSPITAL = "gz-first-hospital/nurse-lin"
REGULATOR = "gd-mpa/inspector-feng"
COMPANY = "6951234"
"""The maker's GS1 company prefix (demo)."""


def _gtin(item: str) -> str:
    body = "0" + COMPANY + item
    return body + str(check_digit(body))


def _gln(ref: str) -> str:
    body = COMPANY + ref
    return body + str(check_digit(body))


PRODUCTS = (
    (_gtin("00001"), "Influenza vaccine (split virion) 0.5 ml", "injection", 20, 80, 365),
    (_gtin("00002"), "Hepatitis B vaccine 10 ug", "injection", 20, 80, 730),
)
PLANT, WAREHOUSE, PHARMACY_GLN, HOSPITAL_GLN = (
    _gln(r) for r in ("00001", "00002", "00003", "00004")
)
LOCATIONS = (
    (MAKER, PLANT, "Lingnan Biologics plant, Guangzhou"),
    (DISTRIBUTOR, WAREHOUSE, "Pearl River cold store"),
    (PHARMACY, PHARMACY_GLN, "Yuexiu Community Pharmacy"),
    (HOSPITAL, HOSPITAL_GLN, "Guangzhou First People's Hospital vaccination clinic"),
)


def _sgln(gln: str) -> str:
    return f"urn:epc:id:sgln:{gln[:7]}.{gln[7:12]}.0"


def _sgtin(gtin: str, serial: str) -> str:
    return f"urn:epc:id:sgtin:{gtin[1:8]}.{gtin[0]}{gtin[8:13]}.{serial}"


def _sscc(serial: int) -> str:
    return f"urn:epc:id:sscc:{COMPANY}.0{serial:09d}"


class _Run:
    def __init__(self, node: EmbeddedNode, rng: random.Random) -> None:
        self.node = node
        self.rng = rng
        self.counts: Counter[str] = Counter()
        self.clock = node.clock()
        self.events = EventStore.of(node)

    def when(self) -> str:
        self.clock += self.rng.randint(60_000, 3_600_000)
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=self.clock)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def event(self, biz_step: str, epcs: list[str], where: str, **extra: Any) -> dict[str, Any]:
        return {
            "type": "ObjectEvent",
            "eventTime": self.when(),
            "eventTimeZoneOffset": "+08:00",
            "epcList": epcs,
            "action": "ADD" if biz_step == "commissioning" else "OBSERVE",
            "bizStep": biz_step,
            "readPoint": {"id": _sgln(where)},
            **extra,
        }

    def aggregation(
        self, action: str, parent: str, children: list[str], where: str
    ) -> dict[str, Any]:
        return {
            "type": "AggregationEvent",
            "eventTime": self.when(),
            "eventTimeZoneOffset": "+08:00",
            "parentID": parent,
            "childEPCs": children,
            "action": action,
            "bizStep": "packing" if action == "ADD" else "unpacking",
            "readPoint": {"id": _sgln(where)},
        }

    def capture(self, identity: str, *events: dict[str, Any]) -> Any:
        document = {
            "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": self.when(),
            "epcisBody": {"eventList": list(events)},
        }
        hashes = event_hashes(json.dumps(document), fmt="json")
        steps = [
            capture_step(e, h.hash, i) for i, (e, h) in enumerate(zip(events, hashes, strict=True))
        ]
        try:
            receipt, result = self.node.invoke(identity, CONTRACT, "capture", {"steps": steps})
        except ContractError:
            self.counts["refused"] += 1
            return None
        self.events.add(
            receipt.tx_id,
            document["@context"],
            [(step["event_hash"], e) for step, e in zip(steps, events, strict=True)],
        )
        self.counts["events"] += len(events)
        self.counts["alerts"] += int(result["alerts"])
        return result


def _master_data(node: EmbeddedNode) -> int:
    made = 0
    for gtin, name, form, low, high, days in PRODUCTS:
        if node.peer.store.get_state(CONTRACT, f"product/{gtin}") is None:
            node.invoke(
                MAKER_QA,
                CONTRACT,
                "register_product",
                {
                    "gtin": gtin,
                    "name": name,
                    "dosage_form": form,
                    "temp_min_dc": low,
                    "temp_max_dc": high,
                    "shelf_life_days": days,
                },
            )
            made += 1
    for identity, gln, name in LOCATIONS:
        if node.peer.store.get_state(CONTRACT, f"location/{gln}") is None:
            node.invoke(identity, CONTRACT, "register_location", {"gln": gln, "name": name})
            made += 1
    return made


def simulate(node: EmbeddedNode, rng: random.Random, *, cases: int = 3) -> Mapping[str, int]:
    """Run the demo's supply traffic through ``node``; return what it did."""
    run = _Run(node, rng)
    try:
        return _traffic(run, node, rng, cases)
    finally:
        run.events.close()


def _traffic(run: _Run, node: EmbeddedNode, rng: random.Random, cases: int) -> dict[str, int]:
    run.counts["master_data"] = _master_data(node)
    batch = hashlib.sha256(f"{run.clock}:{rng.random()}".encode()).hexdigest()[:6].upper()
    for case_no in range(cases):
        gtin = PRODUCTS[case_no % len(PRODUCTS)][0]
        lot = f"L{batch}{case_no}"
        serials = [f"{batch}{case_no}{i:03d}" for i in range(rng.randint(4, 8))]
        packs = [_sgtin(gtin, s) for s in serials]
        sscc_uri = _sscc(int(batch, 16) % 10_000_000 * 10 + case_no)
        commission = run.event(
            "commissioning",
            packs,
            PLANT,
            ilmd={"cbvmda:lotNumber": lot, "cbvmda:itemExpirationDate": "2099-12-31"},
        )
        run.capture(MAKER, commission, run.aggregation("ADD", sscc_uri, packs, PLANT))
        site, site_gln = (PHARMACY, PHARMACY_GLN) if case_no % 2 == 0 else (HOSPITAL, HOSPITAL_GLN)
        ship = run.event(
            "shipping",
            [sscc_uri],
            PLANT,
            destinationList=[{"type": "location", "destination": _sgln(site_gln)}],
        )
        run.capture(MAKER, ship)
        excursion = rng.random() < 0.34 or case_no == 1
        readings = [rng.uniform(3.0, 7.5) for _ in range(3)] + ([11.8] if excursion else [])
        transport = run.event(
            "transporting",
            [sscc_uri],
            WAREHOUSE,
            sensorElementList=[
                {
                    "sensorReport": [
                        {"type": "Temperature", "value": round(v, 1), "uom": "CEL"}
                        for v in readings
                    ]
                }
            ],
        )
        run.capture(CARRIER, transport)
        run.counts["excursions"] += int(excursion)
        run.capture(site, run.event("receiving", [sscc_uri], site_gln))
        run.capture(site, run.aggregation("DELETE", sscc_uri, [], site_gln))
        for pack in packs[: len(packs) // 2]:
            run.capture(site, run.event("dispensing", [pack], site_gln))
        if case_no == 0:
            run.capture(site, run.event("dispensing", [packs[0]], site_gln))  # sold twice
            fake = _sgtin(gtin, f"FAKE{rng.randint(1000, 9999)}")
            run.capture(site, run.event("dispensing", [fake], site_gln))  # counterfeit
            run.counts["counterfeit_attempts"] += 2
    if rng.random() < 0.5 or cases >= 3:
        gtin = PRODUCTS[0][0]
        node.invoke(
            REGULATOR,
            CONTRACT,
            "recall",
            {"gtin": gtin, "lot": f"L{batch}0", "reason": "potency below specification"},
        )
        run.counts["recalls"] += 1
    return dict(run.counts)
