"""v1 events of the scoring service: an indicator of a unit changed value for a period.

The unit (commune or province) is the envelope's ``unitcode``; the record key is the stream id the scoring
service chooses for (unit, indicator, period). These events are notifications for district and commune
systems and are rebuildable from the source events (the topic keeps 30 days), so they carry everything
needed to display the value without a lookup: the ratio's parts, the period and the ruleset used.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AwareDatetime, Field, model_validator

from contracts.base import EventPayload
from contracts.topics import SCORING_INDICATORS

__all__ = ["EVENTS", "IndicatorUpdated", "NaReason", "PeriodKind"]

_Id = Annotated[str, Field(min_length=1, max_length=200)]


class PeriodKind(StrEnum):
    """Kind of period an indicator value covers."""

    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    YTD = "ytd"  # from the start of the year up to period_end
    REPORTING = "reporting"  # a reporting period with its own cut-off, e.g. 15/12/2023 to 10/03/2024


class NaReason(StrEnum):
    """Why an indicator has no value for a period."""

    EMPTY_DENOMINATOR = "empty_denominator"  # nothing to measure ("0 hoặc N/A theo quy định báo cáo")
    MISSING_REFERENCE_DATA = "missing_reference_data"  # e.g. the TTHC catalogue or holiday calendar not loaded
    NOT_APPLICABLE = "not_applicable"  # the indicator does not apply to this unit or period
    INSUFFICIENT_SAMPLE = "insufficient_sample"  # too few survey responses to publish


class IndicatorUpdated(EventPayload):
    """The value of one indicator of one unit for one period was (re)computed."""

    event_type = "vn.cchc.indicator.updated"
    schema_version = 1
    producer = "scoring"
    topic = SCORING_INDICATORS

    indicator_key: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_]*(\.[a-z0-9_]+)*$",
        description="Stable key of the indicator, e.g. 'd766.2_1.on_time_rate' or 'dossier.online_share'",
        examples=["dossier.online_share"],
    )
    period_kind: PeriodKind = Field(description="Kind of period the value covers")
    period_start: date = Field(description="First day of the period (inclusive)")
    period_end: date = Field(description="Last day of the period (inclusive)")
    numerator: float | None = Field(default=None, description="Numerator of the ratio, when the indicator is one")
    denominator: float | None = Field(default=None, description="Denominator of the ratio, when the indicator is one")
    value: float | None = Field(description="The indicator value; null means N/A (see na_reason)")
    na_reason: NaReason | None = Field(default=None, description="Why value is null; null when there is a value")
    ruleset_version: _Id = Field(
        description="Version of the indicator configuration (formulas, thresholds, calendars) used"
    )
    computed_at: AwareDatetime = Field(description="When the value was computed")

    @model_validator(mode="after")
    def _value_or_reason(self) -> Self:
        # exactly one of value / na_reason: a null without a reason is indistinguishable from a bug
        if (self.value is None) == (self.na_reason is None):
            msg = "exactly one of value and na_reason must be set"
            raise ValueError(msg)
        if self.period_end < self.period_start:
            msg = "period_end is before period_start"
            raise ValueError(msg)
        return self


EVENTS: tuple[type[EventPayload], ...] = (IndicatorUpdated,)
