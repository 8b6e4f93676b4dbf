"""Indicator values from the counters of a unit and period: report 06, apology compliance, Decision 766.

Every value is a numerator, a denominator and their ratio, or N/A with a reason: a denominator of 0, a
missing input (the TTHC catalogue, the DVCQG sync log) or an indicator this version does not compute. A
missing value is never replaced by 0 or by a constant (F766: "0 hoặc N/A theo quy định báo cáo"; we choose
N/A, so a dashboard cannot mistake "no data" for "scored zero").

Each indicator is declared once as a :class:`Spec` (which counters make its numerator and denominator, and
which part of the dossiers still open at the period's cut-off counts). The same spec drives the value and the
explain endpoint's dossier lists, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from services.scoring.domain.config import NON_RATIO_COMPUTATIONS, D766Config, D766Group, D766Indicator

__all__ = [
    "REPORT06",
    "SPECS",
    "D766Score",
    "GroupScore",
    "IndicatorValue",
    "Kind",
    "NaReason",
    "OpenCounts",
    "OpenPart",
    "Parts",
    "Spec",
    "band_of",
    "compute",
    "d766_score",
    "points_for",
    "total_of",
]

RATIO_DECIMALS = 4  # a ratio with 4 decimals is a percentage with F766's 2
POINT_DECIMALS = 2  # F766: "rounding 2 decimals"


class NaReason(StrEnum):
    """Why a value is N/A: the first three are ``contracts.scoring.NaReason``; ``not_computed`` is ours."""

    EMPTY_DENOMINATOR = "empty_denominator"
    MISSING_REFERENCE_DATA = "missing_reference_data"
    NOT_APPLICABLE = "not_applicable"
    NOT_COMPUTED = "not_computed"  # the inputs exist but this version of the service does not project them


class OpenPart(StrEnum):
    """Which of the dossiers open at the cut-off a part counts (DOMAIN §3.3: live report 06 and 766 2.1)."""

    ALL = "all"  # received before the cut-off, not ended by it
    WITHIN = "within"  # ... and not past its due date at the cut-off
    OVERDUE = "overdue"  # ... and past it
    CARRIED_OVER = "carried_over"  # received before the period, not ended by its start


class Kind(StrEnum):
    """How the value is formed from the parts."""

    COUNT = "count"  # value = numerator
    RATIO = "ratio"  # value = numerator / denominator, 0..1
    MEAN = "mean"  # value = numerator / denominator in the numerator's unit


@dataclass(frozen=True, slots=True)
class Parts:
    """Counters (exact keys), distinct-key prefixes and open dossiers summed into a numerator or denominator."""

    keys: tuple[str, ...] = ()
    #: count the distinct counter keys with this prefix and a positive value (e.g. distinct TTHC)
    distinct_prefix: str | None = None
    open: OpenPart | None = None


@dataclass(frozen=True, slots=True)
class Spec:
    """One indicator computed from counters."""

    key: str
    name: str
    kind: Kind
    numerator: Parts
    denominator: Parts | None
    source: str
    #: the value is multiplied by this indicator's value (766 3.3 x the 1.4 sync ratio); N/A if it is N/A
    times: str | None = None
    #: a numerator of 0 means the input is missing, not zero (e.g. no DVCQG sync event logged at all)
    zero_numerator_is_missing: str | None = None
    unit: str = ""


@dataclass(frozen=True, slots=True)
class OpenCounts:
    """Dossiers open at a period's cut-off (computed from the per-dossier read model, live)."""

    within: int = 0
    overdue: int = 0
    carried_over: int = 0

    def part(self, which: OpenPart) -> int:
        """The count of one open part."""
        if which is OpenPart.ALL:
            return self.within + self.overdue
        if which is OpenPart.WITHIN:
            return self.within
        if which is OpenPart.OVERDUE:
            return self.overdue
        return self.carried_over


@dataclass(frozen=True, slots=True)
class IndicatorValue:
    """A computed indicator: its parts, value or N/A reason, and where its definition comes from."""

    key: str
    name: str
    kind: Kind
    numerator: float | None
    denominator: float | None
    value: float | None
    na_reason: NaReason | None
    detail: str
    source: str
    unit: str = ""


