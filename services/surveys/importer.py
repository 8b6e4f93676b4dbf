"""Bulk import of paper results: ``chiso surveys import FILE`` (JSON lines or CSV) through the same intake.

Surveyors collect paper questionnaires; someone types them in. Each record is one questionnaire, judged
like a kiosk or partner submission (instrument version in force at its date, answers valid, unit known,
one response per dossier) and stored in the service's event store; the running service's relay publishes
the events. A record's ``id`` (the paper form's number) is its identity: importing a file again stores
nothing twice, so an interrupted import is simply run again.

JSON lines: one object per line with the fields of ``POST /v1/responses`` (``unitcode``, ``instrument_id``,
``instrument_version``, ``survey_id``, ``channel``, ``ma_tthc``, ``policy_group``, ``weight``,
``respondent``, ``answers``) plus ``id``, ``submitted_at`` (ISO 8601; no offset = Việt Nam time) and an
optional ``linked_dossier_id``. CSV: the same fields as columns, the profile as ``respondent.type``,
``respondent.age_band``, ``respondent.sex``, ``respondent.ethnicity``, and one column per item id (an empty
cell is no answer; a multi-choice cell lists its options separated by ``|``; scale cells are integers).

Rejected records go to a rejects file (JSON lines: record number, reasons, the original record) beside the
input unless another path is given; the summary counts them by rule.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg

from contracts.registry import default_registry
from eventkit import postgres
from eventkit.pg import apply_migrations, create_pool
from eventkit.postgres import PostgresEventStore
from services.surveys.catalog import InstrumentCatalog
from services.surveys.compose import build_intake
from services.surveys.domain import Instrument, ItemKind, Violation
from services.surveys.intake import ConcurrencyError, Intake, Submission
from services.surveys.settings import SurveysSettings

__all__ = ["DEFAULT_SOURCE", "ImportSummary", "read_records", "run_import", "to_submission"]

#: the sender paper results are attributed to (with the form number, the identity of a record)
DEFAULT_SOURCE = "urn:chiso:surveys:paper"
_VN = timezone(timedelta(hours=7))
_FIELDS = (
    "unitcode",
    "instrument_id",
    "instrument_version",
    "survey_id",
    "channel",
    "ma_tthc",
    "policy_group",
    "weight",
    "linked_dossier_id",
)
_PROFILE = ("type", "age_band", "sex", "ethnicity")


@dataclass
class ImportSummary:
    """What an import run did."""

    path: str
    total: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0
    #: rule -> how many records broke it
    reasons: Counter[str] = field(default_factory=Counter)
    #: first rejections: (record number, reason)
    examples: list[tuple[int, str]] = field(default_factory=list)
    rejects_path: str | None = None

    @property
    def records_per_second(self) -> float:
        """Records handled per second."""
        return self.total / self.seconds if self.seconds > 0 else 0.0


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(record number, record or why the line cannot be read), from JSON lines or CSV (by suffix)."""
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=1):
                yield number, _from_csv(row)
        return
    with path.open(encoding="utf-8") as handle:
        number = 0
        for line in handle:
            if not line.strip():
                continue
            number += 1
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"not JSON: {exc.msg} at column {exc.colno}"
                continue
            yield number, record if isinstance(record, dict) else "a record is a JSON object"


