"""The figures of the supply console that the rest of the API does not already answer,
as JSON under ``/api/v1/supply``: the recall dashboard (every recall and how its units
stand), from the same function the recall page and the role homes call
(``dashboards.recall_dashboard``). A unit's timeline and temperatures are
``/units/{unit}/history``; a lot's whereabouts ``/lots/{gtin}/{lot}``."""

from __future__ import annotations

from typing import Literal

import pydantic
from fastapi import APIRouter

from healthledger.apps.supply.dashboards import recall_dashboard
from healthledger.apps.supply.verification import PublicLedger
from healthledger.node.seam import AppNode

Bucket = Literal["located", "returned", "destroyed", "missing"]


class _Record(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class RecallCounts(_Record):
    """A recall's units by how they stand."""

    located: int = pydantic.Field(description="Held somewhere in the chain.")
    returned: int = pydantic.Field(description="Back with their maker.")
    destroyed: int = pydantic.Field(description="Destroyed or decommissioned.")
    missing: int = pydantic.Field(description="Out of reach: dispensed or administered.")


class RecalledUnit(_Record):
    """One unit a recall reaches."""

    unit: str
    bucket: Bucket
    custodian: str | None
    location: str | None
    status: str | None


class Recall(_Record):
    """One recall as the recall dashboard shows it."""

    id: str
    gtin: str
    lot: str
    product: str | None = pydantic.Field(description="The product's name, if registered.")
    reason: str
    by: str = pydantic.Field(description="The identity that recalled the lot.")
    by_name: str = pydantic.Field(description="Its organisation's name.")
    at: int | None = pydantic.Field(description="When, Unix milliseconds.")
    total: int
    counts: RecallCounts
    units: list[RecalledUnit]


def figures_router(node: AppNode) -> APIRouter:
    """The figure routes, mounted under ``/api/v1/supply``."""
    router = APIRouter()
    ledger = PublicLedger(node)

    @router.get("/recalls", summary="Recall dashboard: every recall and its units")
    def recalls() -> list[Recall]:
        """Every recall with its date and reason, and its units counted as located,
        returned, destroyed or missing (the recall page's figures)."""
        return [Recall.model_validate(r) for r in recall_dashboard(ledger)]

    return router
