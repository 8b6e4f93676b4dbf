"""The PostgreSQL event store (asyncpg).

Gap safety — why ``read_all`` orders by (commit group, position) and not by position alone:
``position`` comes from an identity sequence when a row is inserted, but the row becomes visible when its
transaction commits. Transaction A may take position 10, transaction B position 11, and B commit first;
a reader tailing ``position > last`` that sees 11 and remembers it would never see 10 (TECH_NOTES §5,
Marten's 9.16.1 bug). Each row therefore records its transaction id (``pg_current_xact_id()``, 64-bit, no
wraparound) as its *commit group*, and ``read_all`` only returns rows whose transaction id is below the
oldest transaction still running (``pg_snapshot_xmin``): every transaction below that horizon has
finished, and no transaction that starts later can get an id below it. Reading in (commit group,
position) order behind that horizon is a stable, complete order: nothing appears later behind a
checkpoint. The price is latency, not loss: a long-running *writing* transaction anywhere in the cluster
holds the horizon back until it ends.

Per-stream order in that global order: appends to one stream serialise on the stream's row lock, but a
transaction that obtained its id *before* another one appended to the stream and committed could still
append after it with a smaller id, and would sort first. ``append`` detects that (the stream remembers the
id of its last writer) and raises :class:`ConcurrencyError`, so the caller retries in a new transaction.
This only happens to callers that wrote something else before appending in the same transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import asyncpg

from contracts.base import EventPayload
from contracts.envelope import Envelope
from contracts.registry import Registry
from eventkit.pg import Connection, Migration
from eventkit.store import (
    NO_STREAM,
    AppendResult,
    Checkpoint,
    ConcurrencyError,
    DuplicateEventError,
    NewEvent,
    StoredEvent,
    check_subjects,
)

__all__ = ["MIGRATIONS", "NOTIFY_CHANNEL", "PostgresEventStore", "row_to_stored_event"]

#: ``NOTIFY`` channel an append signals on commit, so relays wake up without polling
NOTIFY_CHANNEL = "chiso_events_appended"

MIGRATIONS = (
    Migration(
        "0001_event_store",
        """
        CREATE TABLE es_streams (
            stream_id   text PRIMARY KEY,
            version     integer NOT NULL CHECK (version >= 0),
            last_txid   bigint NOT NULL
        );
        CREATE TABLE es_events (
            position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            txid            bigint NOT NULL,
            stream_id       text NOT NULL,
            version         integer NOT NULL CHECK (version >= 1),
            event_id        uuid NOT NULL UNIQUE,
            type            text NOT NULL,
            schema_version  integer NOT NULL,
            source          text NOT NULL,
            occurred_at     timestamptz NOT NULL,
            unitcode        text NOT NULL,
            provincecode    text NOT NULL,
            correlation_id  text,
            causation_id    text,
            data            jsonb NOT NULL,
            recorded_at     timestamptz NOT NULL DEFAULT now(),
            UNIQUE (stream_id, version)
        );
        CREATE INDEX es_events_commit_order ON es_events (txid, position);
        """,
    ),
    Migration("0002_legacy_unitcode", "ALTER TABLE es_events ADD COLUMN legacy_unitcode text;"),
    # payloads of more than ~2 kB (a full questionnaire) are compressed when stored and decompressed when the
    # relay reads them: lz4 does both at a fraction of the CPU of the default pglz (13 % of the database's CPU
    # per stored survey response). Rows stored before stay as they are (each value records its method); a
    # server built without lz4 keeps pglz.
    Migration(
        "0003_payload_lz4",
        """
        DO $$ BEGIN
            ALTER TABLE es_events ALTER COLUMN data SET COMPRESSION lz4;
        EXCEPTION WHEN feature_not_supported THEN
            RAISE NOTICE 'lz4 not available: es_events.data keeps the default compression';
        END $$;
        """,
    ),
)

_COLUMNS = (
    "position, txid, stream_id, version, event_id, type, schema_version, source, occurred_at, unitcode,"
    " provincecode, correlation_id, causation_id, data, recorded_at, legacy_unitcode"
)

_INSERT = """
INSERT INTO es_events (txid, stream_id, version, event_id, type, schema_version, source, occurred_at,
                       unitcode, provincecode, correlation_id, causation_id, data, legacy_unitcode)
SELECT $1, $2, v, id, t, sv, src, at, u, p, c, ca, d::jsonb, l
FROM unnest($3::int[], $4::uuid[], $5::text[], $6::int[], $7::text[], $8::timestamptz[], $9::text[],
            $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])
     AS x(v, id, t, sv, src, at, u, p, c, ca, d, l)
