"""Bulk backfill: ``chiso dossiers import FILE`` — historical DVCQG exports through the same intake.

Each export record (one dossier's sync body) becomes one atomic group of inbound facts, judged by the
same domain as the Kafka and HTTP ways in and written to the service's event store; the running service's
relay then publishes the canonical events. Resumable: the progress (records done, counts) commits in the
same transaction as each batch, keyed by the file's SHA-256, so an interrupted import continues after the
last committed batch and a finished one is a no-op; facts carry stable ids (``MaHoSo:kind``), so even a
re-import from scratch stores nothing twice.

Rejected records are reported (record number, field, value, rule) in the summary and written, with the
original record, to a rejects file (JSON lines) beside the input unless another path is given. The
rejects file holds the export's personal data: keep it where the export is kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from contracts.registry import default_registry
from eventkit import postgres
from eventkit.pg import Migration, apply_migrations, create_pool
from eventkit.postgres import PostgresEventStore
from eventkit.worktime import WorkingCalendar
from services.dossiers import intake as intake_module
from services.dossiers.compose import build_intake
from services.dossiers.dvcqg import RecordError, count_records, iter_records, map_sync_body
from services.dossiers.inbound import InboundFact
from services.dossiers.intake import Intake
from services.dossiers.settings import DossiersSettings

__all__ = ["DEFAULT_SOURCE", "MIGRATIONS", "ImportSummary", "file_digest", "run_import"]

#: the partner every DVCQG export is attributed to unless told otherwise: stable across files, so a later
#: export of the same dossier maps its old facts to the same ids
DEFAULT_SOURCE = "urn:dvcqg:export"

MIGRATIONS = (
    Migration(
        "0001_import_progress",
        """
        CREATE TABLE import_progress (
            file_sha256   text PRIMARY KEY,
            path          text NOT NULL,
            records_done  integer NOT NULL DEFAULT 0,
            accepted      integer NOT NULL DEFAULT 0,
            duplicates    integer NOT NULL DEFAULT 0,
            rejected      integer NOT NULL DEFAULT 0,
            events        integer NOT NULL DEFAULT 0,
            started_at    timestamptz NOT NULL DEFAULT now(),
            updated_at    timestamptz NOT NULL DEFAULT now(),
            finished_at   timestamptz
        );
        """,
    ),
)


@dataclass
class ImportSummary:
    """What an import run did (counts include earlier runs of the same file when resumed)."""

    path: str
    total: int = 0
    resumed_from: int = 0
    records_done: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    events: int = 0
    seconds: float = 0.0
    #: rule -> how many records broke it (this run)
    reasons: Counter[str] = field(default_factory=Counter)
    #: first rejections of this run: (record number, reason)
    examples: list[tuple[int, str]] = field(default_factory=list)
    rejects_path: str | None = None

    @property
    def records_per_second(self) -> float:
        """Records handled per second in this run."""
        done = self.records_done - self.resumed_from
        return done / self.seconds if self.seconds > 0 else 0.0


def file_digest(path: Path) -> str:
    """SHA-256 of the file: the import's identity (a changed file is a new import)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _batches(
    path: Path, *, skip: int, size: int, source: str, unit: str | None, calendar: WorkingCalendar
) -> Iterator[list[tuple[int, list[InboundFact] | str, Mapping[str, Any] | None]]]:
    batch: list[tuple[int, list[InboundFact] | str, Mapping[str, Any] | None]] = []
    for number, record in iter_records(path, skip=skip):
        if isinstance(record, RecordError):
            batch.append((number, str(record), None))
        else:
            try:
                facts: list[InboundFact] | str = map_sync_body(
                    record, source=source, default_unit=unit, due_at_of=calendar.due_at
                )
            except RecordError as exc:
                facts = str(exc)
            batch.append((number, facts, record))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def run_import(
    path: Path,
    *,
    settings: DossiersSettings,
    database_url: str,
    unit: str | None = None,
    source: str = DEFAULT_SOURCE,
    batch_size: int = 1000,
    rejects_path: Path | None = None,
    restart: bool = False,
    on_progress: Any = None,
) -> ImportSummary:
    """Import ``path``; ``on_progress(records_done, total)`` is called after every committed batch."""
    summary = ImportSummary(path=str(path))
    started = time.perf_counter()
    digest = file_digest(path)
    summary.total = count_records(path)
    pool = await create_pool(database_url, settings.db_schema, min_size=1, max_size=2)
    try:
        await apply_migrations(pool, "eventkit.store", postgres.MIGRATIONS)
        await apply_migrations(pool, "dossiers.intake", intake_module.MIGRATIONS)
        await apply_migrations(pool, "dossiers.import", MIGRATIONS)
        the_intake = build_intake(settings, PostgresEventStore(pool, default_registry()))
        if restart:
            await pool.execute("DELETE FROM import_progress WHERE file_sha256 = $1", digest)
        await pool.execute(
            "INSERT INTO import_progress (file_sha256, path) VALUES ($1, $2) ON CONFLICT DO NOTHING", digest, str(path)
        )
        done = await pool.fetchrow("SELECT * FROM import_progress WHERE file_sha256 = $1", digest)
        assert done is not None
        summary.resumed_from = summary.records_done = done["records_done"]
        summary.accepted, summary.duplicates = done["accepted"], done["duplicates"]
        summary.rejected, summary.events = done["rejected"], done["events"]
        if on_progress:
            on_progress(summary.records_done, summary.total)
        rejects = rejects_path or path.with_name(path.name + ".rejects.jsonl")
        calendar = WorkingCalendar.load()
        batches = _batches(
            path, skip=summary.records_done, size=batch_size, source=source, unit=unit, calendar=calendar
        )
        with rejects.open("a", encoding="utf-8") as rejects_file, ThreadPoolExecutor(1, "dvcqg-reader") as reader:
            # the next batch is read and mapped in a thread while this one is judged and stored: the mapping
            # runs while the event loop waits for PostgreSQL (pure work on the file; the order, the
            # transactions and the progress stay exactly those of a sequential loop)
            loop = asyncio.get_running_loop()
            upcoming = loop.run_in_executor(reader, next, batches, None)
            while (batch := await upcoming) is not None:
                upcoming = loop.run_in_executor(reader, next, batches, None)
                await _import_batch(pool, the_intake, digest, batch, summary, rejects_file)
                if on_progress:
                    on_progress(summary.records_done, summary.total)
        if summary.rejected:
            summary.rejects_path = str(rejects)
        await pool.execute("UPDATE import_progress SET finished_at = now() WHERE file_sha256 = $1", digest)
    finally:
        await pool.close()
    summary.seconds = time.perf_counter() - started
    return summary


