"""The PostgreSQL event store: the shared contract suite, plus the commit-order trap of TECH_NOTES §5."""

import asyncio

import asyncpg
import pytest

from eventkit.pg import apply_migrations
from eventkit.postgres import MIGRATIONS, NOTIFY_CHANNEL, PostgresEventStore
from eventkit.store import NO_STREAM, Checkpoint, ConcurrencyError, DuplicateEventError
from eventkit.testing import EventStoreContract, sample_event, sample_registry

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
