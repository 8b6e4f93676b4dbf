"""Pure rules of the scoring read models (no I/O)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

__all__ = ["VN_TZ", "ActivityKey", "count_activity", "local_day"]

#: indicators are reported by Vietnamese calendar days, whatever offset a producer used
VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

ActivityKey = tuple[str, str, date, str]  # (unitcode, provincecode, day, event type)


def local_day(instant: datetime) -> date:
    """The Vietnamese calendar day (UTC+7) an event happened on: a late event updates the day it belongs to."""
    return instant.astimezone(VN_TZ).date()


def count_activity(facts: Iterable[tuple[str, str, datetime, str]]) -> Counter[ActivityKey]:
    """Pre-aggregate (unit, province, time, type) facts into per-day counts for one upsert."""
    return Counter((unit, province, local_day(at), event_type) for unit, province, at, event_type in facts)
