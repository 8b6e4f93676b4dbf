"""Test support shipped with the plumbing: one contract suite every event store implementation must pass.

A test module subclasses :class:`EventStoreContract` and provides the ``store`` fixture; pytest then runs
every ``test_*`` below against that store (the in-memory fake and PostgreSQL pass the same tests, so the
fake can stand in for the real store in unit tests of pure logic). Imports pytest: tests only.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from uuid import UUID, uuid4

import pytest
from pydantic import Field

from contracts.base import EventPayload
from contracts.envelope import Envelope, make_envelope
from contracts.registry import Registry
from eventkit.pg import Connection, Migration
from eventkit.projection import ConsumedEvent, Projection
from eventkit.store import NO_STREAM, Checkpoint, ConcurrencyError, DuplicateEventError, EventStore

__all__ = [
    "POISON",
    "SAMPLE_TOPIC",
    "EventStoreContract",
    "SampleHappened",
    "SampleTotalsProjection",
    "sample_event",
    "sample_registry",
]

SAMPLE_TOPIC = "vn.cchc.test.events"
#: a :class:`SampleHappened` note that :class:`SampleTotalsProjection` refuses, to exercise dead letters
POISON = "poison"


class SampleHappened(EventPayload):
    """A payload for plumbing tests only (not part of any service's contract)."""

    event_type: ClassVar[str] = "vn.cchc.test.sample_happened"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "tests"
    topic: ClassVar[str] = SAMPLE_TOPIC

    note: str = Field(description="Free text")
    amount: int = Field(default=1, description="A number a projection can add up")


def sample_registry() -> Registry:
    """A registry that knows :class:`SampleHappened` only."""
    return Registry([SampleHappened])


def sample_event(
    stream_id: str,
    note: str = "x",
    *,
    amount: int = 1,
    unitcode: str = "00004",
    event_id: UUID | None = None,
    at: datetime | None = None,
) -> Envelope:
    """An envelope of :class:`SampleHappened` for ``stream_id``."""
    return make_envelope(
        SampleHappened(note=note, amount=amount),
        id=event_id or uuid4(),
        source="urn:chiso:tests",
        subject=stream_id,
        time=at or datetime(2026, 3, 2, 8, 30, tzinfo=UTC),
        unitcode=unitcode,
        provincecode="01",
    )


class SampleTotalsProjection(Projection):
    """A trivial read model: per unit, the number of :class:`SampleHappened` events and their total amount.

    Batches are pre-aggregated in Python and written with one ``unnest ... ON CONFLICT`` upsert, the
    pattern real projections use (TECH_NOTES §3).
    """

    name = "sample_totals"
    topics: tuple[str, ...] = (SAMPLE_TOPIC,)
    event_types = frozenset({SampleHappened.event_type})
    migrations = (
        Migration(
            "0001_sample_totals",
            "CREATE TABLE sample_totals (unitcode text PRIMARY KEY, events bigint NOT NULL, total bigint NOT NULL)",
        ),
    )

    def __init__(self, topics: tuple[str, ...] | None = None, *, read_payload: bool = True) -> None:
        if topics is not None:
            self.topics = topics
        self._read_payload = read_payload
        self.validate_payloads = read_payload

    async def apply(self, conn: Connection, events: Sequence[ConsumedEvent]) -> None:
        counts: Counter[str] = Counter()
        totals: Counter[str] = Counter()
        for event in events:
            unit = event.attributes.unitcode
            if self._read_payload and event.data.note == POISON:  # type: ignore[attr-defined]
                msg = "poison event: this projection cannot apply it"
                raise ValueError(msg)
            counts[unit] += 1
            # read_payload=False counts from the headers alone (the cheapest possible projection)
            totals[unit] += event.data.amount if self._read_payload else 1  # type: ignore[attr-defined]
        units = sorted(counts)
        await conn.execute(
            """INSERT INTO sample_totals (unitcode, events, total)
               SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
               ON CONFLICT (unitcode) DO UPDATE SET events = sample_totals.events + EXCLUDED.events,
                                                    total = sample_totals.total + EXCLUDED.total""",
            units,
            [counts[u] for u in units],
            [totals[u] for u in units],
        )


class EventStoreContract:
    """The behaviour every :class:`EventStore` must have."""

    @pytest.fixture
    def store(self) -> EventStore:
        raise NotImplementedError  # pragma: no cover - subclasses provide the store

    async def test_appends_to_a_new_stream_and_reads_it_back_in_order(self, store: EventStore) -> None:
        events = [sample_event("s-1", f"e{i}") for i in range(3)]
        result = await store.append("s-1", NO_STREAM, events)
        assert result.version == 3
        assert len(result.positions) == 3
        assert list(result.positions) == sorted(result.positions)
        stored = await store.read_stream("s-1")
        assert [s.version for s in stored] == [1, 2, 3]
        assert [s.envelope.id for s in stored] == [e.id for e in events]
        assert [s.envelope.sequence for s in stored] == [1, 2, 3]
        assert stored[0].envelope.data == events[0].data
        assert stored[0].envelope.time == events[0].time
        assert stored[0].envelope.unitcode == "00004"
        assert await store.stream_version("s-1") == 3

    async def test_rejects_an_append_at_the_wrong_expected_version(self, store: EventStore) -> None:
        await store.append("s-2", NO_STREAM, [sample_event("s-2")])
        with pytest.raises(ConcurrencyError):
            await store.append("s-2", NO_STREAM, [sample_event("s-2")])
        with pytest.raises(ConcurrencyError):
            await store.append("s-2", 5, [sample_event("s-2")])
        assert await store.stream_version("s-2") == 1

    async def test_appends_at_any_version_when_none_is_expected(self, store: EventStore) -> None:
        await store.append("s-3", None, [sample_event("s-3")])
        result = await store.append("s-3", None, [sample_event("s-3"), sample_event("s-3")])
        assert result.version == 3

    async def test_refuses_a_duplicate_event_id_atomically(self, store: EventStore) -> None:
        first = sample_event("s-4")
        await store.append("s-4", NO_STREAM, [first])
        again = sample_event("s-4b", event_id=first.id)
        with pytest.raises(DuplicateEventError) as caught:
            await store.append("s-4b", NO_STREAM, [sample_event("s-4b"), again])
        assert str(first.id) in caught.value.event_ids
        assert await store.stream_version("s-4b") == 0

    async def test_refuses_the_same_id_twice_in_one_append(self, store: EventStore) -> None:
        event = sample_event("s-5")
        with pytest.raises(DuplicateEventError):
            await store.append("s-5", NO_STREAM, [event, event])
        assert await store.read_stream("s-5") == []

    async def test_refuses_events_of_another_stream(self, store: EventStore) -> None:
        with pytest.raises(ValueError, match="do not belong"):
            await store.append("s-6", NO_STREAM, [sample_event("other")])

    async def test_reads_a_stream_after_a_version(self, store: EventStore) -> None:
        await store.append("s-7", NO_STREAM, [sample_event("s-7", f"e{i}") for i in range(4)])
        assert [s.version for s in await store.read_stream("s-7", after_version=2)] == [3, 4]
        assert await store.read_stream("missing") == []
        assert await store.stream_version("missing") == 0

    async def test_reads_all_streams_in_checkpoint_order_from_any_checkpoint(self, store: EventStore) -> None:
        base = await store.read_all(None, limit=100_000)
        start = base[-1].checkpoint if base else Checkpoint()
        await store.append("a", NO_STREAM, [sample_event("a", "a1"), sample_event("a", "a2")])
        await store.append("b", NO_STREAM, [sample_event("b", "b1")])
        await store.append("a", 2, [sample_event("a", "a3")])
        events = await store.read_all(start)
        assert [e.envelope.data.note for e in events] == ["a1", "a2", "b1", "a3"]  # type: ignore[attr-defined]
        checkpoints = [e.checkpoint for e in events]
        assert checkpoints == sorted(checkpoints)
        assert len(set(checkpoints)) == 4
        rest = await store.read_all(events[1].checkpoint)
        assert [e.envelope.data.note for e in rest] == ["b1", "a3"]  # type: ignore[attr-defined]
        assert len(await store.read_all(start, limit=3)) == 3
        assert await store.read_all(events[-1].checkpoint) == []

    async def test_exactly_one_of_two_concurrent_appends_at_the_same_version_wins(self, store: EventStore) -> None:
        await store.append("s-8", NO_STREAM, [sample_event("s-8")])
        outcomes = await asyncio.gather(
            store.append("s-8", 1, [sample_event("s-8", "left")]),
            store.append("s-8", 1, [sample_event("s-8", "right")]),
            return_exceptions=True,
        )
        assert sum(isinstance(o, ConcurrencyError) for o in outcomes) == 1
        assert await store.stream_version("s-8") == 2

    async def test_keeps_the_instant_of_the_fact(self, store: EventStore) -> None:
        local = datetime(2026, 2, 13, 10, 0, tzinfo=UTC) + timedelta(hours=0)
        await store.append("s-9", NO_STREAM, [sample_event("s-9", at=local)])
        (stored,) = await store.read_stream("s-9")
        assert stored.envelope.time == local
        assert stored.recorded_at.tzinfo is not None
