"""Benchmark of the subscriptions publisher's rounds on a real PostgreSQL (not a test: no assertion on time).

    python -m bench.scoring_publish [--dossiers N] [--repeat R]

Data: ``bench.scoring``'s month of dossiers over the 168 communes of TP.HCM (79), applied through the real
dossier projection with the subscriptions' change hook (so every (commune, month/quarter/year) key is dirty,
as in the service), plus one PAKN and one rating per commune through the feedback projection. Then, timed:

- baseline: the calendar round(s) (month, quarter, year of every commune and the province; what was published
  before year-to-date and reporting periods existed) until nothing is dirty;
- the range round(s) the calendar rounds left behind (this year's ytd and the reporting periods of the
  province's scheme over the dirty months) until nothing is dirty;
- steady state: one more dossier in every commune, then one calendar round and one range round;
- idle: rounds that find nothing to do (the cost every ``interval`` pays while nothing happens), then a
  dossier left open in every other commune and the clock moved past the month's end (1 April 00:00:05, +07:00):
  the rounds that handle that boundary (the new month, and the PAKN and dossiers carried into it), then idle
  rounds again in the new month.

The ratio range / calendar is the cost of the new periods relative to the existing ones on the same data.
Uses DATABASE_URL when set, else the project's local PostgreSQL. Writes bench/results/scoring-publish-*.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import uvloop
from aiokafka.structs import ConsumerRecord

from bench.output import save_result
from bench.run import bench_database, console
from bench.scoring import PROVINCE, _communes, _received, _resolved, dossier_records
from contracts.dossiers import (
    Channel,
    DossierRated,
    FeedbackCategory,
    FeedbackForwarder,
    FeedbackReceived,
    Rating,
    RatingChannel,
)
from contracts.envelope import make_envelope
from contracts.registry import default_registry
from contracts.wire import encode, read_headers
from eventkit import postgres
from eventkit import projection as plumbing
from eventkit.pg import apply_migrations, create_pool
from eventkit.postgres import PostgresEventStore
from eventkit.projection import ConsumedEvent
from services.scoring.app import legacy_district_of
from services.scoring.configs import DEFAULT_VERSION
from services.scoring.projections import DossierIndicatorsProjection
from services.scoring.projections_feedback import FeedbackProjection
from services.scoring.ranges import load_schemes
from services.scoring.subscriptions import MIGRATIONS, IndicatorPublisher, dossier_change_hook, unit_days_hook

VN = timezone(timedelta(hours=7))
NOW = datetime(2026, 3, 31, 12, tzinfo=VN)
REGISTRY = default_registry()


def _consumed(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]], offset: int) -> ConsumedEvent:
    record = ConsumerRecord(
        "vn.cchc.dossiers.events", 0, offset, 0, 0, key, value, None, len(key or b""), len(value or b""), headers
    )
    return ConsumedEvent(record, read_headers(headers), REGISTRY)


def _event(payload: Any, subject: str, unit: str, at: datetime, offset: int) -> ConsumedEvent:
    envelope = make_envelope(
        payload, id=uuid.uuid4(), source="urn:bench", subject=subject, time=at, unitcode=unit, provincecode=PROVINCE
    )
    key, value, headers = encode(envelope)
    return _consumed(key, value, list(headers), offset)


class _Clock:
    """The publisher's injected clock, moved by the benchmark."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


IDLE_ROUNDS = 200
BOUNDARY = datetime(2026, 4, 1, 0, 0, 5, tzinfo=VN)


def _feedback(offset: int) -> list[ConsumedEvent]:
    out = []
    at = datetime(2026, 3, 10, 9, tzinfo=VN)
    for n, unit in enumerate(_communes()):
        fid = f"BP{n:04d}"
        pakn = FeedbackReceived(
            feedback_id=fid,
            agency_code="UBND",
            category=FeedbackCategory.REGULATION,
            forwarded_by=FeedbackForwarder.DIRECT,
            received_at=at,
        )
        out.append(_event(pakn, f"feedback:{fid}", unit, at, offset + 2 * n))
        rated = DossierRated(
            dossier_id=f"BR{n:04d}", agency_code="UBND", rated_at=at, rated_via=RatingChannel.KIOSK, rating=Rating.LIKE
        )
        out.append(_event(rated, f"dossier:BR{n:04d}", unit, at, offset + 2 * n + 1))
    return out


async def _apply(pool: Any, view: Any, events: list[ConsumedEvent], batch: int = 5000) -> None:
    for i in range(0, len(events), batch):
        async with pool.acquire() as conn, conn.transaction():
            await view.apply(conn, events[i : i + batch])


async def _drain(round_: Any) -> tuple[float, int, int]:
    """(seconds, rounds, events) until a round finds nothing dirty."""
    started = time.perf_counter()
    rounds = events = 0
    while (n := await round_()) >= 0:
        rounds += 1
        events += n
    return time.perf_counter() - started, rounds, events


