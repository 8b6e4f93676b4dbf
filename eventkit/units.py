"""The administrative-unit registry every service shares: which unit codes exist, and what a pre-2025 code means now.

On 2025-07-01 Vietnam went from 63 provinces / 696 districts / 10,035 communes to 34 provinces and 3,321
communes with no district level (NQ 202/2025/QH15; DOMAIN §1, §9.1). Facts keep arriving for both periods:
dossiers received in 2024 are still reported, scored and rolled up. A unit code therefore means what it
meant on the day of the fact, and the registry answers "which current unit do I count this under?".

Source: the package data of ``vietnamadminunits`` 1.0.4, read as files (importing the package parses 4 MB
of JSON for its address parser and takes over a second); nothing is vendored, the maps are built on first
use. ``dataset.db`` holds the 2025 registry (34 provinces, 3,321 communes: 2,621 xã, 687 phường, 13 đặc
khu) and the legacy one as it stood on 2025-06-30 (63 provinces, 696 districts, 10,035 communes, GSO
codes); ``converter_2025.json`` the old -> new conversion, keyed by names.

Why not ``vietnam-provinces`` 2025.10.1 for the current codes: 123 of its 3,321 commune codes are not the
official ones (Decision 19/2025/QĐ-TTg). It gives Phường Cửa Nam, Hà Nội, 00073, the official code is
00082; it rotates Lý Quốc / Hạ Lang / Vinh Quý of Cao Bằng over 01558 / 01561 / 01537 (officially 01537 /
01558 / 01561). Its own later release 2026.9.0 (Python >= 3.12 only) corrects all 123 and then agrees
with ``vietnamadminunits`` on every code and name, as does a dataset generated from the GSO code service
(thanglequoc/vietnamese-provinces-database). Counting facts under 2025.10.1 would reject correct codes
and, worse, put some communes' facts under their neighbours. Per-province counts are the same in both.

Reading a code (``resolve``):

- on or after 2025-07-01 only current commune and province codes exist;
- before that, the code is read in the legacy registry first. 3,316 of the 3,321 current commune codes are
  also legacy codes: each new commune took the code of one of its constituents, which went wholly into it,
  so both readings agree, except for the 145 constituents that were divided (rejected, see below: the date
  says the producer meant the old commune). A legacy commune that went wholly into one current commune
  maps to it. A legacy district maps to its current province (a district always lies wholly inside one,
  checked at load): district one-stop shops handled much of the pre-merger work, and dropping it would
  hollow out the province history; ``legacy_district_code`` keeps it attributable. The five island
  districts without communes (Bạch Long Vĩ, Cồn Cỏ, Hoàng Sa, Lý Sơn, Côn Đảo) map to the special zones
  (đặc khu) that replaced them. A legacy province maps to the province it merged into;
- a code that is not a legacy code but is a current one is accepted as current at any date: some
  one-stop-shop systems re-coded their history after the merger. (Only the five special-zone codes fall
  here: every other current code is also a legacy code, and then the legacy meaning wins.)

Divided communes. 471 legacy communes are listed by the library as split between several current ones.
It flags one candidate per split as ``isDefaultNewWard``, but that flag is a geometric guess (the old
commune's Google-geocoded point tested against circles of the new communes' areas, else the nearest
centre; the library's CHALLENGES.md), not a legal designation, and it can be wrong: it sends both Xã Phú
Tân of Hậu Giang and of Sóc Trăng to Xã Thuận Hòa, while the merger text puts the Hậu Giang one in Xã Phú
Hữu. So a divided commune is rejected with its candidate codes: its facts cannot be split, and a wrong
guess would silently move them to another commune. One exception, where the split is an artefact of the
library's name join: when same-named legacy communes ended up in one current province (two Xã Tân Thạnh
in the new Cần Thơ), the merger text naming "Xã Tân Thạnh" in two new communes makes both look split
between the same two. When every such namesake is "split" over the same candidates, as many as there are
namesakes, and the geometric guesses give each a different one, each goes wholly to its guess (9 groups,
18 communes; the Phú Tân pair fails the test and stays rejected).

Known limits: communes abolished before 2025-06-30 (e.g. in the 2023-2025 merger rounds) are not in the
legacy registry, so their codes are rejected for any date; a producer that re-coded its history and sends
one of those 145 codes for a pre-2025 fact is rejected although it means the current commune.

``at`` is the fact's calendar day in Vietnam, a ``date`` (a ``datetime`` raises TypeError: which day an
instant falls on is the caller's decision). ``resolve`` is one or two dict lookups on the accepted path
(rejection reasons of divided communes are precomputed); the registry is built once per process, lazily,
by ``UnitRegistry.load()``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import re
import sqlite3
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

__all__ = ["MERGER_DATE", "ResolvedUnit", "Unit", "UnitDataError", "UnitRegistry"]

#: the two-tier local government starts; facts dated before it speak the legacy registry
MERGER_DATE = date(2025, 7, 1)

Level = Literal["province", "commune", "district"]

_CODE_SHAPE = re.compile(r"\d{2}|\d{3}|\d{5}")


class UnitDataError(RuntimeError):
    """The installed registry package cannot be read (missing, or not the data layout this module knows)."""


@dataclass(frozen=True, slots=True)
class Unit:
    """An administrative unit; ``legacy`` units are those of the pre-2025 registry (63 provinces, districts)."""

    code: str
    name: str
    level: Level
    province_code: str
    legacy: bool


@dataclass(frozen=True, slots=True)
class ResolvedUnit:
    """What a unit code given with a fact counts under now.

    ``unit_code`` is a current code: 5 digits for a commune, 2 for a province (a legacy district resolves
    to its province). The ``legacy_*`` fields are set when the code was read in the pre-2025 registry, so
    history can also be rolled up by the units of its time.
    """

    unit_code: str
    province_code: str
    legacy_code: str | None = None
    legacy_district_code: str | None = None
    legacy_province_code: str | None = None


class UnitRegistry:
    """Current (2025) and legacy units, and the map from legacy codes to current ones. Read-only."""

    def __init__(
        self,
        *,
        provinces: Iterable[Unit],
        communes: Iterable[Unit],
        legacy_units: Iterable[Unit],
        legacy_resolutions: Mapping[str, ResolvedUnit | str],
        successors: Mapping[str, tuple[str, ...]],
        version: str,
        stats: Mapping[str, int],
    ) -> None:
        #: the data the registry was built from, e.g. ``vietnamadminunits 1.0.4``
        self.version = version
        #: counts of units and of how legacy communes map (see ``_build``), for logs and metrics
        self.stats: Mapping[str, int] = MappingProxyType(dict(stats))
        self._provinces = {u.code: u for u in sorted(provinces, key=lambda u: u.code)}
        self._communes = {u.code: u for u in sorted(communes, key=lambda u: u.code)}
        self._legacy_units = {u.code: u for u in legacy_units}
        self._legacy = dict(legacy_resolutions)
        self._successors = dict(successors)
        by_province: dict[str, list[Unit]] = defaultdict(list)
        for unit in self._communes.values():
            by_province[unit.province_code].append(unit)
        self._communes_of = {code: tuple(units) for code, units in by_province.items()}
        self._current: dict[str, ResolvedUnit] = {
            u.code: ResolvedUnit(unit_code=u.code, province_code=u.province_code)
            for u in (*self._provinces.values(), *self._communes.values())
        }

    @classmethod
    def load(cls) -> UnitRegistry:
        """The process-wide registry, built from the installed package on first call (well under a second)."""
        return _registry()

    def resolve(self, code: str, at: date) -> ResolvedUnit | str:
        """The current unit ``code`` counts under for a fact of day ``at``, or the precise reason it cannot be
        counted."""
        if at >= MERGER_DATE:
            current = self._current.get(code)
            return current if current is not None else self._not_current(code)
        legacy = self._legacy.get(code)
        if legacy is not None:
            return legacy
        current = self._current.get(code)
        return current if current is not None else self._not_known(code)

    def commune(self, code: str) -> Unit | None:
        """The current commune (xã, phường, đặc khu) with this 5-digit code."""
        return self._communes.get(code)

    def province(self, code: str) -> Unit | None:
        """The current province with this 2-digit code."""
        return self._provinces.get(code)

    def communes_of(self, province_code: str) -> tuple[Unit, ...]:
        """The current communes of a current province, by code (empty for an unknown province)."""
        return self._communes_of.get(province_code, ())

    def provinces(self) -> tuple[Unit, ...]:
        """The 34 current provinces, by code."""
        return tuple(self._provinces.values())

    def legacy_unit(self, code: str) -> Unit | None:
        """The pre-2025 commune (5 digits), district (3) or province (2) with this code."""
        return self._legacy_units.get(code)

    def legacy_units(self, level: Level | None = None) -> tuple[Unit, ...]:
        """The pre-2025 units (of one level, if given), by code: for legacy rollups and their labels."""
        return tuple(u for _, u in sorted(self._legacy_units.items()) if level is None or u.level == level)

    def legacy_successors(self, legacy_commune_code: str) -> tuple[str, ...]:
        """The current commune code(s) a pre-2025 commune went into, sorted; several when it was divided."""
        return self._successors.get(legacy_commune_code, ())

    def _not_current(self, code: str) -> str:
        if not _CODE_SHAPE.fullmatch(code):
            return _malformed(code)
        reason = f"unit code {code!r} is not a commune or province of the 2025 registry ({self.version})"
        legacy = self._legacy_units.get(code)
        if legacy is None:
            return reason
        was = f"{reason}; it is the pre-2025 {legacy.level} {legacy.name!r}"
        if legacy.level == "commune":
            successors = self.legacy_successors(code)
            listed = ", ".join(repr(c) for c in successors)
            if len(successors) > 1:
                return f"{was}, divided between {listed}"
            return f"{was}, now {listed}" if successors else was
        resolved = self._legacy.get(code)
        return f"{was}, now in {resolved.unit_code!r}" if isinstance(resolved, ResolvedUnit) else was

    def _not_known(self, code: str) -> str:
        if not _CODE_SHAPE.fullmatch(code):
            return _malformed(code)
        return (
            f"unit code {code!r} is neither a commune, district or province of the pre-2025 registry nor a "
            f"current code ({self.version})"
        )


def _malformed(code: str) -> str:
    return f"unit code {code!r} is not a 2-digit province, 3-digit district or 5-digit commune code"


@functools.cache
def _registry() -> UnitRegistry:
    # functools.cache does not lock: two threads racing here build two equal registries and one is kept
    return _build()


# ---------------------------------------------------------------------------------------------- building

# tone marks (huyền, sắc, ngã, hỏi, nặng): spellings disagree on which vowel carries them ("Hoà"/"Hòa",
# "Thuỷ"/"Thủy"), so names are compared as (letters, the tone of each syllable)
_TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"
_WITHOUT_TONES = str.maketrans("", "", _TONE_MARKS)
_ALL_BUT_TONES = re.compile(f"[^ {_TONE_MARKS}]+")
# hyphen or en dash, spaced or not ("Chân Mây - Lăng Cô"); curly or straight apostrophes ("Ea H'Leo")
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015]+")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def _name_key(name: str) -> str:
    """A spelling-insensitive key for a unit name: two spellings of one name get the same key."""
    text = " ".join(_SEPARATORS.sub(" ", name.translate(_APOSTROPHES).casefold()).split())
    decomposed = unicodedata.normalize("NFD", text)
    letters = unicodedata.normalize("NFC", decomposed.translate(_WITHOUT_TONES))
    return f"{letters}|{_ALL_BUT_TONES.sub('', decomposed)}"  # the tones keep their syllable positions


@functools.cache
def _skeleton_table() -> dict[int, str | None]:
    """Casefolded text -> bare Latin letters: every mark, space, dash and apostrophe dropped."""
    table: dict[int, str | None] = {ord("đ"): "d"}
    for cp in (*range(0xC0, 0x250), *range(0x1E00, 0x1F00)):
        bare = "".join(ch for ch in unicodedata.normalize("NFD", chr(cp)) if not unicodedata.combining(ch))
        if bare != chr(cp):
            table[cp] = bare
    table.update(dict.fromkeys(range(0x300, 0x370)))  # combining marks of decomposed input
    table.update(dict.fromkeys(map(ord, " \t-\u2010\u2011\u2012\u2013\u2014\u2015'\u2018\u2019\u02bc")))
    return table


def _skeleton(name: str) -> str:
    """A cheap coarse key (one C call): names with equal ``_name_key`` always have equal skeletons."""
    return name.casefold().translate(_skeleton_table())


def _clean(name: str) -> str:
    return " ".join(name.split())  # guards against stray double spaces in names


@dataclass(frozen=True, slots=True)
class _LegacyCommune:
    """A row of the library's legacy table: a commune, or an island district without communes."""

    code: str | None  # None for the island districts (their conversion key ends in "_")
    name: str | None
    district_code: str
    province_code: str


