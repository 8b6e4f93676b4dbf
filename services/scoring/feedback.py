"""Reading the group-5 read model (:mod:`services.scoring.projections_feedback`): the 766 5.1-5.4 values of a
scope over any windows (calendar periods, year-to-date, reporting periods), and the PAKN / ratings behind them.

Values are formed by :mod:`services.scoring.domain.feedback` at each window's cut-off. One query for the PAKN
and one for the ratings of the whole span of the windows, whatever their number; a scope is a commune, a
province (its rollup) or a pre-2025 district, as for the dossier read model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from eventkit.worktime import WorkingCalendar
from services.scoring.domain.feedback import (
    FEEDBACK_KEYS,
    Pakn,
    RatingRow,
    Sides,
    Window,
    feedback_values,
    judge,
    sides,
)
from services.scoring.domain.indicators import SPECS, IndicatorValue
from services.scoring.readmodel import PeriodWindow, Scope, count_explained, explain

__all__ = [
    "FEEDBACK_KEYS",
    "ExplainedFeedback",
    "FeedbackExplanation",
    "explain_feedback",
    "feedback_by_window",
    "load_feedback",
]

_PAKN_COLUMNS = (
    "feedback_id, unitcode, category, received_at, dossier_id, follows_up, rejected_at, supplement_at,"
    " awaiting_publication_at, published_at, likes, dislikes, likes_at"
)


def calendar() -> WorkingCalendar:
    """The working calendar the 5.2 deadlines are counted in (the national one [I]: the scoring service has
    no provincial calendar setting; a province's swaps move a deadline by at most a day)."""
    return WorkingCalendar.load()


async def load_feedback(
    pool: asyncpg.Pool, scope: Scope, begins: datetime, cut: datetime
) -> tuple[list[Pakn], list[RatingRow]]:
    """The PAKN a window from ``begins`` to ``cut`` can see (received before the cut, not finished before the
    start, with the first follow-up received) and the ratings given in it. An empty list when the tables do
    not exist yet (a service started before this projection was added has not migrated)."""
    try:
        pakn_rows = await pool.fetch(
            f"""SELECT {_PAKN_COLUMNS},
                       (SELECT min(f.received_at) FROM feedback_items f WHERE f.follows_up = i.feedback_id)
                           AS followed_up_at
                FROM feedback_items i
                WHERE i.{scope.column} = $1 AND i.received_at IS NOT NULL AND i.received_at < $3
                  AND (i.finished_at IS NULL OR i.finished_at >= $2)""",
            scope.value,
            begins,
            cut,
        )
        rating_rows = await pool.fetch(
            f"""SELECT dossier_id, unitcode, rated_at, rating, rated_via FROM dossier_ratings
                WHERE {scope.column} = $1 AND rated_at >= $2 AND rated_at < $3""",
            scope.value,
            begins,
            cut,
        )
    except asyncpg.UndefinedTableError:
        return [], []
    return [Pakn(**dict(r)) for r in pakn_rows], [RatingRow(**dict(r)) for r in rating_rows]


async def feedback_by_window(
    pool: asyncpg.Pool,
    scope: Scope,
    windows: Sequence[PeriodWindow],
    base: Mapping[tuple[str, date], IndicatorValue | None],
    *,
    by_unit: bool = False,
) -> dict[tuple[str, date], dict[str, IndicatorValue]]:
    """The group-5 values per (unit or scope, window start) for every key of ``base`` (the units wanted, each
    with its 766 2.1 value of that window, the base of 5.4) and every unit with PAKN or ratings."""
    if not windows:
        return {}
    pakn, ratings = await load_feedback(pool, scope, min(w.begins for w in windows), max(w.cut for w in windows))
    cal = calendar()
    by_pakn: dict[str, list[Pakn]] = defaultdict(list)
    by_rating: dict[str, list[RatingRow]] = defaultdict(list)
    for p in pakn:
        by_pakn[p.unitcode if by_unit else scope.value].append(p)
    for r in ratings:
        by_rating[r.unitcode if by_unit else scope.value].append(r)
    units = {u for u, _ in base} | set(by_pakn) | set(by_rating)
    out: dict[tuple[str, date], dict[str, IndicatorValue]] = {}
    for w in windows:
        window = Window(w.begins, w.cut)
        for unit in units:
            s = sides(by_pakn.get(unit, ()), by_rating.get(unit, ()), window, cal)
            out[(unit, w.start)] = feedback_values(s, base.get((unit, w.start)), cal.version)
    return out


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ExplainedFeedback(_Out):
    """A PAKN or a per-dossier rating behind a group-5 value."""

    kind: Literal["pakn", "rating"]
    id: str = Field(description="The PAKN id, or for a rating the dossier id")
    unitcode: str
    dossier_id: str | None
    category: str | None = Field(default=None, description="PAKN: regulation | official_conduct")
    at: datetime = Field(description="PAKN: received; rating: rated")
    finished_at: datetime | None = Field(default=None, description="PAKN: refused or handled (first time)")
    on_time: bool | None = Field(default=None, description="PAKN: the 5.2 verdict at the period's cut-off")
    late_steps: list[str] = Field(default=[], description="PAKN: the steps past their F766 deadline")
    likes: int | None = None
    dislikes: int | None = None
    followed_up: bool = Field(default=False, description="PAKN: a later PAKN complains about its result")
    rating: str | None = Field(default=None, description="Rating: the overall rating given")
    rated_via: str | None = None


@dataclass(frozen=True, slots=True)
class FeedbackExplanation:
    """One page of a group-5 side: the PAKN / ratings, or (5.4's base) the dossier rows of 766 2.1."""

    total: int
    items: list[ExplainedFeedback]
    dossier_rows: list[dict[str, Any]]
    note: str


def _pakn_out(p: Pakn, w: Window, cal: WorkingCalendar) -> ExplainedFeedback:
    verdict = judge(p, w.cut, cal)
    return ExplainedFeedback(
        kind="pakn",
        id=p.feedback_id,
        unitcode=p.unitcode,
        dossier_id=p.dossier_id,
        category=p.category,
        at=p.received_at,
        finished_at=p.finished_at if verdict.finished else None,
        on_time=verdict.on_time,
        late_steps=list(verdict.late_steps),
        likes=p.likes if p.likes_at is not None and p.likes_at < w.cut else None,
        dislikes=p.dislikes if p.likes_at is not None and p.likes_at < w.cut else None,
        followed_up=p.followed_up_at is not None and p.followed_up_at < w.cut,
    )


def _rating_out(r: RatingRow) -> ExplainedFeedback:
    return ExplainedFeedback(
        kind="rating",
        id=r.dossier_id,
        unitcode=r.unitcode,
        dossier_id=r.dossier_id,
        at=r.rated_at,
        rating=r.rating,
        rated_via=r.rated_via,
    )


def _side(s: Sides, indicator: str, numerator: bool) -> tuple[list[Pakn], list[RatingRow], str]:
    if indicator == "d766.5_1":
        return (
            (list(s.regulation) if numerator else list(s.received)),
            [],
            ("PAKN classified 'quy định, chính sách, thủ tục'" if numerator else "PAKN received in the period"),
        )
    if indicator == "d766.5_2":
        if numerator:
            return list(s.on_time), [], "PAKN handled on time, or in progress within 15 working days, at the cut-off"
        return list(s.measured), [], "PAKN handled in the period, or still in progress at its cut-off"
    if indicator == "d766.5_3":
        if numerator:
            unsatisfied = {p.feedback_id for p in s.unsatisfied}
            return (
                [p for p in s.received if p.feedback_id not in unsatisfied],
                [],
                ("PAKN received in the period with no more dislikes than likes, not overdue and not followed up"),
            )
        return list(s.received), [], "PAKN received in the period"
    # 5.4: the numerator is the base minus the overdue dossiers (explain d766.2_1) minus these complaints
    return (
        list(s.dossier_pakn),
        list(s.negative_ratings),
        (
            "the complaints deducted from the base: PAKN about a dossier and negative ratings in the period (the "
            "numerator is the base minus the overdue dossiers of 766 2.1 minus the distinct dossiers listed here)"
        ),
    )


async def explain_feedback(
    pool: asyncpg.Pool, scope: Scope, indicator: str, numerator: bool, w: PeriodWindow, *, limit: int, offset: int
) -> FeedbackExplanation:
    """A page of the PAKN / ratings behind one side of a group-5 indicator (the same sides that compute it)."""
    if indicator == "d766.5_4" and not numerator:
        parts = SPECS["d766.2_1"].denominator
        assert parts is not None
        total = await count_explained(pool, scope, parts, w)
        rows = await explain(pool, scope, parts, w, limit=limit, offset=offset)
        note = "the dossiers of 766 2.1: resolved in the period or open at its cut-off"
        return FeedbackExplanation(total, [], rows, note)
    pakn, ratings = await load_feedback(pool, scope, w.begins, w.cut)
    cal = calendar()
    window = Window(w.begins, w.cut)
    s = sides(pakn, ratings, window, cal)
    chosen, rated, note = _side(s, indicator, numerator)
    items = [_pakn_out(p, window, cal) for p in chosen] + [_rating_out(r) for r in rated]
    return FeedbackExplanation(len(items), items[offset : offset + limit], [], note)