_R06 = "DOMAIN §3.3a (report 06, TD BaoCaoSo06WhereBuilder)"
_R06_RECEIVED = Parts(("r06.received",))


def _count(key: str, name: str, parts: Parts, source: str = _R06) -> Spec:
    return Spec(key, name, Kind.COUNT, parts, None, source)


def _ratio(key: str, name: str, num: Parts, den: Parts, source: str, **kw: str) -> Spec:
    return Spec(key, name, Kind.RATIO, num, den, source, **kw)


_SPEC_LIST: tuple[Spec, ...] = (
    # --- report 06 (one-stop-shop statistics), DOMAIN §3.3a, §3.4
    _count("r06.received", "Tiếp nhận trong kỳ", _R06_RECEIVED),
    _count(
        "r06.received_online", "Tiếp nhận trực tuyến", Parts(("r06.received.online",)), "DOMAIN §10 (KenhThucHien 2)"
    ),
    _count(
        "r06.received_postal",
        "Tiếp nhận qua bưu chính công ích",
        Parts(("r06.received.postal",)),
        "DOMAIN §10 (KenhThucHien 3)",
    ),
    _count("r06.carried_over", "Kỳ trước chuyển qua", Parts(open=OpenPart.CARRIED_OVER)),
    _count("r06.resolved_early", "Đã xử lý trước hạn", Parts(("r06.resolved.early",))),
    _count("r06.resolved_on_time", "Đã xử lý đúng hạn", Parts(("r06.resolved.on_time",))),
    _count("r06.resolved_late", "Đã xử lý quá hạn", Parts(("r06.resolved.late",))),
    _count("r06.open_within_time", "Đang xử lý trong hạn", Parts(open=OpenPart.WITHIN)),
    _count("r06.open_overdue", "Đang xử lý quá hạn", Parts(open=OpenPart.OVERDUE)),
    _count("r06.withdrawn", "Rút hồ sơ (trả lại)", Parts(("r06.withdrawn",)), "DOMAIN §3.4"),
    _count("r06.refused", "Từ chối / không được tiếp nhận", Parts(("r06.refused",)), "DOMAIN §3.4"),
    _count("r06.stopped", "Dừng xử lý", Parts(("r06.stopped",)), "DOMAIN §3.4"),
    _ratio(
        "r06.on_time_rate",
        "Tỷ lệ giải quyết trước hạn, đúng hạn",
        Parts(("r06.resolved.early", "r06.resolved.on_time")),
        Parts(("r06.resolved.early", "r06.resolved.on_time", "r06.resolved.late")),
        "DOMAIN §3.3a; known answer §11.5 (Vĩnh Phúc 19,255 / 19,944)",
    ),
    _ratio(
        "r06.online_share",
        "Tỷ lệ hồ sơ tiếp nhận trực tuyến",
        Parts(("r06.received.online",)),
        _R06_RECEIVED,
        "DOMAIN §10; known answer §11.5 (Kon Tum 12,516 / 56,039)",
    ),
    Spec(
        "r06.avg_processing_time",
        "Thời gian giải quyết trung bình (giờ làm việc)",
        Kind.MEAN,
        Parts(("r06.processing.hours",)),
        Parts(("r06.processing.count",)),
        "DOMAIN §3.5 (F766 2.2): dossiers with a result whose processing started in the period; working hours, "
        "supplement time excluded, all procedures together",
        unit="working_hours",
    ),
    # --- apology compliance, DOMAIN §3.6 [I]; denominator: late dossiers (assessed by the dossiers service)
    _ratio(
        "apology.rate",
        "Tỷ lệ xin lỗi trước hạn",
        Parts(("apology.before_original_due",)),
        Parts(("apology.late",)),
        "DOMAIN §3.6 [I]",
    ),
    _ratio(
        "apology.issued_rate",
        "Tỷ lệ hồ sơ quá hạn có văn bản xin lỗi",
        Parts(("apology.issued",)),
        Parts(("apology.late",)),
        "DOMAIN §3.6 [I]",
    ),
    _ratio(
        "apology.one_working_day_before_rate",
        "Xin lỗi trước hạn ít nhất 01 ngày làm việc",
        Parts(("apology.at_least_one_working_day_before",)),
        Parts(("apology.late",)),
        "DOMAIN §3.6 [U 61/2018]",
    ),
    _ratio(
        "apology.single_reschedule_rate",
        "Hẹn lại không quá một lần",
        Parts(("apology.single_reschedule",)),
        Parts(("apology.late",)),
        "DOMAIN §3.6 [U]",
    ),
    _ratio(
        "apology.result_by_rescheduled_rate",
        "Trả kết quả đúng ngày hẹn lại",
        Parts(("apology.result_by_rescheduled_due",)),
        Parts(("apology.late",)),
        "DOMAIN §3.6 [I]",
    ),
    # --- Decision 766, the ratios a commune's own events carry (DOMAIN §5.5)
    _ratio(
        "d766.2_1",
        "Tỷ lệ hồ sơ xử lý trước hạn, đúng hạn",
        Parts(("d766.2_1.on_time",), open=OpenPart.WITHIN),
        Parts(("d766.2_1.resolved",), open=OpenPart.ALL),
        "DOMAIN §3.3b (F766 2.1): ended on time or still open within time at the cut-off",
    ),
    _ratio(
        "d766.1_4",
        "Tỷ lệ hồ sơ đồng bộ lên Cổng DVCQG",
        Parts(("d766.1_4.synced",)),
        _R06_RECEIVED,
        "DOMAIN §5.3 1.4 (F766); denominator: the unit's own received dossiers [I] (the national reporting "
        "system's count is not in the events)",
        zero_numerator_is_missing="no DVCQG sync event was logged for these dossiers: a system that does not "
        "log syncs cannot be told from one that syncs nothing",
    ),
    _ratio(
        "d766.3_3",
        "Tỷ lệ hồ sơ TTHC nộp trực tuyến",
        Parts(("d766.3_3.online",)),
        _R06_RECEIVED,
        "DOMAIN §5.3 3.3 (F766): online received with an electronic result when one was issued [I: no TTHC "
        "catalogue, every result counts as required], times the 1.4 sync ratio",
        times="d766.1_4",
    ),
    _ratio(
        "d766.3_5b",
        "TTHC có giao dịch thanh toán trực tuyến",
        Parts(distinct_prefix="d766.3_5b.paid_tthc:"),
        Parts(distinct_prefix="d766.3_5b.fee_tthc:"),
        "DOMAIN §5.3 3.5b: distinct TTHC with an online-paid dossier / distinct TTHC with a fee-bearing dossier "
        "[I: fee-bearing TTHC taken from the dossiers, not the catalogue]",
    ),
    _ratio(
        "d766.3_6",
        "Tỷ lệ hồ sơ thanh toán trực tuyến",
        Parts(("d766.3_6.paid_online",)),
        Parts(("d766.3_6.fee",)),
        "DOMAIN §5.3 3.6 (F766): paid online (DuocThanhToanTrucTuyen 1/2) / dossiers with fees > 0, by receipt",
    ),
    _ratio(
        "d766.4_1",
        "Tỷ lệ hồ sơ có kết quả điện tử",
        Parts(("d766.4_1.e_result",)),
        Parts(("d766.4_1.result",)),
        "DOMAIN §5.3 4.1 (F766): results with MaKetQua + file link / dossiers with a result [I: no TTHC "
        "catalogue, every procedure counts as issuing a paper result]",
    ),
    _ratio(
        "d766.4_2",
        "Tỷ lệ hồ sơ thực hiện số hóa",
        Parts(("d766.4_2.digitised",)),
        _R06_RECEIVED,
        "DOMAIN §5.3 4.2 (F766): ≥1 digitised component and an electronic result when one was issued [I]",
    ),
    _ratio(
        "d766.4_3",
        "Tỷ lệ hồ sơ khai thác, sử dụng lại dữ liệu số hóa",
        Parts(("d766.4_3.reused",)),
        _R06_RECEIVED,
        "DOMAIN §5.3 4.3 (F766): ≥1 component reusing digitised data (HoSoCoThanhPhanSoHoa)",
    ),
    _ratio(
        "d766.4_4",
        "Tỷ lệ hồ sơ số hóa có kết nối, chia sẻ (kho DVCQG)",
        Parts(("d766.4_4.store",)),
        _R06_RECEIVED,
        "DOMAIN §5.3 4.4 (F766): ≥1 component from the DVCQG store or the result synced to it",
    ),
    _ratio(
        "d766.4_5b",
        "Tỷ lệ hồ sơ sử dụng dữ liệu CSDL dân cư",
        Parts(("d766.4_5b.vneid",)),
        _R06_RECEIVED,
        "DOMAIN §5.3 4.5b (F766): account authenticated with VNeID / all received [I: a dossier submitted "
        "in person has no account, so it is not authenticated]",
    ),
)

