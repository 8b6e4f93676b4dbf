"""The PostgreSQL event store: the shared contract suite, plus the commit-order trap of TECH_NOTES §5."""

import asyncio
import random
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest

from contracts.envelope import make_envelope
from eventkit.pg import apply_migrations
from eventkit.postgres import MIGRATIONS, NOTIFY_CHANNEL, PostgresEventStore
from eventkit.store import NO_STREAM, Checkpoint, ConcurrencyError, DuplicateEventError
from eventkit.testing import EventStoreContract, SampleHappened, sample_event, sample_registry

pytestmark = pytest.mark.integration


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture
    def store(self, pg_pool: asyncpg.Pool) -> PostgresEventStore:
        return PostgresEventStore(pg_pool, sample_registry())


async def test_migrations_are_applied_once(pg_pool: asyncpg.Pool) -> None:
    assert await apply_migrations(pg_pool, "eventkit.store", MIGRATIONS) == []


async def test_an_event_committed_after_a_later_position_is_not_skipped(pg_pool: asyncpg.Pool) -> None:
    """Transaction A takes the smaller position but commits after B: a tailing reader still gets both."""
    store = PostgresEventStore(pg_pool, sample_registry())
    async with pg_pool.acquire() as conn_a, pg_pool.acquire() as conn_b:
        tx_a = conn_a.transaction()
        await tx_a.start()
        result_a = await store.append("stream-a", NO_STREAM, [sample_event("stream-a", "A")], connection=conn_a)
        async with conn_b.transaction():
            result_b = await store.append("stream-b", NO_STREAM, [sample_event("stream-b", "B")], connection=conn_b)
        assert result_a.positions[0] < result_b.positions[0]  # A holds the smaller position ...
        # ... B is committed, A is not: a position-tailing reader would see B, remember it, and skip A.
        visible = await pg_pool.fetch("SELECT position FROM es_events ORDER BY position")
        assert [r["position"] for r in visible] == [result_b.positions[0]]
        seen = await store.read_all(Checkpoint())
        assert seen == []  # the gap-safe reader holds B back while A may still commit below it
        await tx_a.commit()
    seen = await store.read_all(Checkpoint())
    assert [e.envelope.data.note for e in seen] == ["A", "B"]  # type: ignore[attr-defined]
    assert seen[0].position < seen[1].position


async def test_tailing_reader_misses_nothing_under_concurrent_out_of_order_commits(pg_pool: asyncpg.Pool) -> None:
    """Many writers commit in random order while a reader tails from its last checkpoint."""
    store = PostgresEventStore(pg_pool, sample_registry())
    writers, per_writer = 8, 25
    done = asyncio.Event()
    seen: list[str] = []

    async def write(w: int) -> None:
        for i in range(per_writer):
            async with pg_pool.acquire() as conn, conn.transaction():
                await store.append(f"w{w}", None, [sample_event(f"w{w}", f"{w}:{i}")], connection=conn)
                await asyncio.sleep(0.001 * ((w * 7 + i) % 5))  # hold the transaction open a varying time

    async def tail() -> None:
        checkpoint = Checkpoint()
        while True:
            batch = await store.read_all(checkpoint, limit=7)
            for event in batch:
                seen.append(event.envelope.data.note)  # type: ignore[attr-defined]
                checkpoint = event.checkpoint
            if not batch:
                if done.is_set():
                    return
                await asyncio.sleep(0.002)

    reader = asyncio.create_task(tail())
    await asyncio.gather(*(write(w) for w in range(writers)))
    done.set()
    await reader
    expected = {f"{w}:{i}" for w in range(writers) for i in range(per_writer)}
    assert len(seen) == len(expected)
    assert set(seen) == expected
    for w in range(writers):  # and each stream arrives in its own order
        mine = [int(n.split(":")[1]) for n in seen if n.startswith(f"{w}:")]
        assert mine == sorted(mine)


