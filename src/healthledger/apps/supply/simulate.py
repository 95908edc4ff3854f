"""Demo traffic for the supply application: EPCIS documents from maker to patient.

Lingnan Biologics commissions vaccine packs, packs them in cases and ships them
through Pearl River Logistics' refrigerated truck to Yuexiu pharmacy and to a
hospital; packs are dispensed and administered. Now and then: a temperature
excursion (the case is quarantined), a recall, and a counterfeit pack offered
for sale (an unknown serial) or a pack sold twice.

:func:`simulate` writes the demo's history at start; :func:`live_step` then keeps a
few cases moving while the console is served, one step of each at a time.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from healthledger.apps.supply.aggregation import anchor_key
from healthledger.apps.supply.digital_link import check_digit
from healthledger.apps.supply.event_hash import event_hashes
from healthledger.apps.supply.event_store import EventStore
from healthledger.apps.supply.service import CONTRACT, capture_step
from healthledger.apps.supply.verification import PublicLedger
from healthledger.contracts.errors import ContractError
from healthledger.node.seam import AppNode

MAKER_QA = "lingnan-bio/qa-liu"
MAKER = "lingnan-bio/ops-he"
CARRIER = "pearl-logistics/driver-ma"
DISTRIBUTOR = "pearl-logistics/ops-guo"
PHARMACY = "yuexiu-pharmacy/pharm-xu"
HOSPITAL = "gz-first-hospital/nurse-lin"
REGULATOR = "gd-mpa/inspector-feng"
ACTORS = (MAKER_QA, MAKER, DISTRIBUTOR, CARRIER, PHARMACY, HOSPITAL, REGULATOR)
"""Every identity the simulator acts as."""
COMPANY = "6951234"
"""The maker's GS1 company prefix (demo); each holder of places has its own."""
COMPANIES = {"lingnan-bio": COMPANY, "pearl-logistics": "6951235"}
COMPANIES |= {"yuexiu-pharmacy": "6951236", "gz-first-hospital": "6951237"}


def _gtin(item: str) -> str:
    body = "0" + COMPANY + item
    return body + str(check_digit(body))


def _gln(identity: str, ref: str) -> str:
    body = COMPANIES[identity.split("/", 1)[0]] + ref
    return body + str(check_digit(body))