async def _idle(publisher: IndicatorPublisher) -> dict[str, float]:
    """Mean milliseconds of a calendar round and of a range round that find nothing to do."""
    out = {}
    for name, round_ in (("calendar_ms", publisher.publish_round), ("ranges_ms", publisher.publish_range_round)):
        started = time.perf_counter()
        for _ in range(IDLE_ROUNDS):
            if await round_() != -1:
                msg = f"an idle {name} round found work"
                raise RuntimeError(msg)
        out[name] = round((time.perf_counter() - started) * 1000 / IDLE_ROUNDS, 3)
    return out


def _open_dossiers(offset: int) -> list[ConsumedEvent]:
    """One dossier received on 30 March and still open, in every other commune (carried over into April)."""
    at = datetime(2026, 3, 30, 9, tzinfo=VN)
    return [
        _event(_received(f"O{n:05d}", at, Channel.DIRECT), f"dossier:O{n:05d}", unit, at, offset + n)
        for n, unit in enumerate(_communes())
        if n % 2 == 0
    ]


async def run_once(url: str, dossiers: int) -> dict[str, Any]:
    schema = f"bench_publish_{uuid.uuid4().hex[:6]}"
    pool = await create_pool(url, schema, max_size=4)
    try:
        await apply_migrations(pool, "eventkit.store", postgres.MIGRATIONS)
        await apply_migrations(pool, "eventkit.projection", plumbing.MIGRATIONS)
        await apply_migrations(pool, "scoring.subscriptions", MIGRATIONS)
        view = DossierIndicatorsProjection(legacy_district_of, dossier_change_hook(lambda: NOW))
        feedback = FeedbackProjection(legacy_district_of, unit_days_hook())
        for p in (view, feedback):
            await apply_migrations(pool, p.name, p.migrations)
        records = dossier_records(dossiers)
        await _apply(pool, view, [_consumed(k, v, h, i) for i, (k, v, h) in enumerate(records)])
        await _apply(pool, feedback, _feedback(len(records)))
        publisher = IndicatorPublisher(
            pool=pool,
            store=PostgresEventStore(pool, REGISTRY),
            ruleset_version=DEFAULT_VERSION,
            clock=(clock := _Clock(NOW)),
            schemes=load_schemes(),
        )
        calendar = await _drain(publisher.publish_round)
        ranges = await _drain(publisher.publish_range_round)
        # steady state: one more dossier in every commune
        at = datetime(2026, 3, 30, 9, tzinfo=VN)
        more: list[ConsumedEvent] = []
        for n, unit in enumerate(_communes()):
            dossier_id = f"S{n:05d}"
            for payload, when in (
                (_received(dossier_id, at, Channel.DIRECT), at),
                (_resolved(dossier_id, at, at + timedelta(hours=3), Channel.DIRECT, late=False), at),
            ):
                more.append(_event(payload, f"dossier:{dossier_id}", unit, when, 10**7 + len(more)))
        await _apply(pool, view, more)
        steady_calendar = await _drain(publisher.publish_round)
        steady_ranges = await _drain(publisher.publish_range_round)
        await _apply(pool, view, _open_dossiers(2 * 10**7))
        await _drain(publisher.publish_round)
        await _drain(publisher.publish_range_round)
        idle_before = await _idle(publisher)
        clock.now = BOUNDARY
        boundary_calendar = await _drain(publisher.publish_round)
        boundary_ranges = await _drain(publisher.publish_range_round)
        idle_after = await _idle(publisher)
    finally:
        await pool.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await pool.close()

    def row(t: tuple[float, int, int]) -> dict[str, float]:
        return {"seconds": round(t[0], 3), "rounds": t[1], "events": t[2]}

    return {
        "backlog": {
            "calendar": row(calendar),
            "ranges": row(ranges),
            "ratio_ranges_to_calendar": ranges[0] / calendar[0],
        },
        "steady": {
            "calendar": row(steady_calendar),
            "ranges": row(steady_ranges),
            "ratio_ranges_to_calendar": steady_ranges[0] / steady_calendar[0],
        },
        "idle_before_boundary": idle_before,
        "boundary": {"calendar": row(boundary_calendar), "ranges": row(boundary_ranges)},
        "idle_after_boundary": idle_after,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        url = bench_database(stack)
        runs = [await run_once(url, args.dossiers) for _ in range(args.repeat)]
        for r in runs:
            console.print(r)
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "command": " ".join(["python -m bench.scoring_publish", *sys.argv[1:]]),
            "dossiers": args.dossiers,
            "communes": len(_communes()),
            "runs": runs,
            "median_ratio_steady": statistics.median(r["steady"]["ratio_ranges_to_calendar"] for r in runs),
            "median_ratio_backlog": statistics.median(r["backlog"]["ratio_ranges_to_calendar"] for r in runs),
            "median_idle_calendar_ms": statistics.median(r["idle_before_boundary"]["calendar_ms"] for r in runs),
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dossiers", type=int, default=20_000, help="dossiers of March 2026 (2 events each)")
    parser.add_argument("--repeat", type=int, default=3, help="runs (median ratio reported)")
    result = uvloop.run(main(parser.parse_args()))
    save_result(result, "scoring-publish", console)
