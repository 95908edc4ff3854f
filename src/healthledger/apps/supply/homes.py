"""What the supply application puts on a person's home: a maker's lots, quality holds
and recalls; a distributor's, pharmacy's or clinic's incoming shipments, stock to
dispense and recalled stock; a regulator's recalls and alerts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from healthledger.appkit.readable import counted, says_org
from healthledger.apps import HomePanel, Link, Person
from healthledger.apps.supply.capture_step import MAKER_ROLES, REGULATOR_ROLES
from healthledger.apps.supply.dashboards import recall_dashboard
from healthledger.apps.supply.standing import ALERTS
from healthledger.apps.supply.verification import PublicLedger
from healthledger.apps.supply.worklists import Worklist, case_label, worklist
from healthledger.node.seam import AppNode

SHOWN = 6
"""Rows a panel lists before "and N more"."""
HOLDERS = ("distributor", "pharmacy", "hospital")
"""Kinds of organisation that receive shipments."""
DISPENSERS = ("pharmacy", "hospital")
CLINIC_ROLES = ("nurse", "admin")
"""Who receives and administers supplies at a hospital."""


def _rows(rows: list[dict[str, Any]], testid: str) -> dict[str, Any]:
    return {"rows": rows[:SHOWN], "more": max(len(rows) - SHOWN, 0), "testid": testid}


def _trace(unit: str) -> str:
    return f"/supply/trace?unit={unit}"


def _maker(work: Worklist, person: Person, recalls: list[dict[str, Any]]) -> list[HomePanel]:
    lots = [
        {
            "label": f"{lot['product']} · lot {lot['lot']}",
            "href": f"/supply/trace?gtin={lot['gtin']}&lot={lot['lot']}",
            "detail": ", ".join(f"{n} {status}" for status, n in sorted(lot["counts"].items())),
        }
        for lot in reversed(work.lots)
    ]
    panels = [
        HomePanel(
            "Lots",
            summary=f"{counted(len(work.lots), 'lot')} of your products on the ledger.",
            actions=(
                Link("/supply/commission", "Commission a lot"),
                Link("/supply/pack", "Pack a case"),
                Link("/supply/ship", "Ship"),
            ),
            template="supply/panel_rows.html",
            context=_rows(lots, "maker-lots"),
            order=20,
        )
    ]
    holds = [
        {"label": f"{u['product']}, pack {u['serial']}", "href": _trace(u["unit"]),
         "detail": f"at {_held_at(u)}"}
        for u in work.holds
    ]  # fmt: skip
    decide = person.role in MAKER_ROLES
    panels.append(
        HomePanel(
            "Quality holds",
            summary=(
                f"{counted(len(holds), 'pack')} quarantined after a temperature excursion"
                + (": release or destroy each." if holds and decide else ".")
            ),
            actions=(Link("/supply/holds", "Decide on quarantined packs"),) if holds else (),
            template="supply/panel_rows.html",
            context=_rows(holds, "maker-holds"),
            order=21,
        )
    )
    mine = {p["gtin"] for p in work.products}
    own = [r for r in recalls if r["gtin"] in mine]
    panels.append(_recall_panel(own, "Recalls of your products", may_recall=decide, order=22))
    return panels


def _recall_panel(
    recalls: list[dict[str, Any]], title: str, *, may_recall: bool, order: int
) -> HomePanel:
    rows = [
        {
            "label": f"{r['product'] or r['gtin']} · lot {r['lot']}",
            "href": f"/supply/trace?gtin={r['gtin']}&lot={r['lot']}",
            "at": r["at"],
            "detail": f"{r['reason']}; {r['counts']['located']} located, "
            f"{r['counts']['missing']} out of reach",
        }
        for r in reversed(recalls)
    ]
    actions = [Link("/supply/recalls", "Recall a lot" if may_recall else "All recalls")]
    return HomePanel(
        title,
        summary=counted(len(recalls), "recall.", "recalls.", none="No lot is recalled."),
        actions=tuple(actions),
        template="supply/panel_rows.html",
        context=_rows(rows, "recalls"),
        order=order,
    )


def _place(name: str | None, gln: object) -> str:
    """A place by its name, by its GLN (labelled) where it has none."""
    return name or f"GLN {gln}"


def _held_at(row: dict[str, Any]) -> str:
    """Where a worklist row is and who holds it, each said once (``readable.says_org``)."""
    where, who = _place(row["place_name"], row["location"]), row["custodian_name"]
    return where if not who or says_org(row["place_name"], who) else f"{where} ({who})"


def _holder(work: Worklist, person: Person, kind: str) -> list[HomePanel]:
    incoming = [
        {
            "label": (
                case_label(u) if u["kind"] == "case" else f"{u['product']}, pack {u['serial']}"
            ),
            "href": _trace(u["unit"]),
            "detail": f"from {u['custodian_name']} to "
            + _place(u["destination_name"], u["destination"]),
        }
        for u in work.incoming
    ]
    panels = [
        HomePanel(
            "Incoming shipments",
            summary=counted(
                len(incoming),
                "shipment is on its way to you.",
                "shipments are on their way to you.",
                none="No shipment is on its way to you.",
            ),
            actions=(Link("/supply/receive", "Receive a shipment"),) if incoming else (),
            template="supply/panel_rows.html",
            context=_rows(incoming, "incoming"),
            order=20,
        )
    ]
    if kind in DISPENSERS:
        panels.append(
            HomePanel(
                "Dispense",
                summary=counted(
                    work.sellable,
                    "pack in stock may be dispensed.",
                    "packs in stock may be dispensed.",
                    none="No pack in stock may be dispensed.",
                ),
                actions=(Link("/supply/dispense", "Dispense by scanning a pack's QR code"),),
                order=21,
            )
        )
    else:
        panels.append(
            HomePanel(
                "Stock to ship",
                summary=counted(
                    len(work.shippable),
                    "case or pack in stock.",
                    "cases or packs in stock.",
                    none="Nothing in stock to ship.",
                ),
                actions=(Link("/supply/ship", "Ship onward"),) if work.shippable else (),
                order=21,
            )
        )
    recalled = [
        {
            "label": f"{u['product']}, pack {u['serial']}",
            "href": _trace(u["unit"]),
            "at": u["recall"]["at"],
            "detail": u["recall"]["reason"],
        }
        for u in work.recalled_held
    ]
    if recalled:
        panels.append(
            HomePanel(
                "Recalled packs in your stock",
                summary=counted(len(recalled), "recalled pack:", "recalled packs:")
                + " set them aside for return; the ledger refuses to dispense them.",
                actions=(Link("/supply/recalls", "Recalls"),),
                template="supply/panel_rows.html",
                context=_rows(recalled, "recalled-stock"),
                order=22,
            )
        )
    return panels


def _regulator(node: AppNode, person: Person, recalls: list[dict[str, Any]]) -> list[HomePanel]:
    found = node.query(person.identity, "supply", "alerts", {})
    ledger = PublicLedger(node)
    alerts = [
        {
            "label": ALERTS.get(str(a["kind"]), str(a["kind"]).replace("_", " ")),
            "href": _trace(a["unit"]),
            "at": a.get("at"),
            "detail": f"seen by {ledger.org_name(a.get('org'))}",
        }
        for a in reversed(found)
    ]
    return [
        _recall_panel(recalls, "Recalls", may_recall=person.role in REGULATOR_ROLES, order=20),
        HomePanel(
            "Supply alerts",
            summary=counted(
                len(alerts),
                "counterfeit, diversion or cold-chain alert.",
                "counterfeit, diversion and cold-chain alerts.",
                none="No supply alert.",
            ),
            actions=(Link("/supply/alerts", "All supply alerts"),),
            template="supply/panel_rows.html",
            context=_rows(alerts, "alerts"),
            order=21,
        ),
    ]


def home_panels(node: AppNode, person: Person) -> Sequence[HomePanel]:
    """The supply panels of ``person``'s home (none for a role with no supply work)."""
    ledger = PublicLedger(node)
    if person.kind == "regulator":
        return _regulator(node, person, recall_dashboard(ledger))
    if person.kind == "manufacturer":
        return _maker(worklist(ledger, person.org), person, recall_dashboard(ledger))
    if person.kind == "hospital" and person.role not in CLINIC_ROLES:
        return []  # a doctor or a lab has no supply work
    if person.kind in HOLDERS:
        return _holder(worklist(ledger, person.org), person, person.kind)
    return []