async def test_a_transaction_older_than_the_streams_last_writer_must_retry(pg_pool: asyncpg.Pool) -> None:
    """Appending after a younger writer would sort before it in commit order: refused, never reordered."""
    store = PostgresEventStore(pg_pool, sample_registry())
    await pg_pool.execute("CREATE TABLE side_effects (x int)")
    async with pg_pool.acquire() as old:
        tx = old.transaction()
        await tx.start()
        await old.execute("INSERT INTO side_effects VALUES (1)")  # takes a transaction id now
        await store.append("s", NO_STREAM, [sample_event("s", "younger")])  # commits with a larger id
        with pytest.raises(ConcurrencyError, match="retry in a new transaction"):
            await store.append("s", 1, [sample_event("s", "older")], connection=old)
        await tx.rollback()
    events = await store.read_all(Checkpoint())
    assert [e.envelope.data.note for e in events] == ["younger"]  # type: ignore[attr-defined]


async def test_append_many_creates_new_streams_and_refuses_one_that_exists(pg_pool: asyncpg.Pool) -> None:
    """The all-new-streams path (no lock query, streams created at their version) keeps append's rules."""
    store = PostgresEventStore(pg_pool, sample_registry())
    async with pg_pool.acquire() as conn, conn.transaction():
        versions = await store.append_many(
            conn,
            [
                ("many-a", NO_STREAM, [sample_event("many-a", "1"), sample_event("many-a", "2")]),
                ("many-b", NO_STREAM, [sample_event("many-b", "1")]),
            ],
        )
    assert versions == {"many-a": 2, "many-b": 1}
    assert (await store.stream_version("many-a"), await store.stream_version("many-b")) == (2, 1)
    with pytest.raises(ConcurrencyError):
        async with pg_pool.acquire() as conn, conn.transaction():
            await store.append_many(
                conn,
                [
                    ("many-c", NO_STREAM, [sample_event("many-c", "1")]),
                    ("many-a", NO_STREAM, [sample_event("many-a", "3")]),
                ],
            )
    assert await store.stream_version("many-c") == 0  # nothing of the refused batch was stored
    async with pg_pool.acquire() as conn, conn.transaction():
        versions = await store.append_many(
            conn,
            [("many-a", 2, [sample_event("many-a", "3")]), ("many-d", NO_STREAM, [sample_event("many-d", "1")])],
        )
    assert versions == {"many-a": 3, "many-d": 1}
    assert [e.version for e in await store.read_stream("many-a")] == [1, 2, 3]
    assert await store.stream_version("many-d") == 1


async def test_create_streams_in_one_statement_outside_a_transaction(pg_pool: asyncpg.Pool) -> None:
    """Streams created with their events, committed by the statement itself, readable in order, notified."""
    store = PostgresEventStore(pg_pool, sample_registry())
    notified: list[str] = []
    async with pg_pool.acquire() as listener, pg_pool.acquire() as conn:

        def on_notify(*args: object) -> None:
            notified.append(str(args[-1]))

        await listener.add_listener(NOTIFY_CHANNEL, on_notify)
        versions = await store.create_streams(
            conn,
            [
                ("new-a", [sample_event("new-a", "1"), sample_event("new-a", "2")]),
                ("new-b", [sample_event("new-b", "1")]),
                ("new-empty", []),
            ],
        )
        assert not conn.is_in_transaction()
        for _ in range(50):  # the notification arrives asynchronously
            if notified:
                break
            await asyncio.sleep(0.02)
        await listener.remove_listener(NOTIFY_CHANNEL, on_notify)
    assert versions == {"new-a": 2, "new-b": 1}
    assert notified == ["batch"]
    assert (await store.stream_version("new-a"), await store.stream_version("new-b")) == (2, 1)
    assert await store.stream_version("new-empty") == 0
    read = await store.read_all(Checkpoint())
    assert [(e.stream_id, e.version, e.envelope.data.note) for e in read] == [  # type: ignore[attr-defined]
        ("new-a", 1, "1"),
        ("new-a", 2, "2"),
        ("new-b", 1, "1"),
    ]
    assert len({e.checkpoint.commit_group for e in read}) == 1  # one transaction