RETURNING position
"""

# many streams in one statement (the batch path): stream id and version per row
_INSERT_MANY = """
INSERT INTO es_events (txid, stream_id, version, event_id, type, schema_version, source, occurred_at,
                       unitcode, provincecode, correlation_id, causation_id, data, legacy_unitcode)
SELECT $1, s, v, id, t, sv, src, at, u, p, c, ca, d::jsonb, l
FROM unnest($2::text[], $3::int[], $4::uuid[], $5::text[], $6::int[], $7::text[], $8::timestamptz[], $9::text[],
            $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])
     AS x(s, v, id, t, sv, src, at, u, p, c, ca, d, l)
"""

# A large batch's events are staged by binary COPY into a temporary table and inserted from there: asyncpg
# encodes whole records in one pass, while every element of a bound unnest() array goes through a type check
# (is it itself an array?): client CPU per event 20.9 -> 13.8 us in batches of 5,000 (bench/event_store.py,
# BENCHMARKS.md "Dossiers service"). Small batches keep the single unnest statement: staging costs two more
# round trips. The stage empties itself at commit (ON COMMIT DELETE ROWS); a second append in the same
# transaction stages under a new ``k`` and inserts only its own rows (reading them with DELETE ... RETURNING
# instead cost the database ≈ 5 us more per event, a fifth of the insert); ``n`` keeps the batch's order
# (positions follow it).
_STAGE_FROM = 200
_STAGE = """
DO $$ BEGIN
    IF to_regclass('pg_temp.es_append_stage') IS NULL THEN
        CREATE TEMP TABLE es_append_stage (
            k bigint, n int, s text, v int, id uuid, t text, sv int, src text, at timestamptz, u text, p text,
            c text, ca text, d text, l text
        ) ON COMMIT DELETE ROWS;
    END IF;
END $$
"""
_STAGE_COLUMNS = ("k", "n", "s", "v", "id", "t", "sv", "src", "at", "u", "p", "c", "ca", "d", "l")
_INSERT_STAGED = """
INSERT INTO es_events (txid, stream_id, version, event_id, type, schema_version, source, occurred_at,
                       unitcode, provincecode, correlation_id, causation_id, data, legacy_unitcode)
SELECT $1, s, v, id, t, sv, src, at, u, p, c, ca, d::jsonb, l FROM pg_temp.es_append_stage WHERE k = $2 ORDER BY n
"""
#: the stage key of each staged append (unique within the process, hence within any of its transactions)
_stage_keys = itertools.count(1)

# new streams and their events in ONE statement (the hot path of intakes whose streams are always new): the
# transaction id is taken once, a stream that exists fails the insert of es_streams (unique violation), and
# the notification is sent when the statement's transaction commits
_CREATE_STREAMS = """
WITH tx AS MATERIALIZED (SELECT pg_current_xact_id()::text::bigint AS txid),
created AS (
    INSERT INTO es_streams (stream_id, version, last_txid)
    SELECT sid, sv, (SELECT txid FROM tx) FROM unnest($1::text[], $2::int[]) AS y(sid, sv)
),
appended AS (
    INSERT INTO es_events (txid, stream_id, version, event_id, type, schema_version, source, occurred_at,
                           unitcode, provincecode, correlation_id, causation_id, data, legacy_unitcode)
    SELECT (SELECT txid FROM tx), s, v, id, t, sv, src, at, u, p, c, ca, d::jsonb, l
    FROM unnest($3::text[], $4::int[], $5::uuid[], $6::text[], $7::int[], $8::text[], $9::timestamptz[],
                $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[])
         AS x(s, v, id, t, sv, src, at, u, p, c, ca, d, l)
)
SELECT pg_notify($16, 'batch')
"""

# the horizon: transactions below it have all ended (committed or rolled back)
_READ_ALL = f"""
SELECT {_COLUMNS} FROM es_events
WHERE (txid, position) > ($1, $2)
  AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
