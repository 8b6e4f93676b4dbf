"""The 766 indicators computed outside the counters — from the imported TTHC catalogue (group 3/4 catalogue
indicators) and from the PAKN / ratings read model (group 5) — for every read path: one unit, the province
table, a time series, a day range (year-to-date, reporting periods) and the subscriptions publisher.

Each function adds the values to the dossier values the caller already computed (``compute(SPECS, ...)``),
so the 766 score then sees them exactly as the unit endpoint does. Batched: the catalogue is loaded once per
call, the province table reads its communes' dossiers per TTHC in one query, and group 5 reads the PAKN and
ratings of all the windows in two queries.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from datetime import date

import asyncpg

from services.scoring.catalogue import load_catalogue, tthc_days
from services.scoring.domain.catalogue import catalogue_values, levels_for_scope
from services.scoring.domain.config import D766Config
from services.scoring.domain.feedback import FEEDBACK_KEYS
from services.scoring.domain.indicators import IndicatorValue
from services.scoring.feedback import feedback_by_window
from services.scoring.readmodel import PeriodWindow, Scope

__all__ = ["add_outside_values", "needs_outside_values"]

Values = MutableMapping[str, IndicatorValue]


def needs_outside_values(indicator: str | None, config: D766Config) -> tuple[bool, bool]:
    """(catalogue, group 5): which outside values ``indicator`` needs (None: a whole unit, both)."""
    if indicator is None or indicator == "d766.total":
        return True, True
    if indicator.startswith("d766.group."):
        group = next((g for g in config.groups if g.key == indicator.removeprefix("d766.group.")), None)
        kinds = {i.computation for i in group.indicators} if group else set()
        return "catalogue" in kinds, "feedback" in kinds
    configured = config.indicator(indicator)
    computation = configured.computation if configured else ""
    return computation == "catalogue", computation == "feedback" or indicator in FEEDBACK_KEYS


async def _exists(pool: asyncpg.Pool, table: str) -> bool:
    # asked first, not caught: inside the publisher's transaction a failed statement would abort the transaction
    # (the catalogue table exists only once ``chiso catalogue import`` ran)
    return bool(await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", table))


async def add_outside_values(
    pool: asyncpg.Pool,
    scope: Scope,
    windows: Sequence[PeriodWindow],
    values: Mapping[tuple[str, date], Values],
    *,
    by_unit: bool = False,
    catalogue: bool = True,
    feedback: bool = True,
) -> None:
    """Add the catalogue (when one is loaded) and group-5 values to ``values`` — keyed (unit or scope, window
    start), the dossier values of each — in place. ``by_unit``: ``scope`` is a province, keys are its units."""
    if catalogue and values and await _exists(pool, "tthc_catalogue"):
        loaded = await load_catalogue(pool)
        if loaded:
            for w in windows:
                days = await tthc_days(pool, scope, w.start, w.end, by_unit=by_unit)
                for (unit, start), unit_values in values.items():
                    if start == w.start:
                        unit_values.update(
                            catalogue_values(
                                loaded, levels_for_scope(unit), w.end, days.get(unit, []), unit_values.get("d766.1_4")
                            )
                        )
    if feedback and values and await _exists(pool, "feedback_items"):
        base = {k: v.get("d766.2_1") for k, v in values.items()}
        group5 = await feedback_by_window(pool, scope, windows, base, by_unit=by_unit)
        for key, unit_values in values.items():
            unit_values.update(group5.get(key, {}))