async def test_create_streams_refuses_an_existing_stream_and_stores_nothing(pg_pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pg_pool, sample_registry())
    async with pg_pool.acquire() as conn:
        await store.create_streams(conn, [("old", [sample_event("old", "1")])])
        with pytest.raises(ConcurrencyError):
            await store.create_streams(conn, [("fresh", [sample_event("fresh", "1")]), ("old", [sample_event("old")])])
        assert await store.stream_version("fresh") == 0
        # in the caller's transaction: refused in a savepoint, the transaction goes on
        async with conn.transaction():
            with pytest.raises(ConcurrencyError):
                await store.create_streams(conn, [("fresh", [sample_event("fresh")]), ("old", [sample_event("old")])])
            await store.create_streams(conn, [("fresh", [sample_event("fresh", "kept")])])
    assert [e.envelope.data.note for e in await store.read_stream("fresh")] == ["kept"]  # type: ignore[attr-defined]
    assert await store.stream_version("old") == 1


async def test_create_streams_names_an_event_id_stored_before(pg_pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pg_pool, sample_registry())
    first = sample_event("dup-a")
    async with pg_pool.acquire() as conn:
        await store.create_streams(conn, [("dup-a", [first])])
        again = sample_event("dup-b", event_id=first.id)
        with pytest.raises(DuplicateEventError) as refused:
            await store.create_streams(conn, [("dup-c", [sample_event("dup-c")]), ("dup-b", [again])])
    assert refused.value.event_ids == (str(first.id),)
    assert (await store.stream_version("dup-b"), await store.stream_version("dup-c")) == (0, 0)


async def test_create_streams_racing_on_one_stream_one_wins(pg_pool: asyncpg.Pool) -> None:
    """Two transactions create the same stream: the second waits for the first and is refused."""
    store = PostgresEventStore(pg_pool, sample_registry())
    async with pg_pool.acquire() as conn_a, pg_pool.acquire() as conn_b:
        tx_a = conn_a.transaction()
        await tx_a.start()
        await store.create_streams(conn_a, [("race", [sample_event("race", "A")])])
        second = asyncio.ensure_future(store.create_streams(conn_b, [("race", [sample_event("race", "B")])]))
        await asyncio.sleep(0.2)
        assert not second.done()  # waits on A's uncommitted stream row
        await tx_a.commit()
        with pytest.raises(ConcurrencyError):
            await second
    assert [e.envelope.data.note for e in await store.read_stream("race")] == ["A"]  # type: ignore[attr-defined]


async def test_large_payloads_are_compressed_with_lz4(pg_pool: asyncpg.Pool) -> None:
    """The store's payload column compresses with lz4 (cheaper than pglz for the relay's reads and the appends)."""
    store = PostgresEventStore(pg_pool, sample_registry())
    async with pg_pool.acquire() as conn:
        await store.create_streams(conn, [("big", [sample_event("big", "x" * 5000)])])
        method = await conn.fetchval("SELECT pg_column_compression(data) FROM es_events WHERE stream_id = 'big'")
    assert method == "lz4"
    [event] = await store.read_stream("big")
    assert event.envelope.data.note == "x" * 5000  # type: ignore[attr-defined]


def _varied_batch(prefix: str, rng: random.Random, existing: dict[str, int]) -> list[tuple[str, int | None, list]]:
    """Appends to 80 streams of ``prefix``: new ones and ones ``existing`` holds at a version, 1-4 events each,
    with every optional attribute sometimes set and notes JSON must escape (quotes, control characters)."""
    appends: list[tuple[str, int | None, list]] = []
    for k in range(80):
        stream = f"{prefix}-{k}"
        events = []
        for i in range(rng.randint(1, 4)):
            note = rng.choice(["plain", 'quote " and \\ slash', "tab\tnewline\n\x01", "Phường Bến Nghé", ""]) + str(i)
            events.append(
                make_envelope(
                    SampleHappened(note=note, amount=rng.randint(-5, 10**9)),
                    id=uuid4(),
                    source=rng.choice(["urn:chiso:tests", "urn:chiso:other"]),
                    subject=stream,
                    time=datetime(2026, 3, 2, 8, 30, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 10**6)),
                    unitcode=rng.choice(["00004", "26734"]),
                    provincecode=rng.choice(["01", "79"]),
                    correlationid=rng.choice([None, f"corr-{k}"]),
                    causationid=rng.choice([None, f"cause-{rng.randrange(10**6)}"]),
                    legacyunitcode=rng.choice([None, "00001"]),
                )
            )
        appends.append((stream, existing.get(stream, NO_STREAM) if rng.random() < 0.7 else None, events))
    return appends


