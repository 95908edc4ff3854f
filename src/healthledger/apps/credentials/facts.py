"""What a credential attests, from the facts the epidemic application recorded (as its
declared queries return them: a vaccination, a lab result, a confirmed case), and the
holder the issuing hospital names. Pure functions: no node, no key."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from healthledger.apps.credentials.records import Record, Recovery, TestResult, Vaccination
from healthledger.contracts.errors import InvalidArguments

COVID = "covid-19"
DAY_S = 86_400


@dataclass(frozen=True)
class Vaccine:
    """How a CVX vaccine reads in an EU DCC: product, manufacturer, doses in its series."""

    product: str
    manufacturer: str
    doses: int


VACCINES = {
    "207": Vaccine("EU/1/20/1507", "ORG-100031184", 2),
    "208": Vaccine("EU/1/20/1528", "ORG-100030215", 2),
    "229": Vaccine("EU/1/20/1507", "ORG-100031184", 1),
    "300": Vaccine("EU/1/20/1528", "ORG-100030215", 1),
    "510": Vaccine("BBIBP-CorV", "ORG-100020693", 2),
    "511": Vaccine("CoronaVac", "Sinovac-Biotech", 2),
}
"""The COVID-19 vaccines (CVX) a certificate can name; 213 (unspecified) cannot."""
NAAT_TESTS = frozenset({"94500-6", "94309-2"})
ANTIGEN_TESTS = frozenset({"94558-4"})
RECOVERY_FROM_DAYS, RECOVERY_DAYS = 11, 180
"""A recovery certificate is valid from 11 days after the first positive for 180 days."""
VALID_DAYS = {"vaccination": 365, "test": 3}


@dataclass(frozen=True, kw_only=True)
class HolderName:
    """The holder as the issuing hospital names them (from its own records or the form)."""

    family_name: str
    given_name: str
    birth_date: str


def check_holder(family_name: str, given_name: str, birth_date: str) -> HolderName:
    """The holder's names and ISO birth date checked; InvalidArguments naming each field."""
    errors = []
    for name, value in (("family_name", family_name), ("given_name", given_name)):
        if not 1 <= len(value.strip()) <= 80:
            errors.append({"field": name, "message": "1 to 80 characters"})
    try:
        born = dt.date.fromisoformat(birth_date)
        if not dt.date(1900, 1, 1) <= born <= dt.date.today():
            errors.append({"field": "birth_date", "message": "between 1900 and today"})
    except ValueError:
        errors.append({"field": "birth_date", "message": "a date, YYYY-MM-DD"})
    if errors:
        raise InvalidArguments("the holder's name or birth date is not usable", errors)
    return HolderName(
        family_name=family_name.strip(), given_name=given_name.strip(), birth_date=birth_date
    )


def new_uci(country: str) -> str:
    """A fresh unique certificate identifier (``URN:UVCI:01:CN:`` and 26 random
    characters, 130 random bits): it says nothing about the holder."""
    random = base64.b32encode(secrets.token_bytes(20)).decode("ascii")  # 32 of A-Z, 2-7
    return f"URN:UVCI:01:{country}:" + random[:26]


def iso_day(day: int) -> str:
    """The ISO date of a day number (days since 1970-01-01)."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def _refuse(field: str, message: str) -> InvalidArguments:
    return InvalidArguments(message, [{"field": field, "message": message}])


def vaccination(
    fact: dict[str, Any], holder: HolderName, *, country: str, issuer_name: str, uci: str
) -> Vaccination:
    """A vaccination certificate of a recorded dose (``list_observations`` record)."""
    vaccine = VACCINES.get(str(fact.get("vaccine")))
    if fact.get("disease") != COVID or vaccine is None:
        raise _refuse("source_id", f"CVX {fact.get('vaccine')} is not a COVID-19 vaccine a "
                      "certificate can name")  # fmt: skip
    return Vaccination(
        **vars(holder), country=country, certificate_issuer=issuer_name, uci=uci,
        product=vaccine.product, manufacturer=vaccine.manufacturer,
        dose=int(fact["dose_number"]), doses=max(vaccine.doses, int(fact["dose_number"])),
        date=iso_day(int(fact["day"])),
    )  # fmt: skip


def test_result(
    fact: dict[str, Any], holder: HolderName, *, country: str, issuer_name: str, uci: str
) -> TestResult:
    """A test certificate of a recorded lab result."""
    test = str(fact.get("test"))
    if fact.get("disease") != COVID or test not in NAAT_TESTS | ANTIGEN_TESTS:
        raise _refuse("source_id", f"LOINC {test} is not a SARS-CoV-2 test a certificate names")
    if fact.get("result") not in ("positive", "negative"):
        raise _refuse("source_id", "an inconclusive result is not certified")
    return TestResult(
        **vars(holder), country=country, certificate_issuer=issuer_name, uci=uci,
        test_type="LP6464-4" if test in NAAT_TESTS else "LP217198-3",
        detected=fact["result"] == "positive",
        collected_at=f"{iso_day(int(fact['specimen_day']))}T00:00:00Z", centre=issuer_name,
    )  # fmt: skip


def recovery(
    fact: dict[str, Any], holder: HolderName, *, country: str, issuer_name: str, uci: str
) -> Recovery:
    """A recovery certificate of a confirmed COVID-19 case (first positive: diagnosis)."""
    if fact.get("disease") != COVID or fact.get("status") != "confirmed":
        raise _refuse("source_id", "only a confirmed COVID-19 case yields a recovery")
    first = int(fact["diagnosis"])
    return Recovery(
        **vars(holder), country=country, certificate_issuer=issuer_name, uci=uci,
        first_positive=iso_day(first), valid_from=iso_day(first + RECOVERY_FROM_DAYS),
        valid_until=iso_day(first + RECOVERY_DAYS),
    )  # fmt: skip


def valid_days(record: Record, now: int) -> int:
    """How many days from ``now`` (Unix seconds) the credential is valid."""
    if isinstance(record, Recovery):
        until = dt.date.fromisoformat(record.valid_until) - dt.date(1970, 1, 1)
        return max(1, until.days - now // DAY_S)
    return VALID_DAYS["vaccination" if isinstance(record, Vaccination) else "test"]
