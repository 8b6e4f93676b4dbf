"""An in-memory event store for unit tests of pure logic; it passes the same contract tests as PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from contracts.envelope import Envelope
from eventkit.store import (
    AppendResult,
    Checkpoint,
    ConcurrencyError,
    DuplicateEventError,
    StoredEvent,
    check_subjects,
)

__all__ = ["InMemoryEventStore"]


class InMemoryEventStore:
    """Event store in a list. Each append is one commit group, so checkpoints order like PostgreSQL's."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._events: list[StoredEvent] = []
        self._streams: dict[str, list[StoredEvent]] = {}
        self._ids: set[str] = set()
        self._lock = asyncio.Lock()
        self._commit_groups = 0

    async def append(self, stream_id: str, expected_version: int | None, events: Sequence[Envelope]) -> AppendResult:
        """See :meth:`eventkit.store.EventStore.append`."""
        check_subjects(stream_id, events)
        async with self._lock:
            stream = self._streams.get(stream_id, [])
            current = len(stream)
            if expected_version is not None and expected_version != current:
                msg = f"{stream_id}: expected version {expected_version}, stream is at {current}"
                raise ConcurrencyError(msg)
            duplicates = [str(e.id) for e in events if str(e.id) in self._ids]
            if duplicates or len({e.id for e in events}) != len(events):
                raise DuplicateEventError(duplicates or [str(e.id) for e in events])
            if not events:
                return AppendResult(current, ())
            self._commit_groups += 1
            now = self._clock()
            stored = []
            for offset, envelope in enumerate(events, start=1):
                position = len(self._events) + offset
                stored.append(
                    StoredEvent(
                        position=position,
                        checkpoint=Checkpoint(self._commit_groups, position),
                        stream_id=stream_id,
                        version=current + offset,
                        envelope=envelope.model_copy(update={"sequence": current + offset}),
                        recorded_at=now,
                    )
                )
            self._events.extend(stored)
            self._streams[stream_id] = [*stream, *stored]
            self._ids.update(str(e.id) for e in events)
            return AppendResult(current + len(events), tuple(s.position for s in stored))

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[StoredEvent]:
        """See :meth:`eventkit.store.EventStore.read_stream`."""
        return [e for e in self._streams.get(stream_id, []) if e.version > after_version]

    async def read_all(self, after: Checkpoint | None = None, limit: int = 1000) -> list[StoredEvent]:
        """See :meth:`eventkit.store.EventStore.read_all`."""
        start = after or Checkpoint()
        return [e for e in self._events if e.checkpoint > start][:limit]

    async def stream_version(self, stream_id: str) -> int:
        """See :meth:`eventkit.store.EventStore.stream_version`."""
        return len(self._streams.get(stream_id, []))