@dataclass(frozen=True, slots=True)
class _Split:
    candidates: tuple[str | None, ...]  # None: a candidate missing from the current registry
    guess: str | None  # the library's geometric isDefaultNewWard


@dataclass(frozen=True, slots=True)
class _Conversion:
    """The library's conversion, by its ``province_district_ward`` name keys of legacy communes."""

    whole: dict[str, str | None]  # legacy key -> the current commune it went into wholly
    splits: dict[str, _Split]
    namesakes: dict[tuple[str, str], list[str]]  # (current province key, name key) -> legacy keys


def _build() -> UnitRegistry:
    version = f"vietnamadminunits {importlib.metadata.version('vietnamadminunits')}"
    data = _package_data("vietnamadminunits", "dataset.db", "converter_2025.json")
    database = data / "dataset.db"
    provinces, communes, current_by_key = _current_registry(database)
    legacy_units, legacy_by_key = _legacy_registry(database)
    try:
        with (data / "converter_2025.json").open(encoding="utf-8") as fh:
            conversion = _read_conversion(json.load(fh), current_by_key, legacy_by_key)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnitDataError(f"cannot read vietnamadminunits' converter_2025.json: {exc!r}") from exc
    repaired = _repair_namesake_splits(conversion.splits, conversion.namesakes)
    for key, code in repaired.items():
        conversion.whole[key] = code
        del conversion.splits[key]

    province_of = {u.code: u.province_code for u in communes}
    legacy, successors, unmapped = _commune_resolutions(legacy_by_key, conversion, province_of)
    legacy.update(_area_resolutions(legacy_units, legacy_by_key, conversion, province_of, set(legacy)))
    stats = {
        "provinces": len(provinces),
        "communes": len(communes),
        "legacy_provinces": sum(1 for u in legacy_units.values() if u.level == "province"),
        "legacy_districts": sum(1 for u in legacy_units.values() if u.level == "district"),
        "legacy_communes": sum(1 for u in legacy_units.values() if u.level == "commune"),
        "legacy_communes_whole": sum(1 for c in successors.values() if len(c) == 1),
        "legacy_communes_divided": sum(1 for c in successors.values() if len(c) > 1),
        "legacy_communes_namesake_repaired": sum(1 for k in repaired if legacy_by_key[k].code is not None),
        "legacy_communes_unmapped": unmapped,
    }
    return UnitRegistry(
        provinces=provinces,
        communes=communes,
        legacy_units=legacy_units.values(),
        legacy_resolutions=legacy,
        successors=successors,
        version=version,
        stats=stats,
    )