async def _stored(pool: asyncpg.Pool, prefix: str) -> list[tuple]:
    """The rows of ``prefix``'s streams in position order, stream ids without the prefix (comparable)."""
    rows = await pool.fetch(
        "SELECT stream_id, version, event_id, type, schema_version, source, occurred_at, unitcode, provincecode,"
        " correlation_id, causation_id, data::text AS data, legacy_unitcode FROM es_events"
        " WHERE stream_id LIKE $1 ORDER BY position",
        f"{prefix}-%",
    )
    return [(r["stream_id"].removeprefix(prefix), *tuple(r)[1:]) for r in rows]


async def test_append_many_staged_by_copy_stores_what_the_unnest_statement_stores(pg_pool: asyncpg.Pool) -> None:
    """A large batch goes through COPY into a temporary table; the same batches through the single unnest
    statement store the same rows, in the same order, with the same versions and refusals."""
    outcomes = {}
    for prefix, stage_from in (("unnested", 10**9), ("staged", 1)):
        store = PostgresEventStore(pg_pool, sample_registry(), stage_from=stage_from)
        rng = random.Random(20261123)  # the same batches for both paths (ids aside)
        existing: dict[str, int] = {}
        versions = []
        for _ in range(3):
            appends = _varied_batch(prefix, rng, existing)
            async with pg_pool.acquire() as conn, conn.transaction():
                done = await store.append_many(conn, appends)
            existing.update(done)
            versions.append(sorted((s.removeprefix(prefix), v) for s, v in done.items()))
        outcomes[prefix] = (versions, await _stored(pg_pool, prefix))
    (unnested_versions, unnested_rows), (staged_versions, staged_rows) = outcomes["unnested"], outcomes["staged"]
    assert staged_versions == unnested_versions
    assert len(staged_rows) == len(unnested_rows) > 3 * 80
    strip_ids = [[*r[:2], *r[3:]] for r in staged_rows], [[*r[:2], *r[3:]] for r in unnested_rows]
    assert strip_ids[0] == strip_ids[1]  # every attribute and payload, in position order


async def test_two_staged_appends_in_one_transaction_store_each_event_once(pg_pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pg_pool, sample_registry(), stage_from=1)
    async with pg_pool.acquire() as conn, conn.transaction():
        await store.append_many(conn, [("twice-a", NO_STREAM, [sample_event("twice-a", "1")])])
        await store.append_many(conn, [("twice-b", NO_STREAM, [sample_event("twice-b", "1"), sample_event("twice-b")])])
    rows = await pg_pool.fetch("SELECT stream_id, version FROM es_events WHERE stream_id LIKE 'twice-%' ORDER BY 1, 2")
    assert [tuple(r) for r in rows] == [("twice-a", 1), ("twice-b", 1), ("twice-b", 2)]


async def test_a_staged_append_with_a_stored_event_id_is_refused_and_leaves_the_transaction_usable(
    pg_pool: asyncpg.Pool,
) -> None:
    store = PostgresEventStore(pg_pool, sample_registry(), stage_from=1)
    first = sample_event("dup-a", "1")
    async with pg_pool.acquire() as conn, conn.transaction():
        await store.append_many(conn, [("dup-a", NO_STREAM, [first])])
    async with pg_pool.acquire() as conn, conn.transaction():
        with pytest.raises(DuplicateEventError) as refused:
            await store.append_many(
                conn, [("dup-b", NO_STREAM, [sample_event("dup-b"), sample_event("dup-b", event_id=first.id)])]
            )
        assert str(first.id) in refused.value.event_ids
        # the refusal rolled back its savepoint only: the caller's transaction goes on, the stage is empty
        await store.append_many(conn, [("dup-c", NO_STREAM, [sample_event("dup-c")])])
    rows = await pg_pool.fetch("SELECT stream_id FROM es_events WHERE stream_id LIKE 'dup-%' ORDER BY 1")
    assert [r["stream_id"] for r in rows] == ["dup-a", "dup-c"]