ORDER BY txid, position
LIMIT $3
"""


class PostgresEventStore:
    """Event store on the tables of :data:`MIGRATIONS`, in the pool's schema."""

    def __init__(self, pool: asyncpg.Pool, registry: Registry, *, stage_from: int = _STAGE_FROM) -> None:
        self._pool = pool
        self._registry = registry
        self._stage_from = stage_from  # append_many: events from which a batch is staged by COPY

    async def append(
        self,
        stream_id: str,
        expected_version: int | None,
        events: Sequence[Envelope],
        *,
        connection: Connection | None = None,
    ) -> AppendResult:
        """See :meth:`eventkit.store.EventStore.append`.

        With ``connection`` the append joins the caller's open transaction (e.g. an inbox that records
        consumed offsets atomically with the events); otherwise it runs in its own transaction.
        """
        check_subjects(stream_id, events)
        if connection is not None:
            return await self._append(connection, stream_id, expected_version, events)
        async with self._pool.acquire() as conn, conn.transaction():
            return await self._append(conn, stream_id, expected_version, events)

    async def _append(
        self,
        conn: Connection,
        stream_id: str,
        expected_version: int | None,
        events: Sequence[Envelope],
    ) -> AppendResult:
        row = await conn.fetchrow(
            "SELECT version, last_txid, pg_current_xact_id()::text::bigint AS txid"
            " FROM es_streams WHERE stream_id = $1 FOR UPDATE",
            stream_id,
        )
        if row is None:
            current, txid = 0, await conn.fetchval("SELECT pg_current_xact_id()::text::bigint")
        else:
            current, txid = row["version"], row["txid"]
            if txid < row["last_txid"]:
                msg = (
                    f"{stream_id}: this transaction began before the stream's last writer committed;"
                    " retry in a new transaction"
                )
                raise ConcurrencyError(msg)
        if expected_version is not None and expected_version != current:
            msg = f"{stream_id}: expected version {expected_version}, stream is at {current}"
            raise ConcurrencyError(msg)
        if not events:
            return AppendResult(current, ())
        versions = list(range(current + 1, current + 1 + len(events)))
        try:
            async with conn.transaction():  # savepoint: a duplicate id must not poison the caller's tx
                positions = await conn.fetch(
                    _INSERT,
                    txid,
                    stream_id,
                    versions,
                    *_columns(events),
                )
                if row is None:
                    await conn.execute(
                        "INSERT INTO es_streams (stream_id, version, last_txid) VALUES ($1, $2, $3)",
                        stream_id,
                        versions[-1],
                        txid,
                    )
                else:
                    await conn.execute(
                        "UPDATE es_streams SET version = $2, last_txid = $3 WHERE stream_id = $1",
                        stream_id,
                        versions[-1],
                        txid,
                    )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "es_events_event_id_key":
                raise DuplicateEventError(await self._existing_ids(conn, events)) from None
            # a concurrent first append to the same new stream won the race
            msg = f"{stream_id}: concurrent append ({exc.constraint_name})"
            raise ConcurrencyError(msg) from None
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, stream_id[:100])
        return AppendResult(versions[-1], tuple(r["position"] for r in positions))

    async def append_many(
        self, conn: Connection, appends: Sequence[tuple[str, int | None, Sequence[NewEvent]]]
    ) -> dict[str, int]:
        """Append to many streams inside the caller's transaction, in a few statements whatever their number.

        The batch path of intakes that decide thousands of facts per transaction: the same guarantees as
        :meth:`append` (expected versions, the last-writer check of the module docstring, duplicate ids
        refused), but streams are locked in one ordered statement (no deadlock between two batches) and all
        events are inserted by one statement. Returns each stream's new version.
        """
        wanted = [(s, e, ev) for s, e, ev in appends if ev]
        if not wanted:
            return {}
        for stream_id, _, events in wanted:
            check_subjects(stream_id, events)
        ids = sorted({s for s, _, _ in wanted})
        if len(ids) != len(wanted):
            msg = "append_many: a stream appears twice; merge its events into one append"
            raise ValueError(msg)
        txid = await conn.fetchval("SELECT pg_current_xact_id()::text::bigint")
        current = await _lock_streams(conn, ids, all_new=all(e == NO_STREAM for _, e, _ in wanted))
        new_streams = [s for s in ids if s not in current]
        stream_col: list[str] = []
        version_col: list[int] = []
        events_all: list[NewEvent] = []
        versions: dict[str, int] = {}
        for stream_id, expected, events in wanted:
            version, last_txid = current.get(stream_id, (0, 0))
            if txid < last_txid:
                msg = f"{stream_id}: this transaction began before the stream's last writer committed; retry"
                raise ConcurrencyError(msg)
            if expected is not None and expected != version:
                msg = f"{stream_id}: expected version {expected}, stream is at {version}"
                raise ConcurrencyError(msg)
            stream_col.extend([stream_id] * len(events))
            version_col.extend(range(version + 1, version + 1 + len(events)))
            events_all.extend(events)
            versions[stream_id] = version + len(events)
        try:
            async with conn.transaction():  # savepoint: a duplicate id must not poison the caller's tx
                if new_streams:
                    # created at their new version: no update of them below (the update's join scanned the
                    # whole table on small stores)
                    created = await conn.fetch(
                        "INSERT INTO es_streams (stream_id, version, last_txid)"
                        " SELECT id, v, $3 FROM unnest($1::text[], $2::int[]) AS x(id, v)"
                        " ON CONFLICT (stream_id) DO NOTHING RETURNING stream_id",
                        new_streams,
                        [versions[s] for s in new_streams],
                        txid,
                    )
                    if len(created) != len(new_streams):
                        msg = "append_many: a concurrent transaction created one of the streams first; retry"
                        raise ConcurrencyError(msg)
                await self._insert_many(conn, txid, stream_col, version_col, events_all)
                if current:
                    existing = [s for s in versions if s in current]
                    await conn.execute(
                        "UPDATE es_streams AS s SET version = x.v, last_txid = $3"
                        " FROM unnest($1::text[], $2::int[]) AS x(id, v) WHERE s.stream_id = x.id",
                        existing,
                        [versions[s] for s in existing],
                        txid,
                    )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "es_events_event_id_key":
                raise DuplicateEventError(await self._existing_ids(conn, events_all)) from None
            msg = f"append_many: concurrent append ({exc.constraint_name})"
            raise ConcurrencyError(msg) from None
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, "batch")
        return versions

    async def _insert_many(
        self, conn: Connection, txid: int, streams: list[str], versions: list[int], events: Sequence[NewEvent]
    ) -> None:
        if len(events) >= self._stage_from:
            await _insert_staged(conn, txid, streams, versions, events)
        else:
            await conn.execute(_INSERT_MANY, txid, streams, versions, *_columns(events))

    async def create_streams(
        self, conn: Connection, streams: Sequence[tuple[str, Sequence[NewEvent]]]
    ) -> dict[str, int]:
        """Create new streams with their first events in ONE statement, whatever their number.

        The same result as :meth:`append_many` with ``NO_STREAM`` for every stream, for intakes whose streams
        are always new (e.g. one response per dossier), in one round trip instead of five. Outside a
        transaction the statement is a transaction of its own (atomic and, once it returns, committed): a
        caller that needs nothing else in it saves the BEGIN and COMMIT round trips too. Inside one, it runs
        in a savepoint like the other appends (a refusal does not abort the caller's transaction).

        Raises :class:`ConcurrencyError` when a stream already exists (or a concurrent transaction created
        it first) and :class:`DuplicateEventError` when an event id is stored already; nothing is written
        then. Returns each stream's new version (its number of events).
        """
        wanted = [(s, evs) for s, evs in streams if evs]
        if not wanted:
            return {}
        for stream_id, events in wanted:
            check_subjects(stream_id, events)
        if len({s for s, _ in wanted}) != len(wanted):
            msg = "create_streams: a stream appears twice; merge its events into one entry"
            raise ValueError(msg)
        stream_col: list[str] = []
        version_col: list[int] = []
        events_all: list[NewEvent] = []
        for stream_id, events in wanted:
            stream_col.extend([stream_id] * len(events))
            version_col.extend(range(1, len(events) + 1))
            events_all.extend(events)
        versions = {s: len(evs) for s, evs in wanted}
        args = (list(versions), list(versions.values()), stream_col, version_col, *_columns(events_all), NOTIFY_CHANNEL)
        try:
            if conn.is_in_transaction():
                async with conn.transaction():  # savepoint: a refusal must not poison the caller's tx
                    await conn.execute(_CREATE_STREAMS, *args)
            else:
                await conn.execute(_CREATE_STREAMS, *args)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "es_events_event_id_key":
                raise DuplicateEventError(await self._existing_ids(conn, events_all)) from None
            msg = f"create_streams: a stream exists already ({exc.constraint_name}: {exc.detail})"
            raise ConcurrencyError(msg) from None
        return versions

    async def existing_event_ids(self, conn: Connection, event_ids: Sequence[object]) -> set[str]:
        """Which of ``event_ids`` are already stored (as text), in one query: the intakes' idempotency."""
        rows = await conn.fetch("SELECT event_id::text FROM es_events WHERE event_id = ANY($1::uuid[])", event_ids)
        return {r[0] for r in rows}

    async def _existing_ids(self, conn: Connection, events: Sequence[NewEvent]) -> list[str]:
        rows = await conn.fetch(
            "SELECT event_id FROM es_events WHERE event_id = ANY($1::uuid[])", [e.id for e in events]
        )
        found = [str(r["event_id"]) for r in rows]
        return found or [str(e.id) for e in events]  # the duplicate was within the batch itself

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[StoredEvent]:
        """See :meth:`eventkit.store.EventStore.read_stream`."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM es_events WHERE stream_id = $1 AND version > $2 ORDER BY version",
            stream_id,
            after_version,
        )
        return [row_to_stored_event(r, self._registry) for r in rows]

    async def read_all(self, after: Checkpoint | None = None, limit: int = 1000) -> list[StoredEvent]:
        """See :meth:`eventkit.store.EventStore.read_all` (gap-safe; see the module docstring)."""
        start = after or Checkpoint()
        rows = await self._pool.fetch(_READ_ALL, start.commit_group, start.position, limit)
        return [row_to_stored_event(r, self._registry) for r in rows]

    async def read_all_raw(self, conn: Connection, after: Checkpoint, limit: int) -> list[asyncpg.Record]:
        """Like :meth:`read_all` but rows as stored, for the relay's hot path (no payload validation)."""
        return list(await conn.fetch(_READ_ALL, after.commit_group, after.position, limit))

    async def stream_version(self, stream_id: str) -> int:
        """See :meth:`eventkit.store.EventStore.stream_version`."""
        version = await self._pool.fetchval("SELECT version FROM es_streams WHERE stream_id = $1", stream_id)
        return int(version or 0)


