"""The unit registry on the real package data: current units, legacy codes read by the fact's date, divided
communes, district and province history, speed, and laziness.

Expected values come from the data itself and from DOMAIN §9.1 (Hà Nội 126, TP.HCM 168, Lai Châu 38 communes);
the legacy communes are real ones named in /work/shared/seeds (plans of xã Quảng Công, huyện Quảng Điền,
2020; xã Ba Nam, 2023; huyện Hướng Hóa, 2020).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path

import pytest
import vietnam_provinces
from vietnam_provinces import Province, Ward

from eventkit.units import MERGER_DATE, ResolvedUnit, Unit, UnitRegistry, _name_key, _skeleton

BEFORE = date(2024, 5, 20)
AFTER = date(2025, 9, 1)
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry() -> UnitRegistry:
    return UnitRegistry.load()


def name(unit: Unit | None) -> str:
    assert unit is not None
    return unit.name


# ------------------------------------------------------------------------------------------- current units


def test_the_2025_registry_has_34_provinces_and_3321_communes(registry: UnitRegistry) -> None:
    provinces = registry.provinces()
    assert len(provinces) == 34
    assert [p.code for p in provinces] == sorted(p.code for p in provinces)
    assert all(p.level == "province" and not p.legacy and p.province_code == p.code for p in provinces)
    communes = [c for p in provinces for c in registry.communes_of(p.code)]
    assert len(communes) == 3321
    assert Counter(c.name.split()[0] for c in communes) == {"Xã": 2621, "Phường": 687, "Đặc": 13}  # DOMAIN §9.1


def test_commune_counts_per_province_match_the_domain_figures(registry: UnitRegistry) -> None:
    counts = {p.code: len(registry.communes_of(p.code)) for p in registry.provinces()}
    assert counts["01"] == 126  # Hà Nội
    assert counts["79"] == 168  # TP.HCM, the most
    assert counts["12"] == 38  # Lai Châu, the fewest
    assert min(counts, key=counts.__getitem__) == "12"
    assert max(counts, key=counts.__getitem__) == "79"


def test_communes_of_lists_a_provinces_own_communes_by_code(registry: UnitRegistry) -> None:
    hanoi = registry.communes_of("01")
    assert [c.code for c in hanoi] == sorted(c.code for c in hanoi)
    assert all(c.province_code == "01" and c.level == "commune" and not c.legacy for c in hanoi)
    assert registry.commune(hanoi[0].code) == hanoi[0]
    assert registry.communes_of("02") == ()  # Hà Giang is no current province
    assert registry.province("01") is not None
    assert name(registry.province("01")) == "Thành phố Hà Nội"
    assert registry.province("02") is None
    assert registry.commune("01") is None


def test_codes_are_the_official_ones_not_those_of_vietnam_provinces_2025_10_1(registry: UnitRegistry) -> None:
    # Decision 19/2025/QĐ-TTg: Phường Cửa Nam is 00082; Cao Bằng's Lý Quốc / Hạ Lang / Vinh Quý are
    # 01537 / 01558 / 01561 (vietnam-provinces 2025.10.1 has 00073 and a rotation of the three)
    assert name(registry.commune("00082")) == "Phường Cửa Nam"
    assert registry.commune("00073") is None
    assert {c: name(registry.commune(c)) for c in ("01537", "01558", "01561")} == {
        "01537": "Xã Lý Quốc",
        "01558": "Xã Hạ Lang",
        "01561": "Xã Vinh Quý",
    }


def test_cross_check_with_the_installed_vietnam_provinces(registry: UnitRegistry) -> None:
    """Same provinces and per-province counts; the commune codes it gets wrong are exactly the known ones."""
    assert {f"{p.code:02d}" for p in Province.iter_all()} == {p.code for p in registry.provinces()}
    theirs = Counter(f"{w.province_code:02d}" for w in Ward.iter_all())
    assert theirs == {p.code: len(registry.communes_of(p.code)) for p in registry.provinces()}
    disagreeing = [
        w
        for w in Ward.iter_all()
        if (ours := registry.commune(f"{w.code:05d}")) is None or _name_key(ours.name) != _name_key(w.name)
    ]
    # 2025.10.1 has 123 codes that its own release 2026.9.0 (Python >= 3.12) corrected to the official ones
    assert len(disagreeing) == {"2025.10.1": 123}.get(vietnam_provinces.__version__, 0)


def test_every_current_code_resolves_to_itself_from_the_merger_on(registry: UnitRegistry) -> None:
    units = [*registry.provinces(), *(c for p in registry.provinces() for c in registry.communes_of(p.code))]
    for unit in units:
        for at in (MERGER_DATE, AFTER):
            assert registry.resolve(unit.code, at) == ResolvedUnit(unit.code, unit.province_code)


# ------------------------------------------------------------------------------------------- legacy communes


def test_a_legacy_commune_from_the_seeds_maps_to_the_commune_it_went_into(registry: UnitRegistry) -> None:
    # seed 000: "UBND xã Quảng Công" plans its 2020 PAR work under "UBND huyện Quảng Điền" (Thừa Thiên Huế)
    old = registry.legacy_unit("19879")
    assert old is not None
    assert (old.name, old.level, old.province_code, old.legacy) == ("Xã Quảng Công", "commune", "46", True)
    assert name(registry.legacy_unit("477")) == "Huyện Quảng Điền"
    resolved = registry.resolve("19879", date(2020, 4, 16))
    assert resolved == ResolvedUnit(
        "19873", "46", legacy_code="19879", legacy_district_code="477", legacy_province_code="46"
    )
    assert name(registry.commune("19873")) == "Phường Phong Quảng"
    assert registry.legacy_successors("19879") == ("19873",)
    # seed 003: xã Ba Nam (huyện Ba Tơ, Quảng Ngãi), plan for 2024
    assert registry.resolve("21535", date(2023, 12, 25)) == ResolvedUnit("21523", "51", "21535", "535", "51")
    assert name(registry.commune("21523")) == "Xã Ba Tô"


def test_the_merger_day_switches_registries(registry: UnitRegistry) -> None:
    assert isinstance(registry.resolve("19879", date(2025, 6, 30)), ResolvedUnit)
    reason = registry.resolve("19879", MERGER_DATE)
    assert reason == (
        "unit code '19879' is not a commune or province of the 2025 registry (vietnamadminunits 1.0.4); "
        "it is the pre-2025 commune 'Xã Quảng Công', now '19873'"
    )


def test_a_code_both_registries_know_is_read_by_the_date(registry: UnitRegistry) -> None:
    # 00004 was Phường Trúc Bạch (quận Ba Đình); the new Phường Ba Đình took its code
    assert name(registry.legacy_unit("00004")) == "Phường Trúc Bạch"
    assert name(registry.commune("00004")) == "Phường Ba Đình"
    assert registry.resolve("00004", BEFORE) == ResolvedUnit("00004", "01", "00004", "001", "01")
    assert registry.resolve("00004", AFTER) == ResolvedUnit("00004", "01")


def test_a_divided_commune_is_rejected_with_its_candidates(registry: UnitRegistry) -> None:
    # Phường Cửa Nam (quận Hoàn Kiếm) was split over four new phường; its facts cannot be split
    assert registry.resolve("00073", BEFORE) == (
        "legacy commune '00073' (Phường Cửa Nam) was divided between '00004', '00070', '00082', '00226'; "
        "send the current code"
    )
    assert registry.legacy_successors("00073") == ("00004", "00070", "00082", "00226")
    assert registry.resolve("00073", AFTER) == (
        "unit code '00073' is not a commune or province of the 2025 registry (vietnamadminunits 1.0.4); "
        "it is the pre-2025 commune 'Phường Cửa Nam', divided between '00004', '00070', '00082', '00226'"
    )
    # a divided commune whose code a successor took: before the merger the code means the old commune
    assert registry.resolve("31582", BEFORE) == (
        "legacy commune '31582' (Xã Phú Tân) was divided between '31378', '31582'; send the current code"
    )
    assert registry.resolve("31582", AFTER) == ResolvedUnit("31582", "92")


def test_namesake_splits_of_the_library_are_repaired_only_when_unambiguous(registry: UnitRegistry) -> None:
    # two Xã Tân Thạnh (Thới Lai, Cần Thơ; Long Phú, Sóc Trăng) each went wholly into one new commune
    assert registry.resolve("31268", BEFORE) == ResolvedUnit("31288", "92", "31268", "927", "92")
    assert name(registry.commune("31288")) == "Xã Trường Thành"
    assert registry.resolve("31666", BEFORE) == ResolvedUnit("31666", "92", "31666", "946", "94")
    # the two Xã Phú Tân: the library's geometric guesses collide, so both stay rejected
    for code in ("31379", "31582"):
        assert isinstance(registry.resolve(code, BEFORE), str)
        assert registry.legacy_successors(code) == ("31378", "31582")


def test_how_the_legacy_communes_map(registry: UnitRegistry) -> None:
    stats = registry.stats
    assert stats["legacy_communes"] == 10035  # DOMAIN §9.1
    assert stats["legacy_districts"] == 696
    assert stats["legacy_provinces"] == 63
    assert stats["legacy_communes_whole"] == 9582  # incl. the 18 repaired namesakes
    assert stats["legacy_communes_divided"] == 453
    assert stats["legacy_communes_namesake_repaired"] == 18
    assert stats["legacy_communes_unmapped"] == 0
    assert stats["legacy_communes_whole"] + stats["legacy_communes_divided"] == stats["legacy_communes"]


def test_every_legacy_commune_lands_in_its_legacy_provinces_successor(registry: UnitRegistry) -> None:
    legacy_communes = registry.legacy_units("commune")
    outcomes: Counter[str] = Counter()
    for old in legacy_communes:
        province = registry.resolve(old.province_code, BEFORE)
        assert isinstance(province, ResolvedUnit)
        resolved = registry.resolve(old.code, BEFORE)
        successors = registry.legacy_successors(old.code)
        assert {u.province_code for c in successors if (u := registry.commune(c))} == {province.unit_code}
        if isinstance(resolved, ResolvedUnit):
            assert resolved.province_code == province.unit_code
            assert (resolved.legacy_code, resolved.legacy_province_code) == (old.code, old.province_code)
            assert successors == (resolved.unit_code,)
            outcomes["whole"] += 1
        else:
            assert "was divided between" in resolved
            assert len(successors) > 1
            outcomes["divided"] += 1
    assert outcomes == {"whole": 9582, "divided": 453}


# -------------------------------------------------------------------------------- districts and provinces


def test_a_legacy_district_counts_under_its_current_province(registry: UnitRegistry) -> None:
    assert registry.resolve("477", BEFORE) == ResolvedUnit("46", "46", "477", "477", "46")
    # seed 001: UBND huyện Hướng Hóa (Quảng Trị, 45), now in the merged Quảng Trị (44)
    assert name(registry.legacy_unit("465")) == "Huyện Hướng Hóa"
    assert registry.resolve("465", date(2020, 6, 17)) == ResolvedUnit("44", "44", "465", "465", "45")
    assert registry.resolve("465", AFTER) == (
        "unit code '465' is not a commune or province of the 2025 registry (vietnamadminunits 1.0.4); "
        "it is the pre-2025 district 'Huyện Hướng Hóa', now in '44'"
    )
    districts = registry.legacy_units("district")
    assert all(isinstance(registry.resolve(d.code, BEFORE), ResolvedUnit) for d in districts)


def test_island_districts_became_special_zones(registry: UnitRegistry) -> None:
    zones = {"318": "11948", "471": "19742", "498": "20333", "536": "21548", "755": "26732"}
    for district, zone in zones.items():
        resolved = registry.resolve(district, BEFORE)
        assert isinstance(resolved, ResolvedUnit)
        assert (resolved.unit_code, resolved.legacy_district_code) == (zone, district)
        assert name(registry.commune(zone)).startswith("Đặc khu")


def test_legacy_provinces_map_to_the_province_they_merged_into(registry: UnitRegistry) -> None:
    merged = {"02": "08", "35": "37", "74": "79", "77": "79", "93": "92", "94": "92", "64": "52", "52": "52"}
    for old, new in merged.items():
        assert registry.resolve(old, BEFORE) == ResolvedUnit(new, new, old, None, old)
    legacy = registry.legacy_units("province")
    targets: dict[str, set[str]] = defaultdict(set)
    for province in legacy:
        resolved = registry.resolve(province.code, BEFORE)
        assert isinstance(resolved, ResolvedUnit)
        targets[resolved.unit_code].add(province.code)
    assert len(targets) == 34
    assert all(code in olds for code, olds in targets.items())  # each current province kept one old code
    assert registry.resolve("02", AFTER) == (
        "unit code '02' is not a commune or province of the 2025 registry (vietnamadminunits 1.0.4); "
        "it is the pre-2025 province 'Tỉnh Hà Giang', now in '08'"
    )


def test_a_current_code_unknown_to_the_legacy_registry_is_accepted_before_the_merger(
    registry: UnitRegistry,
) -> None:
    # Đặc khu Côn Đảo's code is new; a producer that re-coded its history may send it for 2024 facts
    assert registry.legacy_unit("26732") is None
    assert registry.resolve("26732", BEFORE) == ResolvedUnit("26732", "79")


# ----------------------------------------------------------------------------------------------- rejections


@pytest.mark.parametrize("code", ["99999", "999", "00"])
def test_unknown_codes_are_rejected_for_any_date(registry: UnitRegistry, code: str) -> None:
    assert registry.resolve(code, AFTER) == (
        f"unit code '{code}' is not a commune or province of the 2025 registry (vietnamadminunits 1.0.4)"
    )
    assert registry.resolve(code, BEFORE) == (
        f"unit code '{code}' is neither a commune, district or province of the pre-2025 registry nor a "
        "current code (vietnamadminunits 1.0.4)"
    )


@pytest.mark.parametrize("code", ["", "1", "1234", "123456", "abcde", " 0004"])
def test_malformed_codes_are_named_as_such(registry: UnitRegistry, code: str) -> None:
    for at in (BEFORE, AFTER):
        assert registry.resolve(code, at) == (
            f"unit code {code!r} is not a 2-digit province, 3-digit district or 5-digit commune code"
        )
    assert registry.legacy_successors(code) == ()


def test_a_datetime_is_refused_the_caller_decides_the_day(registry: UnitRegistry) -> None:
    with pytest.raises(TypeError):
        registry.resolve("01", datetime(2025, 6, 30, 20, 0))  # 03:00 on 1 July in Vietnam if this were UTC


# --------------------------------------------------------------------------------- building, speed, names


def test_load_builds_once_and_never_at_import_time() -> None:
    assert UnitRegistry.load() is UnitRegistry.load()
    probe = (
        "import sys, eventkit.units as units\n"
        "assert units._registry.cache_info().currsize == 0\n"
        "assert 'vietnamadminunits' not in sys.modules and 'vietnam_provinces' not in sys.modules\n"
        "units.UnitRegistry.load()\n"
        "assert 'vietnamadminunits' not in sys.modules  # its data is read as files\n"
    )
    subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, check=True, timeout=60)


def test_resolve_is_plain_lookups(registry: UnitRegistry) -> None:
    codes = ["19879", "00004", "00073", "477", "02", "79", "26732", "99999"] * 25_000
    started = time.perf_counter()
    for code in codes:
        registry.resolve(code, BEFORE)
        registry.resolve(code, AFTER)
    elapsed = time.perf_counter() - started
    assert len(codes) * 2 / elapsed > 50_000  # the need is >10k/s; this machine does millions of hits per second


def test_name_keys_ignore_spelling_variants_only() -> None:
    assert _name_key("Xã Hoà Bình") == _name_key("Xã Hòa Bình")
    assert _name_key("Xã Thuỷ An") == _name_key("Xã  Thủy An")
    assert _name_key("Xã Chân Mây - Lăng Cô") == _name_key("Xã Chân Mây \u2013 Lăng Cô")
    assert _name_key("Xã Ea H'Leo") == _name_key("Xã Ea H\u2019leo")
    assert _name_key("Xã Văn Lang") != _name_key("Xã Văn Lăng")
    assert _name_key("Xã Văn Lang") != _name_key("Xã Văn Lãng")


def test_equal_name_keys_always_have_equal_skeletons(registry: UnitRegistry) -> None:
    """The cheap skeleton pre-groups names for the namesake check; it must never separate equal names."""
    names = {u.name for u in registry.legacy_units()} | {
        c.name for p in registry.provinces() for c in registry.communes_of(p.code)
    }
    names |= {"Xã Hoà Bình", "Xã Hòa Bình", "Xa\u0300 Ho\u0300a Bi\u0300nh", "Xã Chân Mây \u2013 Lăng Cô"}
    skeletons: dict[str, set[str]] = defaultdict(set)
    for name in names:
        skeletons[_name_key(name)].add(_skeleton(name))
    assert all(len(found) == 1 for found in skeletons.values())
