"""Flat indicator values from the surveys and plans read models, in the shape of the dossier indicators.

- ``tasks.on_time_rate`` / ``tasks.completed_rate``: tasks done on time (the plans service's working-day
  verdict) / done at all, of the tasks due in the period (due date passed at the cut-off, or done; cancelled
  tasks and standing tasks without a deadline do not count) — DOMAIN §6.2 area 1 [I];
- ``reports.on_time_rate``: reports sent on time of the reports due in the period (same rule) — §6.2 area 1;
- survey values under their aggregator's key (``sipas.*``, ``papi_proxy.*``): a unit answering one instrument
  version in the period gets that version's values; answers on several versions of one kind in one period are
  not pooled (different items and methods): the flat key is N/A with the reason, and each version is still
  shown on its own by the API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.scoring.domain.indicators import IndicatorValue, Kind, NaReason
from services.scoring.domain.surveys import Aggregator, SurveyValue, aggregate

__all__ = ["PLAN_KEYS", "plan_values", "survey_blocks", "survey_keys", "survey_values"]

_PLAN = (
    ("tasks.on_time_rate", "Tỷ lệ nhiệm vụ hoàn thành đúng hạn", "tasks.on_time", "tasks.due"),
    ("tasks.completed_rate", "Tỷ lệ nhiệm vụ được hoàn thành", "tasks.done", "tasks.due"),
    ("reports.on_time_rate", "Tỷ lệ báo cáo CCHC nộp đúng hạn", "reports.on_time", "reports.due"),
)
PLAN_KEYS = tuple(k for k, *_ in _PLAN)
_PLAN_SOURCE = "DOMAIN §6.2 area 1 [I]: due in the period; on time = the plans service's working-day verdict"


def plan_values(counts: Mapping[str, float]) -> dict[str, IndicatorValue]:
    """The tasks and reports rates of one unit and period."""
    out = {}
    for key, name, num, den in _PLAN:
        n, d = float(counts.get(num, 0)), float(counts.get(den, 0))
        if d == 0:
            out[key] = IndicatorValue(
                key,
                name,
                Kind.RATIO,
                n,
                d,
                None,
                NaReason.EMPTY_DENOMINATOR,
                "nothing due in this period",
                _PLAN_SOURCE,
            )
        else:
            out[key] = IndicatorValue(key, name, Kind.RATIO, n, d, round(n / d, 4), None, "", _PLAN_SOURCE)
    return out


def survey_blocks(
    aggregators: Mapping[tuple[str, str], Aggregator], counters: Mapping[tuple[str, str], Mapping[str, float]]
) -> list[tuple[Aggregator | None, tuple[str, str], list[SurveyValue]]]:
    """Each instrument version answered in the period with its values (None: no aggregator configured)."""
    out: list[tuple[Aggregator | None, tuple[str, str], list[SurveyValue]]] = []
    for ref in sorted(counters):
        agg = aggregators.get(ref)
        out.append((agg, ref, aggregate(agg, counters[ref]) if agg else []))
    return out


def survey_keys(aggregators: Mapping[tuple[str, str], Aggregator]) -> set[str]:
    """Every flat survey key some aggregator produces."""
    return {v.key for agg in aggregators.values() for v in aggregate(agg, {})}


def _flat(v: SurveyValue) -> IndicatorValue:
    reason = NaReason(v.na_reason) if v.na_reason else None
    return IndicatorValue(
        v.key,
        v.name,
        Kind.RATIO if v.key.split(".")[-1] != "responses" else Kind.COUNT,
        v.numerator,
        v.n,
        v.value,
        reason,
        v.detail,
        v.source,
    )


def survey_values(
    aggregators: Mapping[tuple[str, str], Aggregator],
    blocks: Sequence[tuple[Aggregator | None, tuple[str, str], list[SurveyValue]]],
) -> dict[str, IndicatorValue]:
    """Flat survey values (see the module docstring); every known key is present, N/A when it cannot be given."""
    by_prefix: dict[str, list[tuple[tuple[str, str], list[SurveyValue]]]] = {}
    for agg, ref, values in blocks:
        if agg is not None:
            by_prefix.setdefault(agg.key_prefix, []).append((ref, values))
    out: dict[str, IndicatorValue] = {}
    for key in sorted(survey_keys(aggregators)):
        prefix = key.split(".")[0]
        answered = by_prefix.get(prefix, [])
        if len(answered) == 1:
            found = next((v for v in answered[0][1] if v.key == key), None)
            if found is not None:
                out[key] = _flat(found)
                continue
            detail = f"the answered version {answered[0][0]} has no {key}"
            out[key] = IndicatorValue(key, key, Kind.RATIO, None, None, None, NaReason.NOT_APPLICABLE, detail, "")
        elif answered:
            versions = ", ".join("@".join(ref) for ref, _ in answered)
            out[key] = IndicatorValue(
                key,
                key,
                Kind.RATIO,
                None,
                None,
                None,
                NaReason.NOT_APPLICABLE,
                f"answers on several instrument versions ({versions}) are not pooled",
                "",
            )
        else:
            out[key] = IndicatorValue(
                key,
                key,
                Kind.RATIO,
                None,
                0.0,
                None,
                NaReason.EMPTY_DENOMINATOR,
                "no survey responses in this period",
                "",
            )
    return out
