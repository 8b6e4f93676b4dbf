"""PAKN deadlines that pass with no event: the (unit, period) keys they move, each deadline once.

A PAKN in progress becomes overdue by the clock (F766 5.2: 15 working days after receipt, 2 after "chờ công
khai"), not by an event, so no projection batch marks its periods dirty then. The feedback projection keeps
each open PAKN's next deadline in ``feedback_deadlines`` (a function of the events, rebuilt like the rest of
the read model); the publisher's round calls :func:`take_due_deadlines` inside its own transaction, marks the
keys it returns dirty and recomputes them in the same round.

Exactly once per deadline, crash-safe: ``scoring_deadlines_fired`` (owned by the publisher, not by the
projection, so a rebuild neither loses nor replays it) records the deadline instant last handled per PAKN, in
the round's transaction. A deadline is due when it has passed and differs from the one recorded: a rolled-back
round fires it again, a committed one never; a PAKN that moves on to a new state gets a new instant, fired in
its turn. A deadline row committed while a round runs is simply seen by the next round.
"""

from __future__ import annotations

from datetime import datetime

from eventkit.pg import Connection, Migration
from services.scoring.dirty import UnitDay
from services.scoring.domain.activity import local_day

__all__ = ["DEADLINE_MIGRATION", "take_due_deadlines"]

DEADLINE_MIGRATION = Migration(
    "0003_deadlines",
    """
    CREATE TABLE scoring_deadlines_fired (
        feedback_id  text PRIMARY KEY,
        due_at       timestamptz NOT NULL
    );
    """,
)


async def take_due_deadlines(conn: Connection, now: datetime) -> list[UnitDay]:
    """The (unit, day of the deadline) of each PAKN deadline passed by ``now`` and not yet handled, recorded as
    handled in the caller's transaction. Empty while the feedback projection has not created its table.

    The day is the deadline's: the value of a period whose cut-off is before it does not change, and a later
    period (begun after the deadline) was computed with the PAKN already late.
    """
    if not await conn.fetchval("SELECT to_regclass('feedback_deadlines') IS NOT NULL"):
        return []
    rows = await conn.fetch(
        """SELECT d.feedback_id, d.due_at, d.unitcode, d.provincecode
           FROM feedback_deadlines d LEFT JOIN scoring_deadlines_fired f ON f.feedback_id = d.feedback_id
           WHERE d.due_at <= $1 AND f.due_at IS DISTINCT FROM d.due_at
           ORDER BY d.feedback_id""",
        now,
    )
    if not rows:
        return []
    await conn.execute(
        """INSERT INTO scoring_deadlines_fired (feedback_id, due_at)
           SELECT * FROM unnest($1::text[], $2::timestamptz[])
           ON CONFLICT (feedback_id) DO UPDATE SET due_at = EXCLUDED.due_at""",
        [r["feedback_id"] for r in rows],
        [r["due_at"] for r in rows],
    )
    # the record of a PAKN with no deadline left (finished) is not needed any more: kept small
    await conn.execute(
        """DELETE FROM scoring_deadlines_fired f
           WHERE NOT EXISTS (SELECT 1 FROM feedback_deadlines d WHERE d.feedback_id = f.feedback_id)"""
    )
    return [(r["unitcode"], r["provincecode"], local_day(r["due_at"]), None) for r in rows]
