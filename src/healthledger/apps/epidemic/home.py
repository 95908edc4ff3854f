"""What the epidemic application puts on a person's home (``App.home_panels``): a
doctor's reporting and the review state of their hospital's reports, a lab's results,
a nurse's vaccinations, the CDC's review queue, alerts and grants, the commission's
province at a glance. Quick reads as the person, never a write."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from healthledger.apps import HomePanel, Link, Person
from healthledger.apps.epidemic.dashboard import scope_of
from healthledger.apps.epidemic.names import RegionNames, disease_name
from healthledger.apps.epidemic.review_pages import STATUS_WORDS, alert_rows
from healthledger.apps.epidemic.workers import shared_dashboard
from healthledger.node.seam import AppNode

CONTRACT = "epidemic"
ALERT_DAYS = 7
"""Alerts of the last week count as the ones to act on."""


def _status_counts(node: AppNode, identity: str) -> Counter[str]:
    """How many cases ``identity`` may see in each status (every one of them counted),
    from the dashboard's read model: a home page is read often, and the contract's
    ``case_counts`` reads every case's index entry each time."""
    scope = scope_of(node, identity)
    return Counter() if scope is None else Counter(shared_dashboard(node).status_counts(scope))


def _counts(counts: Counter[str]) -> list[tuple[str, int, str]]:
    return [
        (STATUS_WORDS[status], counts.get(status, 0), status)
        for status in ("reported", "info-requested", "confirmed", "rejected")
    ]


def _hospital(node: AppNode, person: Person) -> list[HomePanel]:
    panels = []
    if person.role in ("doctor", "lab"):
        counts = _status_counts(node, person.identity)
        waiting = counts.get("info-requested", 0)
        panels.append(
            HomePanel(
                "Case reports",
                summary=(
                    f"The CDC asks about {waiting} of your hospital's reports: answer them."
                    if waiting
                    else "Report a notifiable case the day you diagnose it."
                ),
                actions=(
                    Link("/epidemic/report", "Report a case", "by form or a FHIR Bundle"),
                    Link("/epidemic/my-reports", "Your hospital's reports", "and their review"),
                ),
                template="epidemic/home_counts.html",
                context={"counts": _counts(counts)},
                order=10,
            )
        )
        panels.append(
            HomePanel(
                "Lab results",
                summary="Post a test result for a patient (LOINC-coded tests).",
                actions=(Link("/epidemic/lab-result", "Post a lab result"),),
                order=20 if person.role == "lab" else 30,
            )
        )
    if person.role in ("doctor", "nurse"):
        panels.append(
            HomePanel(
                "Vaccinations",
                summary="Record a dose given here (CVX-coded vaccines).",
                actions=(Link("/epidemic/vaccination", "Record a vaccination"),),
                order=25,
            )
        )
    return panels


def _overseer(node: AppNode, person: Person) -> list[HomePanel]:
    regions = RegionNames(node)
    today = node.clock() // 86_400_000
    alerts = [
        a
        for a in alert_rows(node, person, regions)
        if a["day"] >= today - ALERT_DAYS and not a["acknowledged"]
    ]
    panels = []
    if person.kind == "cdc" and person.role == "epidemiologist":
        counts = _status_counts(node, person.identity)
        panels.append(
            HomePanel(
                "Review queue",
                summary=f"{counts.get('reported', 0)} reports of your area await review.",
                actions=(Link("/epidemic/review", "Review reports"),),
                template="epidemic/home_counts.html",
                context={"counts": _counts(counts)},
                order=10,
            )
        )
    panels.append(
        HomePanel(
            "Early-warning alerts",
            summary=_alert_summary(len(alerts), acts=person.kind == "cdc"),
            actions=(
                Link("/epidemic/alerts", "Alerts to act on"),
                Link("/epidemic", "Monitoring dashboard", "curves, Rt, map"),
            ),
            template="epidemic/home_alerts.html",
            context={"alerts": alerts[:5]},
            order=15,
        )
    )
    if person.role in ("admin", "officer", "epidemiologist"):
        panels.append(
            HomePanel(
                "Cross-region access",
                summary="Grant another CDC the detail of regions of your area, or revoke it.",
                actions=(Link("/epidemic/grants", "Grants"),),
                order=40,
            )
        )
    if person.kind == "commission":
        panels.append(_glance(node, person, regions))
    return panels


def _alert_summary(count: int, *, acts: bool) -> str:
    """How many recent alerts wait: for the CDC to act on, or (to others) on the CDC."""
    if not count:
        return f"No alert of the last {ALERT_DAYS} days is waiting."
    if acts:
        return f"{count} alerts of the last {ALERT_DAYS} days to act on."
    return f"{count} alerts of the last {ALERT_DAYS} days not yet acknowledged by the CDC."


def _glance(node: AppNode, person: Person, regions: RegionNames) -> HomePanel:
    """The province at a glance: cases by disease and by city, and the review state.
    The counts come from the dashboard's read model, which keeps them as blocks commit,
    rather than from the contract's ``aggregates`` query, which reads every case's index
    entry on each call."""
    by_disease: Counter[str] = Counter()
    by_city: Counter[str] = Counter()
    scope = scope_of(node, person.identity)
    rows = [] if scope is None else shared_dashboard(node).aggregates(scope)
    for row in rows:
        count = int(row.get("count", 0))
        by_disease[disease_name(str(row["disease"]))] += count
        code = str(row["region"])
        city = code if regions.levels.get(code) != "district" else regions.parents.get(code)
        by_city[regions.get(str(city or code)).label] += count
    counts = _status_counts(node, person.identity)
    return HomePanel(
        "The province at a glance",
        summary=f"{sum(by_disease.values())} cases reported and not rejected.",
        actions=(
            Link("/epidemic", "Monitoring dashboard"),
            Link("/epidemic/public", "Public statistics"),
        ),
        template="epidemic/home_glance.html",
        context={
            "diseases": by_disease.most_common(6),
            "cities": by_city.most_common(8),
            "counts": _counts(counts),
        },
        order=5,
    )


def home_panels(node: AppNode, person: Person) -> Sequence[HomePanel]:
    """The epidemic panels for ``person`` (none outside hospitals, CDCs and the
    commission)."""
    if person.kind == "hospital":
        return _hospital(node, person)
    if person.kind in ("cdc", "commission"):
        return _overseer(node, person)
    return []