def _package_data(package: str, *files: str) -> Path:
    """The ``data`` folder of an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UnitDataError(f"the {package} package is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    for name in files:
        if not (data / name).is_file():
            raise UnitDataError(f"{package} has no data/{name} in {data.parent}")
    return data


def _query(database: Path, sql: str) -> list[tuple[Any, ...]]:
    try:
        with closing(sqlite3.connect(database.as_uri() + "?mode=ro&immutable=1", uri=True)) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.Error as exc:
        raise UnitDataError(f"cannot read {database}: {exc}") from exc


def _current_registry(database: Path) -> tuple[list[Unit], list[Unit], dict[tuple[str, str], str]]:
    """The 2025 provinces and communes, and each commune's code by the conversion's (province key, ward key)."""
    rows = _query(database, "SELECT provinceCode, province, provinceKey, wardCode, ward, wardKey FROM admin_units")
    provinces: dict[str, Unit] = {}
    communes: list[Unit] = []
    by_key: dict[tuple[str, str], str] = {}
    for pc, province, pk, wc, ward, wk in rows:
        province_code, code = str(pc), str(wc)
        if province_code not in provinces:
            provinces[province_code] = Unit(province_code, _clean(province), "province", province_code, legacy=False)
        communes.append(Unit(code, _clean(ward), "commune", province_code, legacy=False))
        by_key[(str(pk), str(wk))] = code
    return list(provinces.values()), communes, by_key


def _legacy_registry(database: Path) -> tuple[dict[str, Unit], dict[str, _LegacyCommune]]:
    """The pre-2025 units by code, and its communes by the conversion's ``province_district_ward`` key."""
    rows = _query(
        database,
        "SELECT provinceCode, province, districtCode, district, wardCode, ward, provinceKey, districtKey, wardKey"
        " FROM admin_units_legacy",
    )
    units: dict[str, Unit] = {}
    by_key: dict[str, _LegacyCommune] = {}
    for pc, province, dc, district, wc, ward, pk, dk, wk in rows:
        province_code, district_code = str(pc), str(dc)
        if district_code not in units:  # rows are communes: each province and district repeats
            units[province_code] = Unit(province_code, _clean(province), "province", province_code, legacy=True)
            units[district_code] = Unit(district_code, _clean(district), "district", province_code, legacy=True)
        if wc is not None:
            units[str(wc)] = Unit(str(wc), _clean(ward), "commune", province_code, legacy=True)
        by_key[f"{pk}_{dk}_{wk or ''}"] = _LegacyCommune(
            None if wc is None else str(wc), None if ward is None else _clean(ward), district_code, province_code
        )
    return units, by_key