PRODUCTS = (
    (_gtin("00001"), "Influenza vaccine (split virion) 0.5 ml", "injection", 20, 80, 365),
    (_gtin("00002"), "Hepatitis B vaccine 10 ug", "injection", 20, 80, 730),
)
PLANT, WAREHOUSE, PHARMACY_GLN, HOSPITAL_GLN = (
    _gln(MAKER, "00001"),
    _gln(DISTRIBUTOR, "00001"),
    _gln(PHARMACY, "00001"),
    _gln(HOSPITAL, "00001"),
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
    def __init__(
        self,
        node: AppNode,
        rng: random.Random,
        *,
        spacing_ms: tuple[int, int] = (60_000, 3_600_000),
    ) -> None:
        self.node = node
        self.rng = rng
        self.counts: Counter[str] = Counter()
        self.clock = node.clock()
        self.spacing_ms = spacing_ms
        """How far apart consecutive events are in event time (simulated history: hours)."""
        self.events = EventStore.of(node)

    def when(self) -> str:
        self.clock += self.rng.randint(*self.spacing_ms)
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


def _master_data(node: AppNode) -> int:
    made = 0
    for gtin, name, form, low, high, days in PRODUCTS:
        if node.get(f"product/{gtin}") is None:
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
        if node.get(f"location/{gln}") is None:
            node.invoke(identity, CONTRACT, "register_location", {"gln": gln, "name": name})
            made += 1
    return made


def simulate(node: AppNode, rng: random.Random, *, cases: int = 3) -> Mapping[str, int]:
    """Run the demo's supply traffic through ``node``; return what it did."""
    run = _Run(node, rng)
    try:
        return _traffic(run, node, rng, cases)
    finally:
        run.events.close()


def _traffic(run: _Run, node: AppNode, rng: random.Random, cases: int) -> dict[str, int]:
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


# --- live traffic --------------------------------------------------------------------

LIVE_CASES = 3
"""Cases kept on their way at once by the live traffic."""
LIVE_WINDOW_MS = 600_000
"""Live cases older than this are left alone (their SSCC serial is their start time)."""
SITES = {PHARMACY_GLN: PHARMACY, HOSPITAL_GLN: HOSPITAL}
_CASE_SERIAL_MS = 100
"""A live case's SSCC serial is its start time in tenths of a second (mod 10^9)."""


def _case_serial(at_ms: int) -> int:
    return at_ms // _CASE_SERIAL_MS % 10**9


def live_step(node: AppNode, rng: random.Random) -> Mapping[str, int]:
    """One round of live traffic: each live case takes its next step (ship with a
    temperature trace, receive and unpack, dispense a pack or two), a new case is
    commissioned when fewer than :data:`LIVE_CASES` are on their way, and now and then
    an excursion, a recall or a counterfeit attempt happens. Everything it needs is
    read back from the ledger, so rounds carry on from the state earlier rounds left."""
    run = _Run(node, rng, spacing_ms=(1, 50))
    try:
        if _master_data(node):
            run.counts["master_data"] += 1
        ledger = PublicLedger(node)
        cases = _live_cases(ledger, node.clock())
        moving = [case for case in cases if _advance(run, ledger, case)]
        if len(moving) < LIVE_CASES:
            _start_case(run)
        _incident(run, ledger, cases)
        return dict(run.counts)
    finally:
        run.events.close()


def _live_cases(ledger: PublicLedger, now_ms: int) -> list[dict[str, Any]]:
    """The live cases started within :data:`LIVE_WINDOW_MS`, oldest first."""
    start = _case_serial(now_ms - LIVE_WINDOW_MS)
    first = f"unit/00/0{COMPANY}{start:09d}"
    if _case_serial(now_ms) < start:  # the serial wrapped round: look from zero
        first = f"unit/00/0{COMPANY}"
    found = ledger.node.range(f"unit/00/0{COMPANY}", start=first, limit=500)
    return [record for _, record in found if _is_live(ledger, record)]


def _is_live(ledger: PublicLedger, case: dict[str, Any]) -> bool:
    lot = _case_lot(ledger, case)
    return lot is not None and lot.startswith("LV")


def _case_packs(ledger: PublicLedger, case: dict[str, Any]) -> list[dict[str, Any]]:
    """The packs first packed into ``case`` (from its packing event's anchor)."""
    for entry in ledger.trail(case["unit"]):
        if entry.get("op") == "pack":
            anchor = ledger.get(anchor_key(entry["event_hash"])) or {}
            packs = [ledger.get(f"unit/{u}") for u in anchor.get("units", [])]
            return [p for p in packs if p is not None]
    return []


def _case_lot(ledger: PublicLedger, case: dict[str, Any]) -> str | None:
    packs = _case_packs(ledger, case)
    return str(packs[0]["lot"]) if packs else None


def _sellable(ledger: PublicLedger, pack: dict[str, Any], site_org: str) -> bool:
    return (
        pack["custodian"] == site_org
        and pack["status"] == "active"
        and not pack["quarantined"]
        and not pack.get("recalled")
        and ledger.get(f"recalled_lot/{pack['gtin']}/{pack['lot']}") is None
    )


def _advance(run: _Run, ledger: PublicLedger, case: dict[str, Any]) -> bool:
    """Take ``case``'s next step; False when it has nothing left to do."""
    sscc = _sscc_uri(case["unit"])
    if case["status"] == "active" and case["custodian"] == "lingnan-bio" and case["children"]:
        site_gln = run.rng.choice(sorted(SITES))
        ship = run.event(
            "shipping",
            [sscc],
            PLANT,
            destinationList=[{"type": "location", "destination": _sgln(site_gln)}],
        )
        run.capture(MAKER, ship)
        excursion = run.rng.random() < 0.15
        readings = [run.rng.uniform(3.0, 7.5) for _ in range(3)] + ([12.4] if excursion else [])
        run.capture(CARRIER, _transport(run, sscc, readings))
        run.counts["excursions"] += int(excursion)
        return True
    if case["status"] == "in_transit":
        site_gln = str(case["destination"])
        site = SITES.get(site_gln)
        if site is None:
            return False
        run.capture(
            site,
            run.event("receiving", [sscc], site_gln),
            run.aggregation("DELETE", sscc, [], site_gln),
        )
        return True
    site = SITES.get(str(case.get("location")))
    if site is None or case["status"] != "active":
        return False
    site_org = site.partition("/")[0]
    packs = _case_packs(ledger, case)
    sellable = [p for p in packs if _sellable(ledger, p, site_org)]
    for pack in sellable[: run.rng.randint(1, 2)]:
        run.capture(site, run.event("dispensing", [_pack_uri(pack)], str(case["location"])))
    held = [p for p in packs if p["custodian"] == site_org and p["status"] == "active"]
    quarantined = [p for p in held if p["quarantined"]]
    if quarantined:
        _decide(run, quarantined[0])
    recalled = [p for p in held if not p["quarantined"] and not _sellable(ledger, p, site_org)]
    if recalled and run.rng.random() < 0.4:
        run.capture(site, run.event("destroying", [_pack_uri(recalled[0])], str(case["location"])))
    return bool(sellable or quarantined or recalled)


def _transport(run: _Run, sscc: str, readings: list[float]) -> dict[str, Any]:
    return run.event(
        "transporting",
        [sscc],
        WAREHOUSE,
        sensorElementList=[
            {
                "sensorReport": [
                    {"type": "Temperature", "value": round(v, 1), "uom": "CEL"} for v in readings
                ]
            }
        ],
    )


def _decide(run: _Run, pack: dict[str, Any]) -> None:
    """The maker's quality decision on a quarantined pack: mostly destroy, sometimes release."""
    decision = "release" if run.rng.random() < 0.3 else "destroy"
    reason = "stability data cover the excursion" if decision == "release" else "excursion"
    try:
        run.node.invoke(
            MAKER_QA,
            CONTRACT,
            "decide_quarantine",
            {"unit": pack["unit"], "decision": decision, "reason": reason},
        )
    except ContractError:
        run.counts["refused"] += 1
        return
    run.counts["quarantine_released" if decision == "release" else "quarantine_destroyed"] += 1


def _start_case(run: _Run) -> None:
    """Commission a few packs of a new live lot and pack them into a new case."""
    now = run.node.clock()
    serial = _case_serial(now)
    gtin = PRODUCTS[serial % len(PRODUCTS)][0]
    lot = f"LV{serial:09d}"
    packs = [_sgtin(gtin, f"V{serial:09d}{i}") for i in range(run.rng.randint(3, 6))]
    commission = run.event(
        "commissioning",
        packs,
        PLANT,
        ilmd={"cbvmda:lotNumber": lot, "cbvmda:itemExpirationDate": "2099-12-31"},
    )
    if run.capture(MAKER, commission, run.aggregation("ADD", _sscc(serial), packs, PLANT)):
        run.counts["cases"] += 1


def _incident(run: _Run, ledger: PublicLedger, cases: list[dict[str, Any]]) -> None:
    """Now and then: a counterfeit pack or a pack sold twice, or a recall of a live lot
    still mostly in the chain."""
    roll = run.rng.random()
    at_site = [c for c in cases if c["status"] == "active" and c.get("location") in SITES]
    if roll < 0.08 or (roll < 0.12 and not at_site):
        gtin = PRODUCTS[0][0]
        fake = _sgtin(gtin, f"FAKE{run.rng.randint(10_000, 99_999)}")
        run.capture(PHARMACY, run.event("dispensing", [fake], PHARMACY_GLN))
        run.counts["counterfeit_attempts"] += 1
    elif roll < 0.12:
        case = run.rng.choice(at_site)
        sold = [p for p in _case_packs(ledger, case) if p["status"] == "dispensed"]
        if sold:
            site = SITES[str(case["location"])]
            run.capture(site, run.event("dispensing", [_pack_uri(sold[0])], str(case["location"])))
            run.counts["counterfeit_attempts"] += 1
    elif roll < 0.16 and (lots := _recallable(ledger, cases)):
        packs = run.rng.choice(lots)
        if ledger.get(f"recalled_lot/{packs[0]['gtin']}/{packs[0]['lot']}") is None:
            args = {"gtin": packs[0]["gtin"], "lot": packs[0]["lot"], "reason": "sterility failure"}
            try:
                run.node.invoke(REGULATOR, CONTRACT, "recall", args)
            except ContractError:
                run.counts["refused"] += 1
                return
            run.counts["recalls"] += 1


def _recallable(ledger: PublicLedger, cases: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The packs of live lots still mostly in the supply chain (at least half of them
    not yet dispensed, wherever they are: on the road or at a site): a recall reaches
    holders while there is something to take back, as a real one aims to."""
    lots = []
    for case in cases:
        packs = _case_packs(ledger, case)
        unsold = [p for p in packs if p["status"] != "dispensed"]
        if packs and 2 * len(unsold) >= len(packs):
            lots.append(packs)
    return lots


def _pack_uri(pack: dict[str, Any]) -> str:
    return _sgtin(str(pack["gtin"]), str(pack["serial"]))


def _sscc_uri(unit: str) -> str:
    """``00/<sscc>`` as the SSCC EPC URN the simulator writes."""
    digits = unit[3:]
    return f"urn:epc:id:sscc:{digits[1:8]}.{digits[0]}{digits[8:17]}"
