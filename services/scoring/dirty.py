"""The hook the survey and plans projections call with the (unit, day) keys a batch changed.

Kept apart from :mod:`services.scoring.subscriptions` (which imports the projections) so the projections can
name the hook's type without an import cycle. The hook runs inside the batch's transaction: a rolled-back
batch marks nothing, and a committed one never loses its keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date

from eventkit.pg import Connection
from services.scoring.domain.periods import PeriodKind

__all__ = ["UnitDay", "UnitDaysHook"]

#: (unit code, province code, a day of the period, the period kind or None = every stored kind)
UnitDay = tuple[str, str, date, PeriodKind | None]
#: called inside the batch's transaction with the keys the batch changed (services.scoring.subscriptions)
UnitDaysHook = Callable[[Connection, Sequence[UnitDay]], Awaitable[None]]
