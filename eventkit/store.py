"""The event store protocol: append-only streams with optimistic concurrency and a global, gap-safe order.

Two orders exist:

- per stream, ``version`` 1, 2, 3... (optimistic concurrency: ``append`` states the version it expects);
- globally, a :class:`Checkpoint` order in which events become *safely* readable: a tailing reader that
  remembers the checkpoint of the last event it handled never misses an event that commits later with a
  smaller ``position`` (the outbox trap). ``position`` alone is a unique, increasing number that may have
  gaps and may commit out of order; never tail by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from contracts.base import EventPayload
from contracts.envelope import Envelope

__all__ = [
    "NO_STREAM",
    "AppendResult",
    "Checkpoint",
    "ConcurrencyError",
    "DuplicateEventError",
    "EventStore",
    "NewEvent",
    "StoredEvent",
    "check_subjects",
]

#: ``expected_version`` for a stream that must not exist yet
NO_STREAM = 0


@dataclass(frozen=True, order=True)
class Checkpoint:
    """A point in the store's gap-safe global order (commit group first, then position)."""

    commit_group: int = 0
    position: int = 0


@dataclass(frozen=True)
class StoredEvent:
    """An event as the store holds it."""

    position: int
    checkpoint: Checkpoint
    stream_id: str
    version: int
    envelope: Envelope
    recorded_at: datetime


@dataclass(frozen=True)
class AppendResult:
    """What an append wrote: the stream's new version and the events' global positions."""

    version: int
    positions: tuple[int, ...]


class ConcurrencyError(Exception):
    """The stream is not at the expected version (someone else appended first); reload and retry."""


class DuplicateEventError(Exception):
    """An event with this id is already stored; idempotent callers treat this as "already done"."""

    def __init__(self, event_ids: Sequence[str]) -> None:
        super().__init__(f"events already stored: {', '.join(event_ids)}")
        self.event_ids = tuple(event_ids)


class EventStore(Protocol):
    """What services need from an event store."""

    async def append(self, stream_id: str, expected_version: int | None, events: Sequence[Envelope]) -> AppendResult:
        """Append ``events`` to ``stream_id`` atomically.

        ``expected_version``: the version the caller decided on (``NO_STREAM`` for a new stream), or
        ``None`` to append whatever the current version is. Every envelope's ``subject`` must be
        ``stream_id``; the store assigns ``sequence`` (the stream version). Raises
        :class:`ConcurrencyError` or :class:`DuplicateEventError`.
        """
        ...

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[StoredEvent]:
        """The events of one stream with a version greater than ``after_version``, in order."""
        ...

    async def read_all(self, after: Checkpoint | None = None, limit: int = 1000) -> list[StoredEvent]:
        """Committed events after ``after`` in gap-safe global order (at most ``limit``)."""
        ...

    async def stream_version(self, stream_id: str) -> int:
        """Current version of a stream (0 when it does not exist)."""
        ...


class NewEvent(Protocol):
    """What appending needs of an event: an :class:`Envelope` has it, and intakes on a hot path build
    lighter rows with the same attribute names (a validated envelope costs ~10 µs to construct)."""

    @property
    def id(self) -> UUID:
        """Event id."""
        ...

    @property
    def source(self) -> str:
        """CloudEvents source."""
        ...

    @property
    def type(self) -> str:
        """Event type."""
        ...

    @property
    def subject(self) -> str:
        """Stream id."""
        ...

    @property
    def partitionkey(self) -> str:
        """Kafka key (= subject)."""
        ...

    @property
    def time(self) -> datetime:
        """When the fact happened."""
        ...

    @property
    def schemaversion(self) -> int:
        """Schema version of ``data``."""
        ...

    @property
    def unitcode(self) -> str:
        """Unit code."""
        ...

    @property
    def provincecode(self) -> str:
        """Province code."""
        ...

    @property
    def correlationid(self) -> str | None:
        """Correlation id."""
        ...

    @property
    def causationid(self) -> str | None:
        """Causation id."""
        ...

    @property
    def legacyunitcode(self) -> str | None:
        """Pre-2025 unit code, when mapped."""
        ...

    @property
    def data(self) -> EventPayload:
        """The validated payload."""
        ...


def check_subjects(stream_id: str, events: Sequence[NewEvent]) -> None:
    """Refuse events that do not belong to ``stream_id`` (the key rule: subject = partition key = stream)."""
    wrong = [str(e.id) for e in events if e.subject != stream_id or e.partitionkey != stream_id]
    if wrong:
        msg = f"events {wrong} do not belong to stream {stream_id!r} (subject/partitionkey differ)"
        raise ValueError(msg)
