"""Plan targets (``vn.cchc.target.set``) against the indicators the scoring service computes (pure).

The plans service names indicators by its own ids (``dossiers.on_time_pct``...). Which scoring indicator each
id is read from, and how it is scaled, is configuration (``config/targets/plan-indicators.yaml``): a plan id
without a mapping, or mapped to ``null`` with a reason (a manual statistic, a figure no event carries), gives
N/A with that reason, never a guessed actual. A target's period must be a calendar month, quarter or year
(the periods the counters are kept for); otherwise the actual is N/A. Before the period ends the comparison
is provisional (``final`` false).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from services.scoring.domain.periods import PeriodKind, period_end, period_start

__all__ = ["TargetMap", "TargetMapping", "Verdict", "compare", "mapping_for", "period_of"]


class TargetMapping(BaseModel):
    """How one plan indicator id is read from the scoring indicators."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    indicator: str | None = Field(description="Scoring indicator key; null = not computable (see reason)")
    scale: float = Field(default=1.0, gt=0, description="Multiplier to the target's unit (100: ratio -> percent)")
    reason: str = Field(default="", description="Why there is no scoring indicator, or the approximation used")


class TargetMap(BaseModel):
    """The whole mapping file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    mappings: dict[str, TargetMapping]


def period_of(start: date, end: date) -> PeriodKind | None:
    """The kind of period ``start..end`` is exactly (month, quarter, year), or None."""
    for kind in (PeriodKind.MONTH, PeriodKind.QUARTER, PeriodKind.YEAR):
        if period_start(kind, start) == start and period_end(kind, start) == end:
            return kind
    return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an actual meets a target."""

    met: bool | None
    gap: float | None


def compare(actual: float | None, comparison: str, target: float, tolerance: float = 1e-9) -> Verdict:
    """``actual comparison target`` (``>=``, ``<=``, ``=``); the gap is actual - target."""
    if actual is None:
        return Verdict(None, None)
    ok = {
        ">=": actual >= target - tolerance,
        "<=": actual <= target + tolerance,
        "=": abs(actual - target) <= tolerance,
    }[comparison]
    return Verdict(ok, round(actual - target, 4))


def mapping_for(mappings: Mapping[str, TargetMapping], plan_indicator: str) -> TargetMapping:
    """The mapping of a plan indicator id (an unknown id maps to nothing, with the reason)."""
    return mappings.get(plan_indicator) or TargetMapping(
        indicator=None, reason=f"no mapping of the plan indicator {plan_indicator!r} in plan-indicators.yaml"
    )