async def _lock_streams(conn: Connection, ids: list[str], *, all_new: bool) -> dict[str, tuple[int, int]]:
    """Version and last writer of the existing streams among ``ids``, locked in id order (no deadlock)."""
    if all_new:
        # every stream must be new (e.g. one response per dossier): nothing to lock or read; the insert of
        # the streams refuses one that exists (ConcurrencyError), as the expected-version check would
        return {}
    rows = await conn.fetch(
        "SELECT stream_id, version, last_txid FROM es_streams WHERE stream_id = ANY($1::text[])"
        " ORDER BY stream_id FOR UPDATE",
        ids,
    )
    return {r["stream_id"]: (r["version"], r["last_txid"]) for r in rows}


async def _insert_staged(
    conn: Connection, txid: int, streams: Sequence[str], versions: Sequence[int], events: Sequence[NewEvent]
) -> None:
    """The insert of ``_INSERT_MANY``, its rows staged by COPY (see ``_STAGE``)."""
    await conn.execute(_STAGE)
    key = next(_stage_keys)
    records = [
        (
            key,
            n,
            stream_id,
            version,
            e.id,
            e.type,
            e.schemaversion,
            e.source,
            e.time,
            e.unitcode,
            e.provincecode,
            e.correlationid,
            e.causationid,
            e.data.model_dump_json(),
            e.legacyunitcode,
        )
        for n, (stream_id, version, e) in enumerate(zip(streams, versions, events, strict=True))
    ]
    await conn.copy_records_to_table("es_append_stage", schema_name="pg_temp", columns=_STAGE_COLUMNS, records=records)
    await conn.execute(_INSERT_STAGED, txid, key)


