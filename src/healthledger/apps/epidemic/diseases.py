"""The notifiable diseases a case may be reported for, with their ICD-10 codes.

Source: the notifiable-disease list of the Law of the People's Republic of China on
the Prevention and Control of Infectious Diseases (classes A, B and C, as amended;
COVID-19 managed as class B since 8 January 2023), coded with WHO ICD-10 (2019
edition). This is a deliberately short demo list; adding a disease is adding a row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ICD10_CODE = re.compile(r"^[A-Z][0-9]{2}(\.[0-9]{1,3})?$")
"""An ICD-10 category (``J10``) or subcategory (``J10.1``, ``U07.1``)."""


@dataclass(frozen=True)
class Disease:
    """One notifiable disease."""

    id: str
    """Stable short id, used in state keys and aggregates."""
    name: str
    law_class: str
    """Class under the infectious-disease law: ``A``, ``B`` or ``C``."""
    icd10: tuple[tuple[str, str], ...]
    """Inclusive ranges of ICD-10 codes; a range ending in a category (``A19``)
    includes its subcategories, a subcategory (``U07.1``) covers itself and below."""

    def covers(self, code: str) -> bool:
        """True if the ICD-10 ``code`` (normalised) belongs to this disease."""
        return any(_in_range(code, low, high) for low, high in self.icd10)


def _in_range(code: str, low: str, high: str) -> bool:
    if "." in low:
        return code == low or code.startswith(low)
    return low <= code[:3] <= high


NOTIFIABLE_DISEASES: tuple[Disease, ...] = (
    Disease("plague", "Plague", "A", (("A20", "A20"),)),
    Disease("cholera", "Cholera", "A", (("A00", "A00"),)),
    Disease("covid-19", "COVID-19", "B", (("U07.1", "U07.1"), ("U07.2", "U07.2"))),
    Disease("measles", "Measles", "B", (("B05", "B05"),)),
    Disease("tuberculosis", "Tuberculosis", "B", (("A15", "A19"),)),
    Disease("dengue", "Dengue fever", "B", (("A90", "A91"), ("A97", "A97"))),
    Disease("viral-hepatitis", "Viral hepatitis", "B", (("B15", "B19"),)),
    Disease("hiv-aids", "HIV/AIDS", "B", (("B20", "B24"),)),
    Disease("pertussis", "Pertussis", "B", (("A37", "A37"),)),
    Disease("scarlet-fever", "Scarlet fever", "B", (("A38", "A38"),)),
    Disease("malaria", "Malaria", "B", (("B50", "B54"),)),
    Disease("rabies", "Rabies", "B", (("A82", "A82"),)),
    Disease("influenza", "Influenza", "C", (("J09", "J11"),)),
    Disease("mumps", "Mumps", "C", (("B26", "B26"),)),
    Disease("rubella", "Rubella", "C", (("B06", "B06"),)),
    Disease("hfmd", "Hand, foot and mouth disease", "C", (("B08.4", "B08.4"),)),
)

_BY_ID = {d.id: d for d in NOTIFIABLE_DISEASES}


def normalise_icd10(code: str) -> str:
    """``code`` upper-cased and stripped; ValueError if it is not an ICD-10 code."""
    text = code.strip().upper()
    if not ICD10_CODE.match(text):
        raise ValueError(f"{code!r} is not an ICD-10 code (e.g. J10 or U07.1)")
    return text


def disease_for_icd10(code: str) -> Disease:
    """The notifiable disease an ICD-10 code belongs to; ValueError if none."""
    text = normalise_icd10(code)
    for disease in NOTIFIABLE_DISEASES:
        if disease.covers(text):
            return disease
    raise ValueError(f"ICD-10 code {text} is not a notifiable disease")


def disease(disease_id: str) -> Disease:
    """The disease of id ``disease_id``; KeyError if unknown."""
    return _BY_ID[disease_id]