async def _import_batch(  # noqa: PLR0917 - one call site, all required
    pool: asyncpg.Pool,
    the_intake: Intake,
    digest: str,
    batch: list[tuple[int, list[InboundFact] | str, Mapping[str, Any] | None]],
    summary: ImportSummary,
    rejects_file: Any,
) -> None:
    groups = [facts for _, facts, _ in batch if not isinstance(facts, str)]
    for attempt in range(5):
        try:
            async with pool.acquire() as conn, conn.transaction():
                outcomes = iter(await the_intake.process(conn, groups, datetime.now(UTC)))
                counts = Counter[str]()
                events = 0
                rejected: list[tuple[int, str, Mapping[str, Any] | None]] = []
                for number, facts, record in batch:
                    if isinstance(facts, str):
                        counts["rejected"] += 1
                        rejected.append((number, facts, record))
                        continue
                    outcome = next(outcomes)
                    counts[outcome.status] += 1
                    events += len(outcome.events)
                    if outcome.status == "rejected":
                        rejected.append((number, outcome.reason or "refused", record))
                last = batch[-1][0]
                await conn.execute(
                    "UPDATE import_progress SET records_done = $2, accepted = accepted + $3,"
                    " duplicates = duplicates + $4, rejected = rejected + $5, events = events + $6,"
                    " updated_at = now() WHERE file_sha256 = $1",
                    digest,
                    last,
                    counts["accepted"],
                    counts["duplicate"],
                    counts["rejected"],
                    events,
                )
                # written (and flushed) before the commit: a crash in between repeats these lines on resume,
                # it never loses one
                for number, reason, record in rejected:
                    line = {"record": number, "reason": reason, "original": record}
                    rejects_file.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
                rejects_file.flush()
            break
        except intake_module.ConcurrencyError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.1 * (attempt + 1))
    for number, reason, _ in rejected:
        summary.reasons[_rule_of(reason)] += 1
        if len(summary.examples) < 20:
            summary.examples.append((number, reason))
    summary.records_done = batch[-1][0]
    summary.accepted += counts["accepted"]
    summary.duplicates += counts["duplicate"]
    summary.rejected += counts["rejected"]
    summary.events += events


def _rule_of(reason: str) -> str:
    """The rule part of a reason (without the record's values), to count rejections by kind."""
    head = reason.split(": ")
    if len(head) >= 3:  # RecordError: field: value: rule
        return f"{head[0]}: {head[-1]}"
    return reason[:120]
