"""The EU DCC value sets (ehn-dcc-valuesets) for the coded fields a verifier shows.

A code outside them is a warning, not a refusal: value sets grow after a verifier ships,
and the DCC schema 1.3.0 leaves them open."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DISEASE_AGENT = {"840539006": "COVID-19"}
VACCINE_PROPHYLAXIS = {
    "1119305005": "SARS-CoV-2 antigen vaccine",
    "1119349007": "SARS-CoV-2 mRNA vaccine",
    "J07BX03": "covid-19 vaccines",
}
VACCINE_PRODUCT = {
    "EU/1/20/1528": "Comirnaty",
    "EU/1/20/1507": "Spikevax",
    "EU/1/21/1529": "Vaxzevria",
    "EU/1/20/1525": "Jcovden",
    "EU/1/21/1618": "Nuvaxovid",
    "EU/1/21/1624": "VLA2001",
    "BBIBP-CorV": "BBIBP-CorV (Sinopharm)",
    "CoronaVac": "CoronaVac (Sinovac)",
    "Covaxin": "Covaxin",
    "Sputnik-V": "Sputnik V",
}
MANUFACTURER = {
    "ORG-100030215": "Biontech Manufacturing GmbH",
    "ORG-100031184": "Moderna Biotech Spain S.L.",
    "ORG-100001699": "AstraZeneca AB",
    "ORG-100001417": "Janssen-Cilag International",
    "ORG-100032020": "Novavax CZ a.s.",
    "ORG-100020693": "China Sinopharm International Corp. - Beijing location",
    "Sinovac-Biotech": "Sinovac Biotech",
    "ORG-100001981": "Bharat Biotech",
    "ORG-100036422": "Valneva France",
}
TEST_TYPE = {
    "LP6464-4": "Nucleic acid amplification with probe detection",
    "LP217198-3": "Rapid immunoassay",
}
TEST_RESULT = {"260415000": "Not detected", "260373001": "Detected"}

FIELDS: Mapping[str, Mapping[str, Mapping[str, str]]] = {
    "v": {
        "tg": DISEASE_AGENT,
        "vp": VACCINE_PROPHYLAXIS,
        "mp": VACCINE_PRODUCT,
        "ma": MANUFACTURER,
    },
    "t": {"tg": DISEASE_AGENT, "tt": TEST_TYPE, "tr": TEST_RESULT},
    "r": {"tg": DISEASE_AGENT},
}
"""Per certificate group, the coded fields and their value sets."""


def unknown_codes(entry: Mapping[str, Any], group: str | None) -> list[str]:
    """``field=code`` for each coded field of ``entry`` (a ``v``, ``t`` or ``r`` item)
    whose code is not in its value set."""
    if group is None:
        return []
    return [
        f"{name}={entry[name]}"
        for name, known in FIELDS[group].items()
        if name in entry and entry[name] not in known
    ]
