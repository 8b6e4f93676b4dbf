"""PAKN and per-dossier ratings -> the read model of 766 group 5 (``feedback_items``, ``dossier_ratings``).

Kept apart from :mod:`services.scoring.projections` (its own consumer group, offsets and tables): the dossier
projection does not read these events, and group 5 is judged on read at each period's cut-off (a PAKN in
progress becomes overdue by the clock, not by an event), so the read model keeps facts, not counters.

Exactly once, and idempotent on top: the runner stores the offsets in the batch's transaction, and every
write is a merge that gives the same row whatever the order or repetition of the events — the first time a
PAKN entered each state (``LEAST``), the like/dislike counts of the latest observation, a rating stored once
per (dossier, platform, instant). Two to six statements per batch whatever its size.

Deadlines: a PAKN in progress turns late when its deadline passes, with no event. So that subscribers see
5.2 / 5.3 move then, ``feedback_deadlines`` keeps each open PAKN's next deadline instant
(:func:`~services.scoring.domain.feedback.next_deadline`), written in the batch's transaction from the merged
row: a function of the events only (a rebuild gives the same rows), but for ``fired_at``, which the publisher
sets when it marked the (unit, period) of a passed deadline dirty (:mod:`services.scoring.subscriptions_deadlines`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from contracts.dossiers import DossierRated, FeedbackReceived, FeedbackState, FeedbackStateChanged
from contracts.topics import DOSSIERS_EVENTS
from eventkit.pg import Connection, Migration
from eventkit.projection import ConsumedEvent, Projection
from eventkit.worktime import WorkingCalendar
from services.scoring.dirty import UnitDay, UnitDaysHook
from services.scoring.domain.activity import local_day
from services.scoring.domain.feedback import Pakn, next_deadline
from services.scoring.domain.periods import PeriodKind, periods_between
from services.scoring.feedback import calendar
from services.scoring.projections import LegacyDistrictOf

__all__ = ["FeedbackProjection"]

_TABLES = Migration(
    "0001_feedback",
    """
    CREATE TABLE feedback_items (
        feedback_id              text PRIMARY KEY,
        unitcode                 text NOT NULL,
        provincecode             text NOT NULL,
        legacy_district          text,
        category                 text,          -- null until the PAKN's receipt is seen
        received_at              timestamptz,
        dossier_id               text,
        follows_up               text,
        rejected_at              timestamptz,
        supplement_at            timestamptz,
        processing_at            timestamptz,
        awaiting_publication_at  timestamptz,
        published_at             timestamptz,
        likes                    integer,
        dislikes                 integer,
        likes_at                 timestamptz,
        finished_at              timestamptz GENERATED ALWAYS AS
                                     (LEAST(rejected_at, awaiting_publication_at, published_at)) STORED
    );
    CREATE INDEX feedback_items_unit ON feedback_items (unitcode, received_at);
    CREATE INDEX feedback_items_province ON feedback_items (provincecode, received_at);
    CREATE INDEX feedback_items_district ON feedback_items (legacy_district, received_at)
        WHERE legacy_district IS NOT NULL;
    CREATE INDEX feedback_items_follows_up ON feedback_items (follows_up) WHERE follows_up IS NOT NULL;
    CREATE TABLE dossier_ratings (
        dossier_id       text NOT NULL,
        rated_via        text NOT NULL,
        rated_at         timestamptz NOT NULL,
        unitcode         text NOT NULL,
        provincecode     text NOT NULL,
        legacy_district  text,
        rating           text NOT NULL,
        PRIMARY KEY (dossier_id, rated_via, rated_at)
    );
    CREATE INDEX dossier_ratings_unit ON dossier_ratings (unitcode, rated_at);
    CREATE INDEX dossier_ratings_province ON dossier_ratings (provincecode, rated_at);
    CREATE INDEX dossier_ratings_district ON dossier_ratings (legacy_district, rated_at)
        WHERE legacy_district IS NOT NULL;
    """,
)

_DEADLINES = Migration(
    "0002_feedback_deadlines",
    """
    -- the next instant each open PAKN turns late by the clock alone (none: finished, or not yet received)
    CREATE TABLE feedback_deadlines (
        feedback_id   text PRIMARY KEY,
        due_at        timestamptz NOT NULL,
        unitcode      text NOT NULL,
        provincecode  text NOT NULL,
        -- set by the publisher's round that handled this deadline, cleared by a new one; not compared by
        -- verify (services.scoring.subscriptions_deadlines)
        fired_at      timestamptz
    );
    -- a round reads only the deadlines not yet handled, however many overdue PAKN stay open
    CREATE INDEX feedback_deadlines_due ON feedback_deadlines (due_at) WHERE fired_at IS NULL;
    """,
)

_STATE_COLUMN = {
    FeedbackState.REJECTED: "rejected_at",
    FeedbackState.SUPPLEMENT_REQUESTED: "supplement_at",
    FeedbackState.PROCESSING: "processing_at",
    FeedbackState.AWAITING_PUBLICATION: "awaiting_publication_at",
    FeedbackState.PUBLISHED: "published_at",
}
_TIMES = ("rejected_at", "supplement_at", "processing_at", "awaiting_publication_at", "published_at")


@dataclass(slots=True)
class _Row:
    """One PAKN's facts from one batch, merged (the table merges them again with what it has)."""

    unitcode: str
    provincecode: str
    legacy_district: str | None
    category: str | None = None
    received_at: datetime | None = None
    dossier_id: str | None = None
    follows_up: str | None = None
    likes: int | None = None
    dislikes: int | None = None
    likes_at: datetime | None = None
    times: dict[str, datetime] = field(default_factory=dict)  # state column -> first time

    def received(self, data: FeedbackReceived) -> None:
        self.category, self.received_at = data.category.value, data.received_at
        self.dossier_id, self.follows_up = data.dossier_id, data.follows_up_feedback_id

    def state_changed(self, data: FeedbackStateChanged) -> None:
        column = _STATE_COLUMN.get(data.state)
        if column is not None:  # the first time it entered the state (a repeat changes nothing)
            known = self.times.get(column)
            self.times[column] = data.changed_at if known is None else min(known, data.changed_at)
        if (data.likes is not None or data.dislikes is not None) and (
            self.likes_at is None or data.changed_at >= self.likes_at
        ):
            self.likes, self.dislikes, self.likes_at = data.likes, data.dislikes, data.changed_at


