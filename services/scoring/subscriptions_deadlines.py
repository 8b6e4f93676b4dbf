"""PAKN deadlines that pass with no event: the (unit, period) keys they move, each deadline once.

A PAKN in progress becomes overdue by the clock (F766 5.2: 15 working days after receipt, 2 after "chờ công
khai"), not by an event, so no projection batch marks its periods dirty then. The feedback projection keeps
each open PAKN's next deadline in ``feedback_deadlines``; the publisher's round calls
:func:`take_due_deadlines` inside its own transaction, marks the keys it returns dirty and recomputes them in
the same round.

Exactly once per deadline, crash-safe: the round sets ``fired_at`` on the rows it takes, in its transaction
(a rolled-back round leaves them due, a committed one never takes them again); the projection clears it only
when it writes a different deadline, which is then handled in its turn. Both write a row under its row lock
and the round takes only rows still unhandled, skipping those a batch holds, so a deadline the projection
replaces while a round runs is not lost. A round reads only the passed deadlines not yet handled (a partial
index), not every overdue PAKN still open. A rebuilt table has no ``fired_at``: its passed deadlines are handled
once more, which recomputes keys whose values did not move and so publishes nothing.
"""

from __future__ import annotations

from datetime import datetime

from eventkit.pg import Connection
from services.scoring.dirty import UnitDay
from services.scoring.domain.activity import local_day

__all__ = ["take_due_deadlines"]


async def take_due_deadlines(conn: Connection, now: datetime) -> list[UnitDay]:
    """The (unit, day of the deadline) of each PAKN deadline passed by ``now`` and not yet handled, recorded as
    handled in the caller's transaction. Empty while the feedback projection has not created its table.

    The day is the deadline's: the value of a period whose cut-off is before it does not change, and a later
    period (begun after the deadline) was computed with the PAKN already late.
    """
    # asked first, not caught: inside the publisher's transaction a failed statement would abort it
    if not await conn.fetchval("SELECT to_regclass('feedback_deadlines') IS NOT NULL"):
        return []
    # SKIP LOCKED: the round never waits on a projection batch writing the same PAKN (no lock-order deadlock);
    # such a row is still unhandled after that batch commits, and the next round takes it
    rows = await conn.fetch(
        """UPDATE feedback_deadlines d SET fired_at = $1
           FROM (SELECT feedback_id FROM feedback_deadlines WHERE fired_at IS NULL AND due_at <= $1
                 FOR UPDATE SKIP LOCKED) due
           WHERE d.feedback_id = due.feedback_id
           RETURNING d.unitcode, d.provincecode, d.due_at""",
        now,
    )
    return sorted({(r["unitcode"], r["provincecode"], local_day(r["due_at"]), None) for r in rows}, key=str)