def _read_conversion(
    raw: Any, current_by_key: Mapping[tuple[str, str], str], legacy_by_key: Mapping[str, _LegacyCommune]
) -> _Conversion:
    conversion = _Conversion({}, {}, {})
    # legacy communes of one current province by name skeleton, then refined by the exact name key (the
    # skeleton is cheap; name keys are computed only where a skeleton is shared and one commune is split)
    skeletons: dict[tuple[str, str], list[str]] = defaultdict(list)

    def note_name(province_key: str, legacy_key: str) -> None:
        old = legacy_by_key.get(legacy_key)
        if old is not None and old.name is not None:
            skeletons[(province_key, _skeleton(old.name))].append(legacy_key)

    for province_key, wards in raw["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for ward_key, legacy_keys in wards.items():
            for legacy_key in legacy_keys:
                conversion.whole[str(legacy_key)] = current_by_key.get((str(province_key), str(ward_key)))
                note_name(str(province_key), str(legacy_key))
    for province_key, divided in raw["DICT_PROVINCE_WARD_DIVIDED"].items():
        for legacy_key, options in divided.items():
            codes = [
                (current_by_key.get((str(province_key), str(o["newWardKey"]))), o["isDefaultNewWard"]) for o in options
            ]
            guesses = [code for code, is_default in codes if is_default is True]
            conversion.splits[str(legacy_key)] = _Split(
                tuple(code for code, _ in codes), guesses[0] if len(guesses) == 1 else None
            )
            note_name(str(province_key), str(legacy_key))
    for (province_key, _), members in skeletons.items():
        if len(members) > 1 and any(m in conversion.splits for m in members):
            for member in members:
                name = legacy_by_key[member].name or ""
                conversion.namesakes.setdefault((province_key, _name_key(name)), []).append(member)
    return conversion


def _repair_namesake_splits(
    splits: Mapping[str, _Split], namesakes: Mapping[tuple[str, str], list[str]]
) -> dict[str, str]:
    """Splits that are artefacts of same-named legacy communes, each mapped to its own successor.

    A group of namesakes qualifies when every one is "split", all over the same candidates, one candidate
    per namesake, and the library's geometric guesses pair them one to one.
    """
    repaired: dict[str, str] = {}
    for members in namesakes.values():
        if len(members) < 2 or any(m not in splits for m in members):
            continue
        candidate_sets = {frozenset(splits[m].candidates) for m in members}
        if len(candidate_sets) != 1:
            continue
        shared = next(iter(candidate_sets))
        guesses = [splits[m].guess for m in members]
        if len(shared) == len(members) and None not in shared and set(guesses) == shared:
            repaired.update((m, g) for m, g in zip(members, guesses, strict=True) if g is not None)
    return repaired


def _commune_resolutions(
    legacy_by_key: Mapping[str, _LegacyCommune], conversion: _Conversion, province_of: Mapping[str, str]
) -> tuple[dict[str, ResolvedUnit | str], dict[str, tuple[str, ...]], int]:
    """Legacy commune (and commune-less island district) code -> resolution; commune -> successors; unmapped."""
    resolved: dict[str, ResolvedUnit | str] = {}
    successors: dict[str, tuple[str, ...]] = {}
    unmapped = 0
    for key, old in legacy_by_key.items():
        new = conversion.whole.get(key)
        split = conversion.splits.get(key)
        if old.code is None:  # an island district without communes: it became a special zone
            if new is not None:
                resolved[old.district_code] = ResolvedUnit(
                    new, province_of[new], old.district_code, old.district_code, old.province_code
                )
        elif new is not None:
            resolved[old.code] = ResolvedUnit(new, province_of[new], old.code, old.district_code, old.province_code)
            successors[old.code] = (new,)
        elif split is not None and None not in split.candidates:
            candidates = tuple(sorted(c for c in split.candidates if c is not None))
            successors[old.code] = candidates
            resolved[old.code] = (
                f"legacy commune {old.code!r} ({old.name}) was divided between "
                f"{', '.join(repr(c) for c in candidates)}; send the current code"
            )
        else:
            unmapped += 1
            resolved[old.code] = (
                f"legacy commune {old.code!r} ({old.name}) has no current successor in the conversion data; "
                "send the current code"
            )
    return resolved, successors, unmapped


def _area_resolutions(
    legacy_units: Mapping[str, Unit],
    legacy_by_key: Mapping[str, _LegacyCommune],
    conversion: _Conversion,
    province_of: Mapping[str, str],
    done: set[str],
) -> dict[str, ResolvedUnit | str]:
    """Legacy district and province code -> the one current province all their communes went into."""
    reached: dict[str, set[str]] = defaultdict(set)
    for key, old in legacy_by_key.items():
        split = conversion.splits.get(key)
        for code in (conversion.whole.get(key), *(split.candidates if split else ())):
            if code is not None:
                reached[old.district_code].add(province_of[code])
                reached[old.province_code].add(province_of[code])
    resolved: dict[str, ResolvedUnit | str] = {}
    for unit in legacy_units.values():
        if unit.level == "commune" or unit.code in done:
            continue
        provinces = sorted(reached.get(unit.code, ()))
        if len(provinces) == 1:
            district = unit.code if unit.level == "district" else None
            resolved[unit.code] = ResolvedUnit(provinces[0], provinces[0], unit.code, district, unit.province_code)
        else:
            resolved[unit.code] = (
                f"legacy {unit.level} {unit.code!r} ({unit.name}) went into no single current province "
                f"({', '.join(repr(p) for p in provinces) or 'none found'}); send the current code"
            )
    return resolved
