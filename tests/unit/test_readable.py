"""Values as people read them (appkit.readable): the console's filters for every page."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from healthledger.appkit.readable import (
    celsius,
    counted,
    day,
    local_day,
    named,
    plural_words,
    says_org,
    someone,
    sscc,
    when,
    zone_name,
)

NOON_UTC_MS = 1_796_644_800_000  # 2026-12-07 12:00:00 UTC


def test_a_moment_is_local_with_its_zone() -> None:
    assert when(NOON_UTC_MS) == "2026-12-07 20:00 CST (UTC+08:00)"
    assert when(NOON_UTC_MS, seconds=True) == "2026-12-07 20:00:00 CST (UTC+08:00)"
    assert when("2026-12-07T12:00:00Z") == "2026-12-07 20:00 CST (UTC+08:00)"
    assert when(NOON_UTC_MS, dt.UTC) == "2026-12-07 12:00 UTC"
    assert when(NOON_UTC_MS, ZoneInfo("Europe/Berlin")) == "2026-12-07 13:00 CET (UTC+01:00)"


def test_a_moment_falls_on_the_local_day_it_is_shown_on() -> None:
    evening = NOON_UTC_MS + (5 * 60 + 30) * 60_000  # 17:30 UTC: 01:30 CST the next day
    assert when(evening).startswith("2026-12-08 01:30")
    assert local_day(evening) == dt.date(2026, 12, 8)
    assert local_day(evening, dt.UTC) == dt.date(2026, 12, 7)
    assert local_day("2026-12-07T15:59:59Z") == dt.date(2026, 12, 7)
    assert local_day("2026-12-07T16:00:00Z") == dt.date(2026, 12, 8)
    assert local_day("soon") is None
    assert zone_name(evening) == "CST (UTC+08:00)"
    assert zone_name(evening, dt.UTC) == "UTC"


def test_a_moment_that_is_not_one_is_shown_as_it_is() -> None:
    assert when(None) == "—"
    assert when("soon") == "soon"
    assert when(True) == "True"


def test_days_are_calendar_dates() -> None:
    assert day(20_794) == "7 Dec 2026"
    assert day("2026-12-07") == "7 Dec 2026"
    assert day(None) == "—"


def test_temperatures_have_one_decimal() -> None:
    assert celsius(41) == "4.1 °C"
    assert celsius(118) == "11.8 °C"
    assert celsius(-15) == "\N{MINUS SIGN}1.5 °C"
    assert celsius(0) == "0.0 °C"
    assert celsius(None) == "—"
    assert celsius(4.1) == "—"


def test_names_come_first_and_codes_second() -> None:
    assert named("J10", "Influenza") == "Influenza (J10)"
    assert named("440104", {"440104": "越秀区 Yuexiu"}) == "越秀区 Yuexiu (440104)"
    assert named("X99", {"J10": "Influenza"}) == "X99"
    assert named(None) == "—"


def test_people_are_named_by_organisation_and_role() -> None:
    cdc = "Guangdong Provincial CDC"
    assert someone("gd-cdc/epi-wang", role="epidemiologist", org_name=cdc) == (
        "Guangdong Provincial CDC · epidemiologist"
    )
    assert someone("gd-cdc", org_name=cdc) == "Guangdong Provincial CDC"
    assert someone("x-org/who", role="doctor") == "x-org/who"
    assert someone("") == "—"


def test_an_sscc_is_labelled_and_grouped_at_its_company_prefix() -> None:
    assert sscc("169512340000000005", "6951234") == "SSCC 1 6951234 000000000 5"
    assert sscc("069512340000000012", "69512340") == "SSCC 0 69512340 00000001 2"
    assert sscc("169512340000000005") == "SSCC 1 6951234000000000 5"
    assert sscc("169512340000000005", "6951239") == "SSCC 1 6951234000000000 5"
    assert sscc("1695123400000000") == "1695123400000000"
    assert sscc(None) == "—"


def test_a_place_that_says_its_organisations_name_is_named_alone() -> None:
    hospital = "Guangzhou First People's Hospital"
    assert says_org(f"{hospital} vaccination clinic", hospital)
    assert says_org("Yuexiu Community Pharmacy", "Yuexiu  community pharmacy")
    assert says_org("Central store of Pearl Logistics", "Pearl Logistics")
    assert not says_org("Conghua plant", "Lingnan Biologics")
    assert says_org("Lingnan Biologics plant, Guangzhou", "Lingnan Biologics (vaccine maker)")
    assert not says_org("Vaccine maker's store", "Lingnan Biologics (vaccine maker)")
    assert not says_org("Guangzhou First", hospital)
    assert not says_org(None, hospital) and not says_org("Ward", None) and not says_org("", "")


def test_a_count_says_its_noun_in_the_singular_or_the_plural() -> None:
    assert counted(1, "lot") == "1 lot"
    assert [counted(n, "pack") for n in (0, 2, 10)] == ["0 packs", "2 packs", "10 packs"]
    assert counted(1, "case is", "cases are") == "1 case is"
    assert counted(3, "case is", "cases are") == "3 cases are"
    assert counted(0, "recall.", "recalls.", none="No lot is recalled.") == "No lot is recalled."
    assert counted(0, "recall.", "recalls.") == "0 recalls."


def test_a_machine_message_counts_in_words() -> None:
    assert plural_words("1 unit(s) quarantined") == "1 unit quarantined"
    assert plural_words("12 unit(s) quarantined, 1 pack(s) held") == (
        "12 units quarantined, 1 pack held"
    )
    assert plural_words("part(s) were refused") == "part(s) were refused"
    assert plural_words("no count here") == "no count here"
