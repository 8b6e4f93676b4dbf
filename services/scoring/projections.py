"""Read models of the scoring service."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.topics import DOSSIERS_EVENTS, PLANS_EVENTS, SURVEYS_EVENTS
from eventkit.pg import Connection, Migration
from eventkit.projection import ConsumedEvent, Projection
from services.scoring.domain import count_activity

__all__ = ["UnitActivityProjection"]


class UnitActivityProjection(Projection):
    """How many events of each type happened per unit and Vietnamese calendar day.

    The first read model of the system and the check that the pipeline is whole: every canonical event of
    every service lands in exactly one row, by event time (a late event updates the day it belongs to).
    Reads CloudEvents headers only, so it never needs a contract upgrade to count a new event type.
    """

    name = "scoring.unit_activity"
    topics = (DOSSIERS_EVENTS, SURVEYS_EVENTS, PLANS_EVENTS)
    validate_payloads = False
    migrations = (
        Migration(
            "0001_unit_activity",
            """
            CREATE TABLE unit_activity (
                unitcode      text NOT NULL,
                provincecode  text NOT NULL,
                day           date NOT NULL,
                event_type    text NOT NULL,
                events        bigint NOT NULL,
                PRIMARY KEY (unitcode, day, event_type)
            );
            CREATE INDEX unit_activity_province_day ON unit_activity (provincecode, day);
            """,
        ),
    )

    async def apply(self, conn: Connection, events: Sequence[ConsumedEvent]) -> None:
        """One pre-aggregated upsert per batch."""
        counts = count_activity(
            (e.attributes.unitcode, e.attributes.provincecode, e.attributes.time, e.attributes.type) for e in events
        )
        keys = sorted(counts)
        await conn.execute(
            """INSERT INTO unit_activity (unitcode, provincecode, day, event_type, events)
               SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::bigint[])
               ON CONFLICT (unitcode, day, event_type)
               DO UPDATE SET events = unit_activity.events + EXCLUDED.events""",
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [k[3] for k in keys],
            [counts[k] for k in keys],
        )
