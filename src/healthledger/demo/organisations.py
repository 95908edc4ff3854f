"""The demo consortium: a Guangdong-style provincial health network, each
organisation with the people and machines it registers, and the founder who signs
its genesis. ``healthledger demo`` founds an embedded node with all of them;
``healthledger network up --orgs N`` a consortium of the first N."""

from __future__ import annotations

from healthledger.node.consortium import OrgPlan

DEMO_ORGS: tuple[OrgPlan, ...] = (
    OrgPlan(
        "gd-commission",
        "Guangdong Provincial Health Commission",
        "commission",
        (("officer-chen", "officer"),),
        gs1_prefixes=("6951230",),
    ),
    OrgPlan(
        "gd-cdc",
        "Guangdong Provincial CDC",
        "cdc",
        (("epi-wang", "epidemiologist"), ("epi-zhao", "epidemiologist")),
        gs1_prefixes=("6951239",),
    ),
    OrgPlan(
        "gz-first-hospital",
        "Guangzhou First People's Hospital",
        "hospital",
        (("dr-li", "doctor"), ("lab-huang", "lab"), ("nurse-lin", "nurse")),
        "440100",
        gs1_prefixes=("6951237",),
    ),
    OrgPlan(
        "sz-peoples-hospital",
        "Shenzhen People's Hospital",
        "hospital",
        (("dr-zhang", "doctor"), ("lab-wu", "lab")),
        "440300",
        gs1_prefixes=("6951238",),
    ),
    OrgPlan(
        "lingnan-bio",
        "Lingnan Biologics (vaccine maker)",
        "manufacturer",
        (("qa-liu", "quality"), ("ops-he", "operator")),
        gs1_prefixes=("6951234",),
    ),
    OrgPlan(
        "pearl-logistics",
        "Pearl River Pharma Logistics",
        "distributor",
        (("ops-guo", "operator"), ("driver-ma", "driver")),
        gs1_prefixes=("6951235",),
    ),
    OrgPlan(
        "yuexiu-pharmacy",
        "Yuexiu Community Pharmacy",
        "pharmacy",
        (("pharm-xu", "pharmacist"),),
        "440104",
        gs1_prefixes=("6951236",),
    ),
    OrgPlan(
        "gd-insurance",
        "Guangdong Medical Insurance Co.",
        "insurer",
        (("adjuster-sun", "adjuster"),),
    ),
    OrgPlan(
        "gd-redcross",
        "Guangdong Red Cross Charity",
        "charity",
        (("accountant-zhou", "accountant"),),
        gs1_prefixes=("6951240",),
    ),
    OrgPlan(
        "gd-mpa",
        "Guangdong Medical Products Administration",
        "regulator",
        (("inspector-feng", "inspector"), ("auditor-tang", "auditor")),
    ),
)

FOUNDER = "gd-commission/admin"
