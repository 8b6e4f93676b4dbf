"""The TTHC catalogue (CSDL QG về TTHC snapshot, DOMAIN §2.1) and the Decision 766 indicators that need it.

Pure: row validation for ``chiso catalogue import`` and the catalogue-dependent indicators (DOMAIN §5.3, §5.5)
from the catalogue and per-procedure dossier aggregates. A procedure is versioned by ``effective_from`` (one
version per publishing decision); a dossier is judged against the version in force on its receipt day, a
point-in-time ratio (3.1, 3.2 and 3.5a denominators) against the versions in force on the period's last day.
Tags on every indicator: [V] formula from F766 as DOMAIN quotes it, [I] our reading, [U] unverified.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.scoring.domain.indicators import IndicatorValue, Kind, NaReason

__all__ = [
    "Catalogue",
    "Procedure",
    "Rejected",
    "TthcDay",
    "catalogue_values",
    "levels_for_scope",
    "validate_rows",
]

_LEVELS = {
    "tỉnh": "province",
    "tinh": "province",
    "province": "province",
    "xã": "commune",
    "xa": "commune",
    "commune": "commune",
    "huyện": "district",
    "huyen": "district",
    "district": "district",
}
_TIME_UNITS = {
    "giờ": "hours",
    "hours": "hours",
    "ngày": "days",
    "days": "days",
    "ngày làm việc": "working_days",
    "working_days": "working_days",
    "tháng": "months",
    "months": "months",
}
_ONLINE = {
    "toàn trình": "full",
    "full": "full",
    "một phần": "partial",
    "partial": "partial",
    "none": "none",
    "không": "none",
    "": "none",
}
_BOOLS = {"true": True, "1": True, "có": True, "yes": True, "false": False, "0": False, "không": False, "no": False}
_MA_TTHC = re.compile(r"^\d\.\d{6}(\.\d+)?$")
_CITIZEN = {"công dân", "cong dan", "citizen", "individual"}


@dataclass(frozen=True, slots=True)
class Procedure:
    """One version of a TTHC (DOMAIN §2.1)."""

    ma_tthc: str
    name: str
    level: str  # province | commune | district
    statutory_time_value: float
    statutory_time_unit: str  # hours | days | working_days | months
    online_level: str  # full | partial | none
    has_fee: bool
    requires_paper_result: bool
    eligible_full_online: bool
    decision_no: str
    decision_date: date
    effective_from: date
    subject: str = ""  # công dân / doanh nghiệp / ... ('' = not given)
    source: str = ""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A refused row: which line, which field, which value, which rule."""

    line: int
    field: str
    value: str
    rule: str


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    return "" if value is None else str(value).strip()


def _parse_row(line: int, raw: Mapping[str, Any]) -> Procedure | Rejected:  # noqa: PLR0911, PLR0912 - one exit per rule
    def bad(field: str, rule: str) -> Rejected:
        return Rejected(line, field, _text(raw, field), rule)

    ma = _text(raw, "ma_tthc")
    if not _MA_TTHC.match(ma):
        return bad("ma_tthc", "a TTHC code like 1.001193 (digit, dot, six digits)")
    name = _text(raw, "name")
    if not name:
        return bad("name", "required")
    level = _LEVELS.get(_text(raw, "level").lower())
    if level is None:
        return bad("level", f"one of {sorted(set(_LEVELS))}")
    try:
        time_value = float(_text(raw, "statutory_time_value"))
    except ValueError:
        return bad("statutory_time_value", "a number")
    if not time_value > 0:
        return bad("statutory_time_value", "greater than 0")
    unit = _TIME_UNITS.get(_text(raw, "statutory_time_unit").lower())
    if unit is None:
        return bad("statutory_time_unit", "giờ | ngày | ngày làm việc | tháng (F766 2.2 DonViTinh)")
    online = _ONLINE.get(_text(raw, "online_level").lower())
    if online is None:
        return bad("online_level", "toàn trình | một phần | none")
    flags: dict[str, bool] = {}
    for flag in ("has_fee", "requires_paper_result", "eligible_full_online"):
        parsed = _BOOLS.get(_text(raw, flag).lower())
        if parsed is None:
            return bad(flag, "true | false")
        flags[flag] = parsed
    if online == "full" and not flags["eligible_full_online"]:
        return bad("eligible_full_online", "a TTHC offered toàn trình must be eligible for toàn trình")
    decision_no = _text(raw, "decision_no")
    if not decision_no:
        return bad("decision_no", "required (the publishing decision, QĐ công bố)")
    dates: dict[str, date] = {}
    for field in ("decision_date", "effective_from"):
        try:
            dates[field] = date.fromisoformat(_text(raw, field))
        except ValueError:
            return bad(field, "a date YYYY-MM-DD")
    return Procedure(
        ma_tthc=ma,
        name=name,
        level=level,
        statutory_time_value=time_value,
        statutory_time_unit=unit,
        online_level=online,
        has_fee=flags["has_fee"],
        requires_paper_result=flags["requires_paper_result"],
        eligible_full_online=flags["eligible_full_online"],
        decision_no=decision_no,
        decision_date=dates["decision_date"],
        effective_from=dates["effective_from"],
        subject=_text(raw, "subject"),
        source=_text(raw, "source"),
    )


