"""What the epidemic pages call things: diseases, ICD-10, LOINC and CVX codes and
regions by name first, code second; regions in Chinese and English.

ICD-10 titles and the English names of Guangdong's regions come from the bundled
``data/codes.json`` (its ``about`` says where they are from); LOINC and CVX names from
the codes the contract accepts (observations.py). The Chinese name of a region is the
one on chain (``region/<code>``, from the region package).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from healthledger.apps.epidemic.diseases import NOTIFIABLE_DISEASES
from healthledger.apps.epidemic.observations import LAB_TESTS, VACCINES
from healthledger.node.seam import AppNode

CODES_FILE = Path(__file__).resolve().parent / "data" / "codes.json"


@cache
def _codes() -> dict[str, dict[str, str]]:
    data: dict[str, Any] = json.loads(CODES_FILE.read_text(encoding="utf-8"))
    return {"icd10": dict(data["icd10"]), "regions_en": dict(data["regions_en"])}


def icd10_name(code: str) -> str | None:
    """The ICD-10 title of ``code`` (of its category if the subcategory is not listed)."""
    names = _codes()["icd10"]
    text = code.strip().upper()
    return names.get(text) or names.get(text[:3])


def icd10_label(code: str) -> str:
    """``Influenza with other respiratory manifestations, ... (J10.1)``."""
    name = icd10_name(code)
    return f"{name} ({code})" if name else code


def disease_name(disease_id: str) -> str:
    """``Influenza`` for ``influenza``; an unknown id as it is."""
    return next((d.name for d in NOTIFIABLE_DISEASES if d.id == disease_id), disease_id)


def loinc_label(code: str) -> str:
    """A LOINC test by name, then code."""
    item = LAB_TESTS.get(code)
    return f"{item.name} (LOINC {code})" if item else f"LOINC {code}"


def cvx_label(code: str) -> str:
    """A CVX vaccine by name, then code."""
    item = VACCINES.get(code)
    return f"{item.name} (CVX {code})" if item else f"CVX {code}"


def english_region(code: str) -> str | None:
    """The English (pinyin) name of a Guangdong region, if bundled."""
    return _codes()["regions_en"].get(code)


@dataclass(frozen=True)
class RegionName:
    """A region as people read it."""

    code: str
    chinese: str
    english: str

    @property
    def label(self) -> str:
        """``越秀区 Yuexiu District``, or the one name where both are the same."""
        if not self.english:
            return self.chinese or self.code
        if not self.chinese or self.chinese.isascii():
            return self.english
        return f"{self.chinese} {self.english}"


class RegionNames:
    """Region names of the regions on chain, read once per page."""

    def __init__(self, node: AppNode) -> None:
        self._names: dict[str, RegionName] = {}
        self.levels: dict[str, str] = {}
        self.parents: dict[str, str | None] = {}
        for _, region in node.range("region/"):
            if not isinstance(region, dict):
                continue
            code = str(region["code"])
            chinese = str(region.get("name", ""))
            self._names[code] = RegionName(code, chinese, english_region(code) or chinese)
            self.levels[code] = str(region.get("level", ""))
            self.parents[code] = region.get("parent")

    def get(self, code: str) -> RegionName:
        """The names of ``code`` (the code itself where the chain has no such region)."""
        found = self._names.get(code)
        if found is not None:
            return found
        return RegionName(code, "", english_region(code) or code)

    def label(self, code: str) -> str:
        """``越秀区 Yuexiu District (440104)``: names first, code second."""
        return f"{self.get(code).label} ({code})"

    def choices(self, *, levels: tuple[str, ...] = ("district",)) -> list[tuple[str, str]]:
        """(code, label) of the regions at ``levels``, by city then name, for a select."""
        codes = [c for c, level in self.levels.items() if level in levels]
        return [(code, self.label(code)) for code in sorted(codes)]


def icd10_choices() -> list[tuple[str, str]]:
    """(code, ``Name (code)``) of every listed ICD-10 code, by code, for a select."""
    return [(code, f"{name} ({code})") for code, name in sorted(_codes()["icd10"].items())]
