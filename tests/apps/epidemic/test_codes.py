"""Pure data: disease codes, pseudonyms, regions, dates."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthledger.apps.epidemic.dates import day_number, iso
from healthledger.apps.epidemic.diseases import NOTIFIABLE_DISEASES, disease_for_icd10
from healthledger.apps.epidemic.pseudonym import (
    IdentifierError,
    normalise_identifier,
    pseudonym,
    resident_id_check,
)
from healthledger.apps.epidemic.regions import AdcodeCsvRegions, Region, RegionError, RegionTable
from tests.apps.epidemic.conftest import TEST_REGIONS
from tests.apps.epidemic.support import resident_id


@pytest.mark.parametrize(
    ("code", "disease"),
    [
        ("U07.1", "covid-19"),
        ("u07.2", "covid-19"),
        ("J10", "influenza"),
        ("J11.1", "influenza"),
        ("B05.9", "measles"),
        ("A15.0", "tuberculosis"),
        ("A19", "tuberculosis"),
        ("A90", "dengue"),
        ("A91", "dengue"),
        ("B08.4", "hfmd"),
    ],
)
def test_icd10_codes_map_to_notifiable_diseases(code: str, disease: str) -> None:
    assert disease_for_icd10(code).id == disease


@pytest.mark.parametrize("code", ["U07.3", "J12", "A14", "A20.0X", "B08.3", "Z00", "J1O", "", "A1"])
def test_other_codes_are_not_notifiable(code: str) -> None:
    with pytest.raises(ValueError):
        disease_for_icd10(code)


def test_disease_ids_are_unique() -> None:
    ids = [d.id for d in NOTIFIABLE_DISEASES]
    assert len(ids) == len(set(ids))


def test_resident_id_check_character_vector() -> None:
    # The GB 11643 worked example: 11010519491231002 -> check character X.
    assert resident_id_check("11010519491231002") == "X"
    assert normalise_identifier("NI", "110105 19491231 002x") == "NI:11010519491231002X"


@pytest.mark.parametrize(
    ("id_type", "number"),
    [("NI", "11010519491231002"), ("NI", "110105194912310021"), ("PPN", "E1"), ("XX", "123456")],
)
def test_bad_identifiers_are_refused(id_type: str, number: str) -> None:
    with pytest.raises(IdentifierError):
        normalise_identifier(id_type, number)


def test_passports_carry_their_country() -> None:
    assert normalise_identifier("PPN", "e1234-5678", country="CHN") == "PPN:CHN:E12345678"
    assert normalise_identifier("PPN", "E12345678", country="GBR") != normalise_identifier(
        "PPN", "E12345678", country="CHN"
    )


@given(
    st.integers(0, 999), st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32)
)
def test_pseudonyms_are_stable_per_key_and_differ_across_keys(
    serial: int, k1: bytes, k2: bytes
) -> None:
    ident = normalise_identifier("NI", resident_id(serial))
    assert pseudonym(k1, ident) == pseudonym(k1, ident)
    assert pseudonym(k1, ident).startswith("p1-") and len(pseudonym(k1, ident)) == 67
    if k1 != k2:
        assert pseudonym(k1, ident) != pseudonym(k2, ident)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError):
        pseudonym(b"short", "NI:x")


def test_region_table_hierarchy() -> None:
    table = RegionTable.from_source(TEST_REGIONS)
    assert len(table) == 6
    assert table.contains("440000", "440104")
    assert table.contains("440100", "440106")
    assert not table.contains("440300", "440104")
    assert table.get("440304") is not None
    only_sz = RegionTable.from_source(TEST_REGIONS, province="440000")
    assert len(only_sz) == 6


@pytest.mark.parametrize(
    "regions",
    [
        [Region("44000", "short", "province", None)],
        [Region("440100", "orphan", "city", "440000")],
        [
            Region("440000", "p", "province", None),
            Region("440100", "c", "city", "440000"),
            Region("440300", "city in a city", "city", "440100"),
        ],
        [Region("440000", "p", "province", None), Region("440000", "p", "province", None)],
        [Region("440000", "p", "province", "110000")],
    ],
)
def test_inconsistent_region_tables_are_refused(regions: list[Region]) -> None:
    with pytest.raises(RegionError):
        RegionTable(regions)


def test_regions_round_trip_through_state_form() -> None:
    for region in TEST_REGIONS.regions():
        assert Region.from_json(region.to_json()) == region


@given(st.integers(0, 60_000))
def test_day_numbers_round_trip(day: int) -> None:
    assert day_number(iso(day)) == day == day_number(day)


@pytest.mark.parametrize("value", ["2026-13-01", "2026/11/01", "1969-12-31", -1, True])
def test_bad_dates(value: int | str) -> None:
    with pytest.raises(ValueError):
        day_number(value)


ADCODE_CSV = """adcode,name,longitude,latitude
440000000000,广东省,113.26641,23.132324
440100000000,广州市,113.264385,23.12911
440105000000,海珠区,113.317443,23.083788
441900000000,东莞市,113.751799,23.020673
420000000000,湖北省,114.341861,30.546498
429004000000,仙桃市,113.453974,30.364953
"""


def test_an_adcode_csv_is_a_region_source() -> None:
    table = RegionTable.from_source(AdcodeCsvRegions(ADCODE_CSV), province="440000")
    assert [r.code for r in table] == ["440000", "440100", "440105", "441900"]
    haizhu = table.get("440105")
    assert haizhu == Region("440105", "海珠区", "district", "440100", 23_083_788, 113_317_443)
    whole = RegionTable.from_source(AdcodeCsvRegions(ADCODE_CSV))
    xiantao = whole.get("429004")
    assert xiantao is not None and xiantao.parent == "420000"  # province-administered


@pytest.mark.parametrize(
    "row", ["4401x0000000,x,1,2", "440100000001,x,1,2", "440100000000,x,east,2", "440100000000,x"]
)
def test_bad_adcode_rows_are_refused_with_their_line(row: str) -> None:
    text = "adcode,name,longitude,latitude\n440000000000,p,1,2\n" + row + "\n"
    with pytest.raises(RegionError, match="line 3"):
        RegionTable.from_source(AdcodeCsvRegions(text))


def test_a_region_without_a_centroid_is_kept_without_one() -> None:
    text = "adcode,name,longitude,latitude\n650000000000,p,87.6,43.8\n659009000000,k,,\n"
    region = RegionTable.from_source(AdcodeCsvRegions(text)).get("659009")
    assert region is not None and region.parent == "650000"
    assert (region.lat_e6, region.lon_e6) == (None, None)
    assert "lat_e6" not in region.to_json()