def validate_rows(rows: Iterable[Mapping[str, Any]], first_line: int = 2) -> tuple[list[Procedure], list[Rejected]]:
    """Accepted procedure versions and rejected rows; a second row for the same (ma_tthc, effective_from) is
    rejected (a version is one publishing decision). ``first_line``: the line number of the first row (2 for a
    CSV with a header, 1 for JSON lines)."""
    accepted: list[Procedure] = []
    rejected: list[Rejected] = []
    seen: dict[tuple[str, date], int] = {}
    for i, raw in enumerate(rows):
        line = first_line + i
        parsed = _parse_row(line, raw)
        if isinstance(parsed, Rejected):
            rejected.append(parsed)
            continue
        key = (parsed.ma_tthc, parsed.effective_from)
        if key in seen:
            rejected.append(
                Rejected(line, "effective_from", parsed.effective_from.isoformat(), f"duplicate of line {seen[key]}")
            )
            continue
        seen[key] = line
        accepted.append(parsed)
    return accepted, rejected


class Catalogue:
    """Every stored version of every procedure; the version in force on a day."""

    def __init__(self, procedures: Iterable[Procedure]) -> None:
        versions: dict[str, list[Procedure]] = {}
        for p in procedures:
            versions.setdefault(p.ma_tthc, []).append(p)
        self._versions = {k: sorted(v, key=lambda p: p.effective_from) for k, v in versions.items()}

    def __bool__(self) -> bool:
        return bool(self._versions)

    def in_force(self, ma_tthc: str, day: date) -> Procedure | None:
        """The version of ``ma_tthc`` in force on ``day`` (latest ``effective_from`` not after it)."""
        found = None
        for p in self._versions.get(ma_tthc, ()):
            if p.effective_from > day:
                break
            found = p
        return found

    def at(self, day: date, levels: frozenset[str]) -> list[Procedure]:
        """The procedures of the given levels in force on ``day``."""
        out = []
        for ma in sorted(self._versions):
            p = self.in_force(ma, day)
            if p is not None and p.level in levels:
                out.append(p)
        return out


def levels_for_scope(unitcode: str) -> frozenset[str]:
    """Which procedure levels are "under the unit's competence" (F766 3.1) [I]: a commune's are the commune
    level; a province rollup (the province and all its child units, F766 3.2/4.1) the province and commune
    levels; a pre-2025 district the district and commune levels."""
    return {
        2: frozenset({"province", "commune"}),
        3: frozenset({"district", "commune"}),
        5: frozenset({"commune"}),
    }[len(unitcode)]


@dataclass(frozen=True, slots=True)
class TthcDay:
    """The dossiers of one TTHC received on one day (UTC+7) in a scope."""

    ma_tthc: str
    day: date
    received: int = 0
    online: int = 0
    #: online and, when a result was issued, an electronic one (the d766.3_3.online contribution)
    online_result_ok: int = 0
    #: with a fee > 0 and synced to DVCQG (3.5a "syncing non-zero fee data")
    fee_synced: int = 0
    #: account authenticated with VNeID (4.5a)
    vneid: int = 0


_CAT = "DOMAIN §5.3"


def _value(  # noqa: PLR0917 - the parts of an IndicatorValue, in its order
    key: str, name: str, num: float, den: float, source: str, detail: str = "", factor: IndicatorValue | None = None
) -> IndicatorValue:
    if den == 0:
        return IndicatorValue(
            key, name, Kind.RATIO, num, den, None, NaReason.EMPTY_DENOMINATOR, detail or "nothing to measure", source
        )
    value = num / den
    if factor is not None:
        if factor.value is None:
            reason = factor.na_reason or NaReason.MISSING_REFERENCE_DATA
            return IndicatorValue(
                key, name, Kind.RATIO, num, den, None, reason, f"needs {factor.key}: {factor.detail}", source
            )
        value *= factor.value
    return IndicatorValue(key, name, Kind.RATIO, num, den, round(value, 4), None, detail, source)