#: every indicator computed from counters, by key
SPECS: Mapping[str, Spec] = {s.key: s for s in _SPEC_LIST}
#: the report 06 and apology indicators every unit gets, in display order
REPORT06: tuple[str, ...] = tuple(s.key for s in _SPEC_LIST if not s.key.startswith("d766."))


def _sum(parts: Parts, counters: Mapping[str, float], open_counts: OpenCounts) -> float:
    if parts.distinct_prefix is not None:
        total = float(sum(1 for k, v in counters.items() if k.startswith(parts.distinct_prefix) and v > 0))
    else:
        total = float(sum(counters.get(k, 0.0) for k in parts.keys))
    if parts.open is not None:
        total += open_counts.part(parts.open)
    return total


def _evaluate(
    spec: Spec, counters: Mapping[str, float], open_counts: OpenCounts, done: dict[str, IndicatorValue]
) -> IndicatorValue:
    numerator = _sum(spec.numerator, counters, open_counts)
    denominator = None if spec.denominator is None else _sum(spec.denominator, counters, open_counts)

    def na(reason: NaReason, detail: str) -> IndicatorValue:
        return IndicatorValue(
            spec.key, spec.name, spec.kind, numerator, denominator, None, reason, detail, spec.source, spec.unit
        )

    if spec.kind is Kind.COUNT:
        return IndicatorValue(spec.key, spec.name, spec.kind, numerator, None, numerator, None, "", spec.source)
    assert denominator is not None
    if denominator == 0:
        return na(NaReason.EMPTY_DENOMINATOR, "nothing to measure in this period")
    if numerator == 0 and spec.zero_numerator_is_missing:
        return na(NaReason.MISSING_REFERENCE_DATA, spec.zero_numerator_is_missing)
    value = numerator / denominator
    if spec.times is not None:
        factor = done.get(spec.times) or _evaluate(SPECS[spec.times], counters, open_counts, done)
        if factor.value is None:
            return na(factor.na_reason or NaReason.MISSING_REFERENCE_DATA, f"needs {spec.times}: {factor.detail}")
        value *= factor.value
    decimals = RATIO_DECIMALS if spec.kind is Kind.RATIO else POINT_DECIMALS
    return IndicatorValue(
        spec.key, spec.name, spec.kind, numerator, denominator, round(value, decimals), None, "", spec.source, spec.unit
    )