def _from_csv(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row as a JSON-lines record; cells stay text (typed later, with the instrument)."""
    record: dict[str, Any] = {"respondent": {}, "answers": {}, "_csv": True}
    for column, cell in row.items():
        if column is None or cell is None or cell.strip() == "":
            continue  # extra cells without a header, empty cells: no value
        value = cell.strip()
        if column in {"id", "submitted_at", *_FIELDS}:
            record[column] = value
        elif column.startswith("respondent."):
            record["respondent"][column.removeprefix("respondent.")] = value
        else:
            record["answers"][column] = value
    return record


def _typed(instrument: Instrument | None, answers: dict[str, Any]) -> dict[str, Any]:
    """CSV cells typed by their items: scale points to integers, multi-choice cells split on ``|``."""
    kinds = {item.id: item.kind for item in instrument.items()} if instrument else {}
    typed: dict[str, Any] = {}
    for item_id, value in answers.items():
        kind = kinds.get(item_id)
        if kind is ItemKind.SCALE and isinstance(value, str) and value.lstrip("-").isdigit():
            typed[item_id] = int(value)
        elif kind is ItemKind.MULTI_CHOICE and isinstance(value, str):
            typed[item_id] = [part.strip() for part in value.split("|") if part.strip()]
        else:
            typed[item_id] = value  # unknown items and malformed cells: the validator names them
    return typed


def to_submission(record: dict[str, Any], catalog: InstrumentCatalog, source: str) -> Submission | list[Violation]:
    """A record as a submission, or why it cannot even be read as one."""
    problems: list[Violation] = []
    form_id = record.get("id")
    if not isinstance(form_id, str | int) or isinstance(form_id, bool) or str(form_id).strip() == "":
        problems.append(Violation("id", form_id, "each record needs its form number (id): it makes re-imports safe"))
    submitted_at = _when(record.get("submitted_at"), problems)
    unknown = set(record) - {"id", "submitted_at", "respondent", "answers", "_csv", *_FIELDS}
    problems.extend(Violation(name, record[name], "not a field of a survey record") for name in sorted(unknown))
    dossier = record.get("linked_dossier_id")
    if dossier is not None and not (isinstance(dossier, str) and 0 < len(dossier) <= 200):
        problems.append(Violation("linked_dossier_id", dossier, "a dossier code (MaHoSo) of 1 to 200 characters"))
    if problems or submitted_at is None:
        return problems
    answers = record.get("answers")
    weight = record.get("weight")
    if record.get("_csv"):
        version, instrument_id = record.get("instrument_version"), record.get("instrument_id")
        instrument = (
            catalog.get(instrument_id, version) if isinstance(instrument_id, str) and isinstance(version, str) else None
        )
        answers = _typed(instrument, answers if isinstance(answers, dict) else {})
        weight = _number(weight)
    return Submission(
        source=source,
        submission_id=str(form_id).strip(),
        unit_code=record.get("unitcode"),
        instrument_id=record.get("instrument_id"),
        instrument_version=record.get("instrument_version"),
        channel=record.get("channel", "paper"),
        answers=answers,
        respondent=record.get("respondent"),
        submitted_at=submitted_at,
        survey_id=record.get("survey_id"),
        ma_tthc=record.get("ma_tthc"),
        policy_group=record.get("policy_group"),
        weight=weight,
        linked_dossier_id=dossier,
    )


def _when(value: Any, problems: list[Violation]) -> datetime | None:
    rule = "the date the questionnaire was filled in, ISO 8601 (e.g. 2026-03-02T10:00:00+07:00)"
    if not isinstance(value, str):
        problems.append(Violation("submitted_at", value, rule))
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        problems.append(Violation("submitted_at", value, rule))
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=_VN)


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


async def run_import(
    path: Path,
    *,
    settings: SurveysSettings,
    database_url: str,
    source: str = DEFAULT_SOURCE,
    batch_size: int = 500,
    rejects_path: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Import ``path``; ``on_progress(records_done, total)`` after every committed batch."""
    started = time.perf_counter()
    summary = ImportSummary(path=str(path))
    records = list(read_records(path))
    total = len(records)
    pool = await create_pool(database_url, settings.db_schema, min_size=1, max_size=2)
    rejects = rejects_path or path.with_name(path.name + ".rejects.jsonl")
    try:
        await apply_migrations(pool, "eventkit.store", postgres.MIGRATIONS)
        registry = default_registry()
        intake = build_intake(settings, PostgresEventStore(pool, registry), registry)
        if on_progress:
            on_progress(0, total)
        with rejects.open("w", encoding="utf-8") as rejects_file:
            for start in range(0, total, batch_size):
                batch = records[start : start + batch_size]
                refused = await _import_batch(pool, intake, batch, source, summary)
                for number, reason, original in refused:
                    summary.reasons[_rule_of(reason)] += 1
                    if len(summary.examples) < 20:
                        summary.examples.append((number, reason))
                    line = {"record": number, "reason": reason, "original": original}
                    rejects_file.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
                if on_progress:
                    on_progress(min(start + batch_size, total), total)
    finally:
        await pool.close()
    summary.total = total
    if summary.rejected:
        summary.rejects_path = str(rejects)
    else:
        rejects.unlink(missing_ok=True)
    summary.seconds = time.perf_counter() - started
    return summary


async def _import_batch(
    pool: asyncpg.Pool,
    intake: Intake,
    batch: list[tuple[int, dict[str, Any] | str]],
    source: str,
    summary: ImportSummary,
) -> list[tuple[int, str, Any]]:
    refused: list[tuple[int, str, Any]] = []
    readable: list[tuple[int, dict[str, Any], Submission]] = []
    for number, record in batch:
        if isinstance(record, str):
            refused.append((number, record, None))
            continue
        submission = to_submission(record, intake.catalog, source)
        if isinstance(submission, list):
            refused.append((number, "; ".join(str(v) for v in submission), _original(record)))
        else:
            readable.append((number, record, submission))
    for attempt in range(5):
        try:
            async with pool.acquire() as conn, conn.transaction():
                outcomes = await intake.process(conn, [s for _, _, s in readable], datetime.now(UTC))
            break
        except ConcurrencyError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.1 * (attempt + 1))
    for (number, record, _), outcome in zip(readable, outcomes, strict=True):
        if outcome.status == "accepted":
            summary.accepted += 1
        elif outcome.status == "duplicate":
            summary.duplicates += 1
        else:
            refused.append((number, outcome.reason, _original(record)))
    summary.rejected += len(refused)
    return sorted(refused, key=lambda r: r[0])


def _original(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "_csv"}


def _rule_of(reason: str) -> str:
    """The first violation's field and rule, without the value: to count rejections by kind."""
    first = reason.split("; ", maxsplit=1)[0]
    parts = first.split(": ")
    return f"{parts[0]}: {parts[-1]}" if len(parts) >= 3 else first[:120]