def _columns(events: Sequence[NewEvent]) -> tuple[list[object], ...]:
    """The per-event columns of an insert, as arrays for ``unnest`` (same order in both inserts)."""
    return (
        [e.id for e in events],
        [e.type for e in events],
        [e.schemaversion for e in events],
        [e.source for e in events],
        [e.time for e in events],
        [e.unitcode for e in events],
        [e.provincecode for e in events],
        [e.correlationid for e in events],
        [e.causationid for e in events],
        [e.data.model_dump_json() for e in events],
        [e.legacyunitcode for e in events],
    )


def row_to_stored_event(row: asyncpg.Record, registry: Registry) -> StoredEvent:
    """Rebuild a validated :class:`StoredEvent` from an ``es_events`` row."""
    cls = registry.latest(row["type"])
    data: EventPayload = registry.parse(row["type"], row["schema_version"], row["data"])
    envelope = Envelope(
        id=row["event_id"],
        source=row["source"],
        type=row["type"],
        subject=row["stream_id"],
        time=row["occurred_at"],
        dataschema=cls.schema_id(),
        schemaversion=cls.schema_version,
        unitcode=row["unitcode"],
        provincecode=row["provincecode"],
        partitionkey=row["stream_id"],
        sequence=row["version"],
        correlationid=row["correlation_id"],
        causationid=row["causation_id"],
        legacyunitcode=row["legacy_unitcode"],
        data=data,
    )
    return StoredEvent(
        position=row["position"],
        checkpoint=Checkpoint(row["txid"], row["position"]),
        stream_id=row["stream_id"],
        version=row["version"],
        envelope=envelope,
        recorded_at=row["recorded_at"],
    )
