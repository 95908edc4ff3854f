"""What a dashboard request asks to see: a disease and a region, checked against the
notifiable diseases, the region table on chain and the viewer's scope, and said in
words (the subtitle every figure carries). An unknown value is refused, never
replaced by a default: ``?disease=cholre`` is an error, not influenza."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from healthledger.apps.epidemic.diseases import NOTIFIABLE_DISEASES
from healthledger.errors import HealthledgerError

DISEASE_NAMES = {d.id: d.name for d in NOTIFIABLE_DISEASES}


class UnknownFilter(ValueError, HealthledgerError):
    """A filter value the dashboard does not know (or may not show to this viewer)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        """The request parameter refused: ``disease`` or ``region``."""


@dataclass(frozen=True)
class View:
    """What the figures show, decided from a request."""

    disease: str | None
    """The disease id shown (None when nothing is reported in scope at all)."""
    region: str | None
    """The region code the viewer chose, or None for their whole scope."""
    prefixes: tuple[str, ...] | None
    """Region code prefixes of the cases shown; None for an organisation's own reports
    wherever they are."""
    subtitle: str
    """What the figures show, in words: disease, where, whose."""


def region_prefix(code: str) -> str:
    """The GB/T 2260 prefix of a region's subregions: ``440000`` -> ``44``."""
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


def region_label(code: str, regions: Mapping[str, Mapping[str, Any]]) -> str:
    """A region's name and code, ``广州市 (440100)``; the code alone if it has no name."""
    region = regions.get(code)
    return code if region is None else f"{region['name']} ({code})"


def choose(
    *,
    disease: str | None,
    region: str | None,
    reported: Sequence[str],
    scope_label: str,
    scope_prefixes: tuple[str, ...] | None,
    regions: Mapping[str, Mapping[str, Any]],
) -> View:
    """The view a request asks for. ``reported``: diseases with cases, most first (the
    default is the first). Raises UnknownFilter for a disease that is not notifiable,
    a region not in the table on chain, or one outside the viewer's scope."""
    if disease:
        if disease not in DISEASE_NAMES:
            known = ", ".join(sorted(DISEASE_NAMES))
            raise UnknownFilter(
                "disease", f"unknown disease {disease!r}: a notifiable disease id, one of {known}"
            )
        chosen: str | None = disease
    else:
        chosen = reported[0] if reported else None
    prefixes = scope_prefixes
    where = scope_label
    if region:
        if region not in regions:
            raise UnknownFilter(
                "region", f"unknown region {region!r}: a GB/T 2260 code of the region table"
            )
        if scope_prefixes is not None and not region.startswith(scope_prefixes):
            raise UnknownFilter("region", f"region {region} is outside your scope ({scope_label})")
        prefixes = (region_prefix(region),)
        where = region_label(region, regions)
        if scope_prefixes is None:
            where += f", {scope_label}"
    name = "no disease reported" if chosen is None else DISEASE_NAMES.get(chosen, chosen)
    return View(
        disease=chosen,
        region=region or None,
        prefixes=prefixes,
        subtitle=f"{name} — {where}",
    )