class FeedbackProjection(Projection):
    """PAKN handling facts and per-dossier ratings, per unit (and province, legacy district) for group 5."""

    name = "scoring.feedback"
    topics = (DOSSIERS_EVENTS,)
    event_types = frozenset({FeedbackReceived.event_type, FeedbackStateChanged.event_type, DossierRated.event_type})
    dedupe_event_ids = False  # the canonical topic carries each event once, and every write merges anyway
    migrations = (_TABLES, _DEADLINES)

    def __init__(
        self,
        legacy_district_of: LegacyDistrictOf | None = None,
        on_change: UnitDaysHook | None = None,
        cal: WorkingCalendar | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._district_of = legacy_district_of or (lambda code: code if len(code) == 3 else None)
        self._on_change = on_change  # subscriptions: marks the changed (unit, period) keys in this transaction
        self._cal = cal or calendar()  # the calendar the read side judges the PAKN in
        # with a clock, a PAKN still in progress marks its months up to today, like an open dossier: an event
        # that arrives after a month began (the publisher's boundary already handled) still reaches that month
        self._clock = clock

    def _district(self, event: ConsumedEvent) -> str | None:
        legacy = event.attributes.legacyunitcode
        return None if legacy is None else self._district_of(legacy)

    async def apply(self, conn: Connection, events: Sequence[ConsumedEvent]) -> None:
        """Merge the batch's PAKN facts and ratings into the tables; mark the periods they move dirty."""
        rows: dict[str, _Row] = {}
        ratings: dict[tuple[str, str, datetime], tuple[ConsumedEvent, DossierRated]] = {}
        event_days: dict[str, set[date]] = {}
        for event in events:
            data = event.data
            a = event.attributes
            if isinstance(data, DossierRated):
                ratings.setdefault((data.dossier_id, data.rated_via.value, data.rated_at), (event, data))
                continue
            assert isinstance(data, FeedbackReceived | FeedbackStateChanged)
            row = rows.get(data.feedback_id)
            if row is None:
                row = rows[data.feedback_id] = _Row(a.unitcode, a.provincecode, self._district(event))
            if isinstance(data, FeedbackReceived):
                row.unitcode, row.provincecode, row.legacy_district = a.unitcode, a.provincecode, self._district(event)
                row.received(data)
                day = data.received_at
            else:
                row.state_changed(data)
                day = data.changed_at
            event_days.setdefault(data.feedback_id, set()).add(local_day(day))
        today = local_day(self._clock()) if self._clock is not None else None
        changed: set[UnitDay] = await _store_items(conn, rows, event_days, self._cal, today) if rows else set()
        if ratings:
            await _insert_ratings(conn, ratings, self._district)
            for event, data in ratings.values():
                changed.add((event.attributes.unitcode, event.attributes.provincecode, local_day(data.rated_at), None))
        if self._on_change is not None and changed:
            await self._on_change(conn, sorted(changed, key=str))


async def _store_items(
    conn: Connection,
    rows: dict[str, _Row],
    event_days: dict[str, set[date]],
    cal: WorkingCalendar,
    today: date | None,
) -> set[UnitDay]:
    """Merge the PAKN rows and their next deadlines; the (unit, day) keys whose periods they move (up to
    ``today`` for a PAKN still in progress)."""
    changed: set[UnitDay] = set()
    merged = await _merge_items(conn, rows)
    for r in merged:
        days = event_days[r["feedback_id"]]
        in_progress = r["rejected_at"] is None and r["awaiting_publication_at"] is None and r["published_at"] is None
        if today is not None and in_progress:
            days = {*days, today}
        changed.update(_span(r["unitcode"], r["provincecode"], r["received_at"], days))
    await _store_deadlines(conn, merged, cal)
    originals = sorted({r.follows_up for r in rows.values() if r.follows_up})
    if originals:  # a follow-up changes the 5.3 verdict of the PAKN it complains about
        for r in await conn.fetch(
            "SELECT unitcode, provincecode, received_at FROM feedback_items WHERE feedback_id = ANY($1::text[])",
            originals,
        ):
            if r["received_at"] is not None:
                changed.add((r["unitcode"], r["provincecode"], local_day(r["received_at"]), None))
    return changed


def _span(unit: str, province: str, received_at: datetime | None, days: set[date]) -> set[UnitDay]:
    """The days whose periods a PAKN's change can move: the events' days and, from its receipt on, one day in
    each month up to the latest (it is measured by 5.2 in every period it is in progress at the cut-off)."""
    out: set[UnitDay] = {(unit, province, d, None) for d in days}
    if received_at is not None and days:
        first = local_day(received_at)
        out.update((unit, province, m, None) for m in periods_between(PeriodKind.MONTH, first, max(*days, first)))
    return out


async def _merge_items(conn: Connection, rows: dict[str, _Row]) -> list[Any]:
    ids = sorted(rows)
    merged = [rows[i] for i in ids]
    return list(
        await conn.fetch(
            f"""INSERT INTO feedback_items AS t (feedback_id, unitcode, provincecode, legacy_district, category,
                                                received_at, dossier_id, follows_up, {", ".join(_TIMES)},
                                                likes, dislikes, likes_at)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                                     $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[],
                                     $11::timestamptz[], $12::timestamptz[], $13::timestamptz[], $14::int[],
                                     $15::int[], $16::timestamptz[])
                ON CONFLICT (feedback_id) DO UPDATE SET
                    -- the receipt decides where a PAKN counts; a state change alone keeps what is stored
                    unitcode = CASE WHEN EXCLUDED.received_at IS NOT NULL THEN EXCLUDED.unitcode ELSE t.unitcode END,
                    provincecode = CASE WHEN EXCLUDED.received_at IS NOT NULL THEN EXCLUDED.provincecode
                                        ELSE t.provincecode END,
                    legacy_district = CASE WHEN EXCLUDED.received_at IS NOT NULL THEN EXCLUDED.legacy_district
                                           ELSE t.legacy_district END,
                    category = COALESCE(EXCLUDED.category, t.category),
                    received_at = COALESCE(EXCLUDED.received_at, t.received_at),
                    dossier_id = CASE WHEN EXCLUDED.received_at IS NOT NULL THEN EXCLUDED.dossier_id
                                      ELSE t.dossier_id END,
                    follows_up = CASE WHEN EXCLUDED.received_at IS NOT NULL THEN EXCLUDED.follows_up
                                      ELSE t.follows_up END,
                    {", ".join(f"{c} = LEAST(t.{c}, EXCLUDED.{c})" for c in _TIMES)},
                    likes = CASE WHEN EXCLUDED.likes_at >= t.likes_at OR t.likes_at IS NULL THEN EXCLUDED.likes
                                 ELSE t.likes END,
                    dislikes = CASE WHEN EXCLUDED.likes_at >= t.likes_at OR t.likes_at IS NULL THEN EXCLUDED.dislikes
                                    ELSE t.dislikes END,
                    likes_at = GREATEST(t.likes_at, EXCLUDED.likes_at)
                RETURNING feedback_id, unitcode, provincecode, category, received_at, rejected_at,
                          awaiting_publication_at, published_at""",
            ids,
            [r.unitcode for r in merged],
            [r.provincecode for r in merged],
            [r.legacy_district for r in merged],
            [r.category for r in merged],
            [r.received_at for r in merged],
            [r.dossier_id for r in merged],
            [r.follows_up for r in merged],
            *([r.times.get(c) for r in merged] for c in _TIMES),
            [r.likes for r in merged],
            [r.dislikes for r in merged],
            [r.likes_at for r in merged],
        )
    )


async def _store_deadlines(conn: Connection, merged: Sequence[Any], cal: WorkingCalendar) -> None:
    """Set the next deadline of each merged PAKN, or drop it when none is ahead (finished, or not yet received).

    Only the states that decide a deadline are read (:func:`next_deadline`): a merged row is the whole PAKN.
    """
    due: dict[str, tuple[datetime, str, str]] = {}
    for r in merged:
        if r["received_at"] is None:
            continue
        pakn = Pakn(
            r["feedback_id"],
            r["unitcode"],
            r["category"] or "",
            r["received_at"],
            rejected_at=r["rejected_at"],
            awaiting_publication_at=r["awaiting_publication_at"],
            published_at=r["published_at"],
        )
        at = next_deadline(pakn, cal)
        if at is not None:
            due[pakn.feedback_id] = (at, pakn.unitcode, r["provincecode"])
    gone = sorted(r["feedback_id"] for r in merged if r["feedback_id"] not in due)
    if gone:
        await conn.execute("DELETE FROM feedback_deadlines WHERE feedback_id = ANY($1::text[])", gone)
    if due:
        ids = sorted(due)
        await conn.execute(
            """INSERT INTO feedback_deadlines AS t (feedback_id, due_at, unitcode, provincecode)
               SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[])
               ON CONFLICT (feedback_id) DO UPDATE SET
                   due_at = EXCLUDED.due_at, unitcode = EXCLUDED.unitcode, provincecode = EXCLUDED.provincecode,
                   fired_at = NULL  -- a new deadline (or place) is handled in its turn; the same one only once
               WHERE (t.due_at, t.unitcode, t.provincecode)
                     IS DISTINCT FROM (EXCLUDED.due_at, EXCLUDED.unitcode, EXCLUDED.provincecode)""",
            ids,
            [due[i][0] for i in ids],
            [due[i][1] for i in ids],
            [due[i][2] for i in ids],
        )


async def _insert_ratings(
    conn: Connection,
    ratings: dict[tuple[str, str, datetime], tuple[ConsumedEvent, DossierRated]],
    district: Any,
) -> None:
    keys = sorted(ratings)
    await conn.execute(
        """INSERT INTO dossier_ratings (dossier_id, rated_via, rated_at, unitcode, provincecode, legacy_district,
                                       rating)
           SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
                                $7::text[])
           ON CONFLICT DO NOTHING""",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [ratings[k][0].attributes.unitcode for k in keys],
        [ratings[k][0].attributes.provincecode for k in keys],
        [district(ratings[k][0]) for k in keys],
        [ratings[k][1].rating.value for k in keys],
    )
