"""Plans events -> targets, tasks, reports and PAR criterion assessments per unit (the inputs of the tasks /
reports on-time rates, the PAR Index and targets vs actuals).

Every row is keyed by its own id and every column is a fact that only ever gets known (a due date, a
completion, a cancellation), so a batch is folded in memory into one partial row per id and written with one
``unnest`` upsert per table that keeps what is already known (``COALESCE(EXCLUDED.x, t.x)``): re-delivered and
out-of-order events converge to the same rows. An assessment (self / appraisal) keeps its latest version by
the time the assessment was made (a zeroing is an appraisal of 0 with its reason). At most four statements a
batch; the runner makes the batch exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from contracts.plans import (
    CriterionAppraised,
    CriterionSelfAssessed,
    CriterionZeroed,
    ReportScheduled,
    ReportSubmitted,
    TargetSet,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
)
from contracts.topics import PLANS_EVENTS
from eventkit.pg import Connection, Migration
from eventkit.projection import ConsumedEvent, Projection
from services.scoring.dirty import UnitDay, UnitDaysHook
from services.scoring.domain.periods import PeriodKind

__all__ = ["PlansIndicatorsProjection"]

_TABLES = Migration(
    "0001_plans_indicators",
    """
    CREATE TABLE plan_targets (
        target_id        text PRIMARY KEY,
        plan_id          text NOT NULL,
        unitcode         text NOT NULL,
        provincecode     text NOT NULL,
        indicator_key    text NOT NULL,
        comparison       text NOT NULL,
        target_value     float8 NOT NULL,
        unit_of_measure  text NOT NULL,
        period_start     date NOT NULL,
        period_end       date NOT NULL,
        description      text NOT NULL
    );
    CREATE INDEX plan_targets_unit ON plan_targets (unitcode);
    CREATE TABLE plan_tasks (
        task_id       text PRIMARY KEY,
        plan_id       text NOT NULL,
        unitcode      text NOT NULL,
        provincecode  text NOT NULL,
        title         text,
        due_date      date,
        done_at       timestamptz,
        on_time       boolean,
        cancelled_at  timestamptz
    );
    CREATE INDEX plan_tasks_unit ON plan_tasks (unitcode, due_date);
    CREATE INDEX plan_tasks_province ON plan_tasks (provincecode, due_date);
    CREATE TABLE plan_reports (
        report_id     text PRIMARY KEY,
        unitcode      text NOT NULL,
        provincecode  text NOT NULL,
        title         text,
        due_date      date,
        submitted_at  timestamptz,
        on_time       boolean
    );
    CREATE INDEX plan_reports_unit ON plan_reports (unitcode, due_date);
    CREATE INDEX plan_reports_province ON plan_reports (provincecode, due_date);
    CREATE TABLE par_assessments (
        unitcode         text NOT NULL,
        provincecode     text NOT NULL,
        criteria_set_id  text NOT NULL,
        year             int NOT NULL,
        criterion_id     text NOT NULL,
        kind             text NOT NULL,   -- self | appraisal
        score            float8 NOT NULL,
        max_score        float8 NOT NULL,
        zeroed_reason    text,
        appraiser        text,
        at               timestamptz NOT NULL,
        PRIMARY KEY (unitcode, criteria_set_id, year, criterion_id, kind)
    );
    CREATE INDEX par_assessments_province ON par_assessments (provincecode, criteria_set_id, year);
    """,
)

_EVIDENCE = Migration(
    "0002_par_evidence",
    """
    -- the evidence refs (tài liệu kiểm chứng) submitted with a self-assessment or accepted by an appraisal
    ALTER TABLE par_assessments ADD COLUMN evidence jsonb NOT NULL DEFAULT '[]';
    """,
)

_TYPES = (
    TargetSet,
    TaskAssigned,
    TaskCompleted,
    TaskCancelled,
    ReportScheduled,
    ReportSubmitted,
    CriterionSelfAssessed,
    CriterionAppraised,
    CriterionZeroed,
)


@dataclass
class _Task:
    plan_id: str
    unitcode: str
    provincecode: str
    title: str | None = None
    due_date: date | None = None
    done_at: datetime | None = None
    on_time: bool | None = None
    cancelled_at: datetime | None = None


@dataclass
class _Report:
    unitcode: str
    provincecode: str
    title: str | None = None
    due_date: date | None = None
    submitted_at: datetime | None = None
    on_time: bool | None = None


@dataclass
class _Fold:
    targets: dict[str, tuple[str, str, TargetSet]] = field(default_factory=dict)
    tasks: dict[str, _Task] = field(default_factory=dict)
    reports: dict[str, _Report] = field(default_factory=dict)
    # (unit, set, year, criterion, kind) -> (province, score, max, zeroed reason, appraiser, at, evidence json)
    assessed: dict[tuple[str, str, int, str, str], tuple[str, float, float, str | None, str | None, datetime, str]] = (
        field(default_factory=dict)
    )

    def assess(
        self,
        unit: str,
        province: str,
        data: CriterionSelfAssessed | CriterionAppraised | CriterionZeroed,
    ) -> None:
        row: tuple[str, float, float, str | None, str | None, datetime, str]
        if isinstance(data, CriterionSelfAssessed):
            kind, row = "self", (province, data.score, data.max_score, None, None, data.assessed_at, _refs(data))
        elif isinstance(data, CriterionAppraised):
            at = data.appraised_at
            kind, row = "appraisal", (province, data.score, data.max_score, None, data.appraiser, at, _refs(data))
        else:
            reason = data.reason.value
            kind, row = "appraisal", (province, 0.0, data.max_score, reason, data.appraiser, data.zeroed_at, "[]")
        key = (unit, data.criteria_set_id, data.year, data.criterion_id, kind)
        if key not in self.assessed or self.assessed[key][5] <= row[5]:
            self.assessed[key] = row


def _refs(data: CriterionSelfAssessed | CriterionAppraised) -> str:
    return json.dumps([e.model_dump(mode="json") for e in data.evidence], ensure_ascii=False)


class PlansIndicatorsProjection(Projection):
    """Targets, tasks, reports and PAR assessments per unit, from the plans events."""

    name = "scoring.plans_indicators"
    topics = (PLANS_EVENTS,)
    event_types = frozenset(t.event_type for t in _TYPES)
    dedupe_event_ids = False  # every write is an idempotent upsert
    migrations = (_TABLES, _EVIDENCE)

    def __init__(self, on_change: UnitDaysHook | None = None) -> None:
        self._on_change = on_change  # subscriptions: marks the (unit, period) keys of changed rows dirty

    async def apply(self, conn: Connection, events: Sequence[ConsumedEvent]) -> None:
        """Fold the batch per id, then one upsert per table."""
        fold = _Fold()
        for event in events:
            unit, province = event.attributes.unitcode, event.attributes.provincecode
            data: Any = event.data
            if isinstance(data, TargetSet):
                fold.targets[data.target_id] = (unit, province, data)
            elif isinstance(data, TaskAssigned | TaskCompleted | TaskCancelled):
                task = fold.tasks.setdefault(data.task_id, _Task(data.plan_id, unit, province))
                if isinstance(data, TaskAssigned):
                    task.title, task.due_date = data.title, data.due_date or task.due_date
                elif isinstance(data, TaskCompleted):
                    task.done_at, task.on_time = data.done_at, data.on_time
                    task.due_date = data.due_date or task.due_date
                else:
                    task.cancelled_at = data.cancelled_at
            elif isinstance(data, ReportScheduled | ReportSubmitted):
                report = fold.reports.setdefault(data.report_id, _Report(unit, province))
                if isinstance(data, ReportScheduled):
                    report.title, report.due_date = data.title, data.due_date
                else:
                    report.submitted_at, report.on_time = data.submitted_at, data.on_time
                    report.due_date = data.due_date or report.due_date
            elif isinstance(data, CriterionSelfAssessed | CriterionAppraised | CriterionZeroed):
                fold.assess(unit, province, data)
        changed = await _write(conn, fold)
        if self._on_change is not None and changed:
            await self._on_change(conn, sorted(changed, key=str))


async def _write(conn: Connection, fold: _Fold) -> set[UnitDay]:
    """The upserts; returns the (unit, period) keys of the rows they wrote (from ``RETURNING``)."""
    changed: set[UnitDay] = set()
    if fold.targets:
        ids = sorted(fold.targets)
        t = [fold.targets[i] for i in ids]
        written = await conn.fetch(
            """INSERT INTO plan_targets (target_id, plan_id, unitcode, provincecode, indicator_key, comparison,
                                         target_value, unit_of_measure, period_start, period_end, description)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                    $7::float8[], $8::text[], $9::date[], $10::date[], $11::text[])
               ON CONFLICT (target_id) DO UPDATE SET plan_id = EXCLUDED.plan_id, unitcode = EXCLUDED.unitcode,
                   provincecode = EXCLUDED.provincecode, indicator_key = EXCLUDED.indicator_key,
                   comparison = EXCLUDED.comparison, target_value = EXCLUDED.target_value,
                   unit_of_measure = EXCLUDED.unit_of_measure, period_start = EXCLUDED.period_start,
                   period_end = EXCLUDED.period_end, description = EXCLUDED.description
               RETURNING unitcode, provincecode, period_start, period_end""",
            ids,
            [x[2].plan_id for x in t],
            [x[0] for x in t],
            [x[1] for x in t],
            [x[2].indicator_key for x in t],
            [x[2].comparison.value for x in t],
            [x[2].target_value for x in t],
            [x[2].unit_of_measure.value for x in t],
            [x[2].period_start for x in t],
            [x[2].period_end for x in t],
            [x[2].description for x in t],
        )
        for w in written:  # the actual of a target is its indicator in the target's period
            changed.add((w["unitcode"], w["provincecode"], w["period_start"], None))
            changed.add((w["unitcode"], w["provincecode"], w["period_end"], None))
    if fold.tasks:
        ids = sorted(fold.tasks)
        k = [fold.tasks[i] for i in ids]
        written = await conn.fetch(
            """INSERT INTO plan_tasks AS t (task_id, plan_id, unitcode, provincecode, title, due_date, done_at,
                                            on_time, cancelled_at)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::date[],
                                    $7::timestamptz[], $8::boolean[], $9::timestamptz[])
               ON CONFLICT (task_id) DO UPDATE SET title = COALESCE(EXCLUDED.title, t.title),
                   due_date = COALESCE(EXCLUDED.due_date, t.due_date), done_at = COALESCE(EXCLUDED.done_at, t.done_at),
                   on_time = COALESCE(EXCLUDED.on_time, t.on_time),
                   cancelled_at = COALESCE(EXCLUDED.cancelled_at, t.cancelled_at)
               RETURNING t.unitcode, t.provincecode, t.due_date""",
            ids,
            [x.plan_id for x in k],
            [x.unitcode for x in k],
            [x.provincecode for x in k],
            [x.title for x in k],
            [x.due_date for x in k],
            [x.done_at for x in k],
            [x.on_time for x in k],
            [x.cancelled_at for x in k],
        )
        changed.update(_due_keys(written))
    if fold.reports:
        ids = sorted(fold.reports)
        r = [fold.reports[i] for i in ids]
        written = await conn.fetch(
            """INSERT INTO plan_reports AS t (report_id, unitcode, provincecode, title, due_date, submitted_at,
                                              on_time)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::date[], $6::timestamptz[],
                                    $7::boolean[])
               ON CONFLICT (report_id) DO UPDATE SET title = COALESCE(EXCLUDED.title, t.title),
                   due_date = COALESCE(EXCLUDED.due_date, t.due_date),
                   submitted_at = COALESCE(EXCLUDED.submitted_at, t.submitted_at),
                   on_time = COALESCE(EXCLUDED.on_time, t.on_time)
               RETURNING t.unitcode, t.provincecode, t.due_date""",
            ids,
            [x.unitcode for x in r],
            [x.provincecode for x in r],
            [x.title for x in r],
            [x.due_date for x in r],
            [x.submitted_at for x in r],
            [x.on_time for x in r],
        )
        changed.update(_due_keys(written))
    if fold.assessed:
        keys = sorted(fold.assessed)
        v = [fold.assessed[key] for key in keys]
        written = await conn.fetch(
            """INSERT INTO par_assessments AS t (unitcode, criteria_set_id, year, criterion_id, kind, provincecode,
                                                 score, max_score, zeroed_reason, appraiser, at, evidence)
               SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[],
                                    $7::float8[], $8::float8[], $9::text[], $10::text[], $11::timestamptz[],
                                    $12::jsonb[])
               ON CONFLICT (unitcode, criteria_set_id, year, criterion_id, kind) DO UPDATE SET
                   provincecode = EXCLUDED.provincecode, score = EXCLUDED.score, max_score = EXCLUDED.max_score,
                   zeroed_reason = EXCLUDED.zeroed_reason, appraiser = EXCLUDED.appraiser, at = EXCLUDED.at,
                   evidence = EXCLUDED.evidence
               WHERE EXCLUDED.at >= t.at
               RETURNING t.unitcode, t.provincecode, t.year""",
            *([key[i] for key in keys] for i in range(5)),
            *([row[i] for row in v] for i in range(7)),
        )
        # the PAR Index is yearly: only the year's key moves
        changed.update((w["unitcode"], w["provincecode"], date(w["year"], 1, 1), PeriodKind.YEAR) for w in written)
    return changed


def _due_keys(rows: Sequence[Any]) -> set[UnitDay]:
    """A task or report counts in the period of its due date (one without a due date counts nowhere)."""
    return {(r["unitcode"], r["provincecode"], r["due_date"], None) for r in rows if r["due_date"] is not None}
