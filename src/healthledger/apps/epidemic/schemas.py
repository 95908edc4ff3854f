"""The epidemic contract's argument types: what each function takes, as the framework
validates it before the function runs (strict: no coercion, no unknown fields)."""

from __future__ import annotations

from typing import Literal, NotRequired

from typing_extensions import TypedDict

Classification = Literal["suspected", "probable", "confirmed"]
Outcome = Literal["under-treatment", "recovered", "died", "unknown"]
OrgKind = Literal["hospital", "cdc", "commission"]
RejectReason = Literal["not-a-case", "duplicate", "wrong-disease", "data-error"]
EarsMethod = Literal["C1", "C2", "C3"]
InfoField = Literal["classification", "onset_date", "diagnosis_date", "region", "lab-evidence"]
GrantPurpose = Literal[
    "outbreak-investigation", "cross-border-cluster", "contact-tracing", "mutual-aid", "audit"
]
"""Why a grant was made, coded (free text invites personal data onto the chain)."""
ObservationKind = Literal["lab", "vaccination"]
CaseStatus = Literal["reported", "info-requested", "confirmed", "rejected"]
QueueOrder = Literal["oldest-reported", "newest-reported", "newest-reviewed"]
"""How ``case_queue`` orders its cases: by the time of the report, oldest or newest
first, or by the time of the CDC's last review (its decision), newest first."""
AlertAction = Literal["investigating", "monitoring", "escalated", "no-action-needed"]
"""What a CDC does about an early-warning alert, coded."""


class RegionArg(TypedDict):
    """A region as ``define_regions`` takes it (see regions.Region)."""

    code: str
    name: str
    level: Literal["province", "city", "district"]
    parent: str | None
    lat_e6: NotRequired[int]
    lon_e6: NotRequired[int]


class PopulationArg(TypedDict):
    """A region's resident population."""

    region: str
    population: int


class CaseArg(TypedDict):
    """One report of a ``report_cases`` batch (the arguments of ``report_case``);
    without ``region`` the case is placed at the reporter's region, flagged
    residence unknown."""

    disease: str
    classification: Classification
    onset_date: int | str
    diagnosis_date: int | str
    region: NotRequired[str]


class BundleCaseArg(CaseArg):
    """A case of a ``report_bundle``: ``patient`` indexes its transient ``patients``."""

    patient: int


class BundleLabArg(TypedDict):
    """A lab result of a ``report_bundle`` (the arguments of ``report_lab_result``)."""

    test: str
    result: Literal["positive", "negative", "inconclusive"]
    specimen_date: int | str
    result_date: int | str
    region: NotRequired[str]
    patient: int


class BundleDoseArg(TypedDict):
    """A dose of a ``report_bundle`` (the arguments of ``record_vaccination``)."""

    vaccine: str
    dose_number: int
    administered_date: int | str
    region: NotRequired[str]
    lot: NotRequired[str]
    patient: int


class ReleaseRow(TypedDict):
    """One released cell: a noisy count, or None where it was suppressed."""

    region: str
    disease: str
    count: int | None
