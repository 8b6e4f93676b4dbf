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
import multiprocessing
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from contracts.registry import default_registry
from eventkit import postgres
from eventkit.heap import settle_heap_for_batches
from eventkit.pg import Migration, apply_migrations, create_pool
from eventkit.postgres import PostgresEventStore
from eventkit.worktime import WorkingCalendar
from services.dossiers import intake as intake_module
from services.dossiers.compose import build_intake
from services.dossiers.dvcqg import RecordError, count_records, iter_records, map_sync_body
from services.dossiers.inbound import InboundFact
from services.dossiers.intake import Intake
from services.dossiers.settings import DossiersSettings

__all__ = ["DEFAULT_SOURCE", "MIGRATIONS", "ImportSummary", "file_digest", "run_import", "shard_of"]

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


def shard_of(number: int, record: Mapping[str, Any] | None, shards: int) -> int:
    """Which of ``shards`` import processes takes a record: by dossier (MaHoSo), so the records of one dossier
    are judged by one process in file order and two processes never append to the same stream; a record
    without a usable MaHoSo (it is rejected anyway) goes by its number."""
    key = None if record is None else record.get("MaHoSo")
    if isinstance(key, int | str) and str(key).strip():
        return zlib.crc32(str(key).strip().encode()) % shards
    return number % shards


Batch = list[tuple[int, list[InboundFact] | str, Mapping[str, Any] | None]]


def _batches(
    path: Path,
    *,
    skip: int,
    size: int,
    source: str,
    unit: str | None,
    calendar: WorkingCalendar,
    shard: tuple[int, int] | None = None,
) -> Iterator[Batch]:
    batch: Batch = []
    for number, record in iter_records(path, skip=skip):
        if isinstance(record, RecordError):
            if shard is not None and number % shard[1] != shard[0]:
                continue
            batch.append((number, str(record), None))
        else:
            if shard is not None and shard_of(number, record, shard[1]) != shard[0]:
                continue  # another process's record: only decoded, never mapped here
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


@dataclass(frozen=True)
class _Job:
    """What one import process needs (picklable: shards run in spawned processes)."""

    path: Path
    settings: DossiersSettings
    database_url: str
    unit: str | None
    source: str
    batch_size: int
    rejects: Path
    digest: str
    #: (index, count) of this process's shard; None: the whole file in this process
    shard: tuple[int, int] | None = None

    @property
    def key(self) -> str:
        """The ``import_progress`` row of this process: the file's digest, with the shard for a shard."""
        return self.digest if self.shard is None else f"{self.digest}#{self.shard[0]}/{self.shard[1]}"

    @property
    def rejects_file(self) -> Path:
        """Where this process writes rejected records (shards: a file per shard, merged at the end)."""
        if self.shard is None:
            return self.rejects
        return self.rejects.with_name(f"{self.rejects.name}.{self.shard[0]}of{self.shard[1]}")


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
    workers: int = 1,
) -> ImportSummary:
    """Import ``path``; ``on_progress(records_done, total)`` is called after every committed batch.

    ``workers`` > 1 splits the records by dossier across that many processes (each its own transactions
    and progress row); a resumed import must use the same number of workers.
    """
    summary = ImportSummary(path=str(path))
    started = time.perf_counter()
    digest = file_digest(path)
    summary.total = count_records(path)
    rejects = rejects_path or path.with_name(path.name + ".rejects.jsonl")
    job = _Job(path, settings, database_url, unit, source, batch_size, rejects, digest)
    pool = await create_pool(database_url, settings.db_schema, min_size=1, max_size=2)
    try:
        await apply_migrations(pool, "eventkit.store", postgres.MIGRATIONS)
        await apply_migrations(pool, "dossiers.intake", intake_module.MIGRATIONS)
        await apply_migrations(pool, "dossiers.import", MIGRATIONS)
        if restart:
            await pool.execute(
                "DELETE FROM import_progress WHERE file_sha256 = $1 OR file_sha256 LIKE $1 || '#%'", digest
            )
        await pool.execute(
            "INSERT INTO import_progress (file_sha256, path) VALUES ($1, $2) ON CONFLICT DO NOTHING", digest, str(path)
        )
        done = await pool.fetchrow("SELECT * FROM import_progress WHERE file_sha256 = $1", digest)
        assert done is not None
        if done["finished_at"] is None:
            await _check_same_workers(pool, digest, workers, done["records_done"])
        if workers > 1 and done["finished_at"] is None:
            await _run_shards(pool, job, workers, summary, on_progress)
        else:
            summary.resumed_from = summary.records_done = done["records_done"]
            summary.accepted, summary.duplicates = done["accepted"], done["duplicates"]
            summary.rejected, summary.events = done["rejected"], done["events"]
            if on_progress:
                on_progress(summary.records_done, summary.total)
            the_intake = build_intake(settings, PostgresEventStore(pool, default_registry()))
            settle_heap_for_batches()  # the unit registry and calendars out of every full collection
            await _import_records(pool, the_intake, job, summary, on_progress)
        if summary.rejected:
            summary.rejects_path = str(rejects)
        await pool.execute("UPDATE import_progress SET finished_at = now() WHERE file_sha256 = $1", digest)
    finally:
        await pool.close()
    summary.seconds = time.perf_counter() - started
    return summary