def catalogue_values(
    catalogue: Catalogue,
    levels: frozenset[str],
    last_day: date,
    rows: Sequence[TthcDay],
    sync_ratio: IndicatorValue | None,
) -> dict[str, IndicatorValue]:
    """The catalogue-dependent 766 indicators of one scope and period; {} when no catalogue is loaded.

    ``rows``: the scope's received dossiers in the period per (TTHC, day); ``sync_ratio``: the 1.4 value
    (3.3 is multiplied by it, F766).
    """
    if not catalogue:
        return {}
    offered = catalogue.at(last_day, levels)
    out: dict[str, IndicatorValue] = {}
    # 3.1 [V F766 3.1] TTHC with DVCTT một phần or toàn trình / TTHC under the unit's competence; [I] competence
    # = every catalogue TTHC of the unit's level in force on the period's last day
    online = [p for p in offered if p.online_level != "none"]
    out["d766.3_1"] = _value(
        "d766.3_1",
        "Tỷ lệ TTHC cung cấp DVCTT",
        len(online),
        len(offered),
        f"{_CAT} 3.1 [V F766]: TTHC with DVCTT (một phần/toàn trình) / TTHC of the unit's level in the catalogue "
        "[I: competence = the catalogue's procedures of that level in force at the period end]",
    )
    eligible = [p for p in offered if p.eligible_full_online]
    out["d766.3_1_full"] = _value(
        "d766.3_1_full",
        "Tỷ lệ TTHC cung cấp DVCTT toàn trình / TTHC đủ điều kiện",
        sum(1 for p in eligible if p.online_level == "full"),
        len(eligible),
        f"{_CAT} 3.1 sub-ratio [V F766]: toàn trình / TTHC eligible for toàn trình",
    )
    by_tthc: dict[str, list[TthcDay]] = {}
    for r in rows:
        by_tthc.setdefault(r.ma_tthc, []).append(r)
    # 3.2 [V F766 3.2, updated rule] DVC with >= 1 online-received dossier / DVC; [I] one DVC per TTHC offered
    # online, "online-received" = KenhThucHien 2 in the period
    used = [p for p in online if sum(r.online for r in by_tthc.get(p.ma_tthc, ())) > 0]
    out["d766.3_2"] = _value(
        "d766.3_2",
        "Tỷ lệ DVCTT có phát sinh hồ sơ",
        len(used),
        len(online),
        f"{_CAT} 3.2 [V F766]: DVC with ≥1 online dossier / DVC [I: one DVC per TTHC offered online]",
    )
    # per dossier-day: the version in force at receipt (DOMAIN §2.1 "a dossier references the version in force")
    full_num = full_den = paper_num = received = uncatalogued = 0
    for r in rows:
        p = catalogue.in_force(r.ma_tthc, r.day)
        received += r.received
        if p is None:
            uncatalogued += r.received
            paper_num += r.online_result_ok  # the service's assumption stays: a paper result is required
            continue
        paper_num += r.online_result_ok if p.requires_paper_result else r.online
        if p.eligible_full_online:
            full_den += r.received
            if p.online_level == "full":
                full_num += r.online
    note = f"{uncatalogued} dossier(s) of TTHC not in the catalogue" if uncatalogued else ""
    out["d766.3_full_online"] = _value(
        "d766.3_full_online",
        "Hồ sơ DVCTT toàn trình trên tổng hồ sơ TTHC đủ điều kiện toàn trình",
        full_num,
        full_den,
        f"{_CAT} M766 row 7 [I: formula not in F766]: online dossiers of TTHC offered toàn trình / dossiers of TTHC "
        "eligible for toàn trình, the version in force at receipt",
        note,
    )
    out["d766.3_3"] = _value(
        "d766.3_3",
        "Tỷ lệ hồ sơ TTHC nộp trực tuyến",
        paper_num,
        received,
        f"{_CAT} 3.3 [V F766]: online received with an electronic result when the TTHC requires a paper result "
        "(catalogue, version at receipt) / all received, times the 1.4 sync ratio",
        note,
        factor=sync_ratio,
    )
    # 3.5a [V/U F766 3.5a, text ambiguous] TTHC with >= 1 dossier syncing non-zero fee data / TTHC with fees
    fee_tthc = [p for p in offered if p.has_fee]
    paid = [p for p in fee_tthc if sum(r.fee_synced for r in by_tthc.get(p.ma_tthc, ())) > 0]
    out["d766.3_5a"] = _value(
        "d766.3_5a",
        "Tỷ lệ TTHC có nghĩa vụ tài chính được tích hợp thanh toán trực tuyến",
        len(paid),
        len(fee_tthc),
        f"{_CAT} 3.5a [U: F766 text ambiguous]: TTHC with ≥1 fee-bearing dossier synced to DVCQG in the period / "
        "TTHC with fees in the catalogue [I: 'syncing non-zero fee data' = fee > 0 and a DVCQG sync event]",
    )
    # 4.5a [V F766 4.5] TTHC with >= 1 VNeID dossier / TTHC whose subject is citizens
    with_subject = [p for p in offered if p.subject]
    if not with_subject:
        out["d766.4_5a"] = IndicatorValue(
            "d766.4_5a",
            "Tỷ lệ TTHC có kết nối, chia sẻ dữ liệu dân cư",
            Kind.RATIO,
            None,
            None,
            None,
            NaReason.MISSING_REFERENCE_DATA,
            "the catalogue gives no procedure's subject (công dân / doanh nghiệp)",
            f"{_CAT} 4.5a",
        )
    else:
        citizen = [p for p in with_subject if p.subject.lower() in _CITIZEN]
        linked = [p for p in citizen if sum(r.vneid for r in by_tthc.get(p.ma_tthc, ())) > 0]
        out["d766.4_5a"] = _value(
            "d766.4_5a",
            "Tỷ lệ TTHC có kết nối, chia sẻ dữ liệu dân cư",
            len(linked),
            len(citizen),
            f"{_CAT} 4.5a [V F766]: TTHC with ≥1 VNeID-authenticated dossier / TTHC whose subject is citizens",
        )
    return out