def compute(keys: Sequence[str], counters: Mapping[str, float], open_counts: OpenCounts) -> dict[str, IndicatorValue]:
    """The values of the spec'd indicators ``keys`` for one unit and period."""
    done: dict[str, IndicatorValue] = {}
    for key in keys:
        done[key] = _evaluate(SPECS[key], counters, open_counts, done)
    return done


# --- Decision 766 scoring ------------------------------------------------------------------------------


def points_for(ratio: float, max_points: float, target: float | None) -> float:
    """DOMAIN §5.2: ``Pmax`` if R ≥ T else ``R x Pmax / T``; without a target ``R x Pmax`` [I]."""
    if target is None:
        return round(ratio * max_points, POINT_DECIMALS)
    return round(max_points if ratio >= target else ratio * max_points / target, POINT_DECIMALS)


@dataclass(frozen=True, slots=True)
class ScoredIndicator:
    """A 766 indicator of one version, its value and its points (None when N/A or the allocation is unknown)."""

    config: D766Indicator
    value: IndicatorValue
    points: float | None


@dataclass(frozen=True, slots=True)
class GroupScore:
    """A group's points, or None with the reason; ``points_available`` sums the indicators that could score."""

    key: str
    dvcqg_key: str
    name: str
    max_points: float
    points: float | None
    points_available: float
    max_available: float
    detail: str
    indicators: tuple[ScoredIndicator, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class D766Score:
    """The index of one unit and period under one configuration version."""

    version: str
    total: float | None
    max_points: float
    band: str | None
    detail: str
    groups: tuple[GroupScore, ...]


def _indicator_value(ind: D766Indicator, values: Mapping[str, IndicatorValue]) -> IndicatorValue:
    # catalogue and feedback indicators are computed outside the counters (a loaded TTHC catalogue; the PAKN and
    # ratings read model) and handed in under their own key; without them they stay N/A with the reason
    computed_outside = ind.computation in ("catalogue", "feedback") and ind.key in values
    if ind.computation in NON_RATIO_COMPUTATIONS and not computed_outside:
        reason = NaReason(NON_RATIO_COMPUTATIONS[ind.computation])
        detail = {
            "catalogue": "needs the national TTHC catalogue (CSDL QG về TTHC), not loaded",
            "not_computable": "a service-availability flag, not computable from events (DOMAIN §5.5)",
            "per_procedure": "F766 shows 2.2 for a single procedure only; see r06.avg_processing_time",
            "feedback": "no PAKN or citizen-rating value for this indicator (the 'cắt giảm, phân cấp' satisfaction "
            "is carried by no event)",
        }[ind.computation]
        return IndicatorValue(ind.key, ind.name, Kind.RATIO, None, None, None, reason, detail, ind.source)
    # a catalogue indicator (services.scoring.domain.catalogue) or a group-5 one (services.scoring.domain.feedback)
    computed = values[ind.key] if computed_outside else values[ind.computation]
    return IndicatorValue(
        ind.key,
        ind.name,
        computed.kind,
        computed.numerator,
        computed.denominator,
        computed.value,
        computed.na_reason,
        computed.detail,
        f"{computed.source}; points: {ind.source}",
        computed.unit,
    )


def _group(group: D766Group, values: Mapping[str, IndicatorValue]) -> GroupScore:
    scored: list[ScoredIndicator] = []
    missing: list[str] = []
    available = max_available = 0.0
    for ind in group.indicators:
        value = _indicator_value(ind, values)
        points: float | None = None
        if ind.points == 0:
            points = 0.0
        elif ind.points is None:
            missing.append(f"{ind.code}: allocation unknown")
        elif value.value is None:
            missing.append(f"{ind.code}: {value.na_reason}")
        else:
            points = points_for(value.value, ind.points, ind.target)
            available += points
            max_available += ind.points
        scored.append(ScoredIndicator(ind, value, points))
    allocated = sum(i.points or 0 for i in group.indicators)
    if allocated + 1e-9 < group.max_points:
        missing.append(f"indicators allocate {allocated:g} of {group.max_points:g} points")
    complete = not missing
    return GroupScore(
        key=group.key,
        dvcqg_key=group.dvcqg_key,
        name=group.name,
        max_points=group.max_points,
        points=round(available, POINT_DECIMALS) if complete else None,
        points_available=round(available, POINT_DECIMALS),
        max_available=max_available,
        detail="; ".join(missing),
        indicators=tuple(scored),
    )


def total_of(group_points: Sequence[float]) -> float:
    """The index total: the sum of the group points, rounded as DVCQG publishes it (DOMAIN §11.4)."""
    return round(sum(group_points), POINT_DECIMALS)


def band_of(total: float, config: D766Config) -> str | None:
    """The rating band of a total (DOMAIN §5.4 [I]/[U]; configuration until the annex is obtained)."""
    return next((b.name for b in config.bands if total >= b.min_points - 1e-9), None)


def d766_score(config: D766Config, values: Mapping[str, IndicatorValue]) -> D766Score:
    """Groups, total and band of one unit and period; the total is N/A unless every group scored."""
    groups = tuple(_group(g, values) for g in config.groups)
    incomplete = [g.dvcqg_key for g in groups if g.points is None]
    if incomplete:
        return D766Score(
            config.version,
            None,
            config.max_points,
            None,
            f"groups without a complete score: {', '.join(incomplete)}",
            groups,
        )
    total = total_of([g.points for g in groups if g.points is not None])
    return D766Score(config.version, total, config.max_points, band_of(total, config), "", groups)