async def _check_same_workers(pool: asyncpg.Pool, digest: str, workers: int, records_done: int) -> None:
    """Refuse to resume an unfinished import with another split of the records (progress is per split)."""
    rows = await pool.fetch("SELECT file_sha256 FROM import_progress WHERE file_sha256 LIKE $1 || '#%'", digest)
    splits = {int(r[0].rpartition("/")[2]) for r in rows}
    if splits:  # a split import (whose own row counts the records only once it finishes)
        if splits == {workers}:
            return
        before = max(splits - {workers})
    elif workers > 1 and records_done > 0:  # a single-process import, interrupted
        before = 1
    else:
        return
    msg = f"this import was started with --workers {before}: resume it with the same number, or --restart"
    raise ValueError(msg)


async def _import_records(
    pool: asyncpg.Pool, the_intake: Intake, job: _Job, summary: ImportSummary, on_progress: Any
) -> None:
    batches = _batches(
        job.path,
        skip=summary.records_done,
        size=job.batch_size,
        source=job.source,
        unit=job.unit,
        calendar=WorkingCalendar.load(),
        shard=job.shard,
    )
    with job.rejects_file.open("a", encoding="utf-8") as rejects_file, ThreadPoolExecutor(1, "dvcqg-reader") as reader:
        # the next batch is read and mapped in a thread while this one is judged and stored: the mapping
        # runs while the event loop waits for PostgreSQL (pure work on the file; the order, the
        # transactions and the progress stay exactly those of a sequential loop)
        loop = asyncio.get_running_loop()
        upcoming = loop.run_in_executor(reader, next, batches, None)
        while (batch := await upcoming) is not None:
            upcoming = loop.run_in_executor(reader, next, batches, None)
            await _import_batch(pool, the_intake, job.key, batch, summary, rejects_file)
            if on_progress:
                on_progress(summary.records_done, summary.total)


async def _run_shards(pool: asyncpg.Pool, job: _Job, workers: int, summary: ImportSummary, on_progress: Any) -> None:
    """Import with ``workers`` processes, each the records of its dossiers (see :func:`shard_of`)."""
    jobs = [replace(job, shard=(k, workers)) for k in range(workers)]
    handled_sql = (
        "SELECT coalesce(sum(accepted + duplicates + rejected), 0) FROM import_progress"
        " WHERE file_sha256 LIKE $1 || '#%'"
    )
    summary.resumed_from = await pool.fetchval(handled_sql, job.digest)
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as processes:
        running = asyncio.gather(*(loop.run_in_executor(processes, _shard_main, j) for j in jobs))
        while not running.done():  # progress from the shards' committed rows
            await asyncio.wait([running], timeout=0.5)
            if on_progress:
                on_progress(await pool.fetchval(handled_sql, job.digest), summary.total)
        results: list[ImportSummary] = await running
    for result in results:
        summary.reasons.update(result.reasons)
        summary.examples.extend(result.examples)
    summary.examples = sorted(summary.examples)[:20]
    # the shards' rejects, appended to the one rejects file (a crash before the removal repeats lines on
    # resume, as the sequential import may; it never loses one)
    with job.rejects.open("a", encoding="utf-8") as merged:
        for shard_job in jobs:
            part = shard_job.rejects_file
            if part.exists():
                merged.write(part.read_text(encoding="utf-8"))
                merged.flush()
                part.unlink()
    totals = await pool.fetchrow(
        "SELECT coalesce(sum(accepted), 0) AS accepted, coalesce(sum(duplicates), 0) AS duplicates,"
        " coalesce(sum(rejected), 0) AS rejected, coalesce(sum(events), 0) AS events FROM import_progress"
        " WHERE file_sha256 LIKE $1 || '#%'",
        job.digest,
    )
    assert totals is not None
    summary.accepted, summary.duplicates = totals["accepted"], totals["duplicates"]
    summary.rejected, summary.events = totals["rejected"], totals["events"]
    summary.records_done = summary.total
    await pool.execute(
        "UPDATE import_progress SET records_done = $2, accepted = $3, duplicates = $4, rejected = $5, events = $6,"
        " updated_at = now() WHERE file_sha256 = $1",
        job.digest,
        summary.total,
        summary.accepted,
        summary.duplicates,
        summary.rejected,
        summary.events,
    )
    if on_progress:
        on_progress(summary.records_done, summary.total)


def _shard_main(job: _Job) -> ImportSummary:
    """Entry point of a shard's process."""
    return asyncio.run(_run_shard(job))


async def _run_shard(job: _Job) -> ImportSummary:
    summary = ImportSummary(path=str(job.path))
    pool = await create_pool(job.database_url, job.settings.db_schema, min_size=1, max_size=2)
    try:
        await pool.execute(
            "INSERT INTO import_progress (file_sha256, path) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            job.key,
            str(job.path),
        )
        summary.records_done = await pool.fetchval(
            "SELECT records_done FROM import_progress WHERE file_sha256 = $1", job.key
        )
        the_intake = build_intake(job.settings, PostgresEventStore(pool, default_registry()))
        settle_heap_for_batches()
        await _import_records(pool, the_intake, job, summary, None)
    finally:
        await pool.close()
    return summary


async def _import_batch(  # noqa: PLR0917 - one call site, all required
    pool: asyncpg.Pool,
    the_intake: Intake,
    digest: str,
    batch: Batch,
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
