"""Survey responses -> per (unit, instrument version, period) answer counters (SIPAS, PAPI-proxy).

A response is immutable and counted once: the batch's responses are inserted by ``response_id`` (``ON
CONFLICT DO NOTHING RETURNING``), and only the ones actually inserted add to the counters, so a response
delivered twice (a retried publish under a new event id included) never counts twice. Two statements per
batch whatever its size; the runner makes the batch exactly once (offsets in the same transaction).
The counters keep the raw answer distribution (see :mod:`services.scoring.domain.surveys`); the aggregators
are applied on read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from contracts.surveys import SurveyResponseSubmitted
from contracts.topics import SURVEYS_EVENTS
from eventkit.pg import Connection, Migration
from eventkit.projection import ConsumedEvent, Projection
from services.scoring.dirty import UnitDay, UnitDaysHook
from services.scoring.domain.activity import local_day
from services.scoring.domain.periods import STORED_KINDS, period_start
from services.scoring.domain.surveys import count_answers

__all__ = ["SurveyIndicatorsProjection"]

_TABLES = Migration(
    "0001_survey_indicators",
    """
    CREATE TABLE survey_responses (
        response_id         text PRIMARY KEY,
        unitcode            text NOT NULL,
        provincecode        text NOT NULL,
        instrument_id       text NOT NULL,
        instrument_version  text NOT NULL,
        day                 date NOT NULL,
        channel             text NOT NULL,
        linked_dossier_id   text
    );
    CREATE INDEX survey_responses_unit ON survey_responses (unitcode, day);
    CREATE TABLE survey_counters (
        unitcode            text NOT NULL,
        provincecode        text NOT NULL,
        instrument_id       text NOT NULL,
        instrument_version  text NOT NULL,
        period_kind         text NOT NULL,
        period_start        date NOT NULL,
        counter             text NOT NULL,
        value               float8 NOT NULL,
        PRIMARY KEY (unitcode, period_kind, period_start, instrument_id, instrument_version, counter)
    );
    CREATE INDEX survey_counters_province ON survey_counters (provincecode, period_kind, period_start);
    """,
)

# (unitcode, provincecode, instrument id, version, period kind, period start, counter)
_Key = tuple[str, str, str, str, str, object, str]


class SurveyIndicatorsProjection(Projection):
    """Answer counters per unit, instrument version and period, from ``survey response submitted``."""

    name = "scoring.survey_indicators"
    topics = (SURVEYS_EVENTS,)
    event_types = frozenset({SurveyResponseSubmitted.event_type})
    migrations = (_TABLES,)

    def __init__(self, on_change: UnitDaysHook | None = None) -> None:
        self._on_change = on_change  # subscriptions: marks the (unit, period) keys of new responses dirty

    async def apply(self, conn: Connection, events: Sequence[ConsumedEvent]) -> None:
        """Insert the new responses, then add the counters of those actually inserted."""
        rows: dict[str, tuple[ConsumedEvent, SurveyResponseSubmitted]] = {}
        for event in events:
            data = event.data
            assert isinstance(data, SurveyResponseSubmitted)
            rows.setdefault(data.response_id, (event, data))
        ids = sorted(rows)
        inserted = await conn.fetch(
            """INSERT INTO survey_responses (response_id, unitcode, provincecode, instrument_id, instrument_version,
                                             day, channel, linked_dossier_id)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::date[],
                                    $7::text[], $8::text[])
               ON CONFLICT (response_id) DO NOTHING RETURNING response_id""",
            ids,
            [rows[i][0].attributes.unitcode for i in ids],
            [rows[i][0].attributes.provincecode for i in ids],
            [rows[i][1].instrument_id for i in ids],
            [rows[i][1].instrument_version for i in ids],
            [local_day(rows[i][1].submitted_at) for i in ids],
            [rows[i][1].channel.value for i in ids],
            [rows[i][1].linked_dossier_id for i in ids],
        )
        delta: Counter[_Key] = Counter()
        changed: set[UnitDay] = set()
        for record in inserted:
            event, data = rows[record["response_id"]]
            a = event.attributes
            day = local_day(data.submitted_at)
            changed.add((a.unitcode, a.provincecode, day, None))
            counts = count_answers(((x.item_id, x.value) for x in data.answers), weighted=data.weight is not None)
            for kind in STORED_KINDS:
                start = period_start(kind, day)
                for counter, n in counts.items():
                    key = (
                        a.unitcode,
                        a.provincecode,
                        data.instrument_id,
                        data.instrument_version,
                        kind.value,
                        start,
                        counter,
                    )
                    delta[key] += n
        if self._on_change is not None and changed:
            await self._on_change(conn, sorted(changed, key=str))
        if not delta:
            return
        keys = sorted(delta, key=str)
        await conn.execute(
            """INSERT INTO survey_counters (unitcode, provincecode, instrument_id, instrument_version, period_kind,
                                            period_start, counter, value)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::date[],
                                    $7::text[], $8::float8[])
               ON CONFLICT (unitcode, period_kind, period_start, instrument_id, instrument_version, counter)
               DO UPDATE SET value = survey_counters.value + EXCLUDED.value""",
            *([k[i] for k in keys] for i in range(7)),
            [float(delta[k]) for k in keys],
        )
