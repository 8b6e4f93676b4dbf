"""The inbox: facts other systems publish on an inbound topic become events in this service's store.

It is a projection whose "read model" is the event store: the inbound record's offset, its event id (so a
re-sent record is ignored) and the appended events commit in one transaction. The service decides what a
fact becomes (``accept``): the events to append, to which stream, at which expected version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from contracts.envelope import Envelope
from eventkit.pg import Connection
from eventkit.postgres import PostgresEventStore
from eventkit.projection import ConsumedEvent, Projection
from eventkit.store import DuplicateEventError

__all__ = ["Append", "Inbox"]


@dataclass(frozen=True)
class Append:
    """Events to append to one stream (``expected_version`` None = at whatever version it is)."""

    stream_id: str
    expected_version: int | None
    events: Sequence[Envelope]


Accept = Callable[[ConsumedEvent], Sequence[Append]]


class Inbox(Projection):
    """Consumes ``topic`` and appends what ``accept`` decides to ``store``, exactly once."""

    def __init__(self, *, name: str, topic: str, store: PostgresEventStore, accept: Accept) -> None:
        self.name = name
        self.topics = (topic,)
        self._store = store
        self._accept = accept

    async def apply(self, conn: Connection, events: Sequence[ConsumedEvent]) -> None:
        """Append the accepted events of every inbound record inside the runner's transaction."""
        for event in events:
            for append in self._accept(event):
                try:
                    await self._store.append(
                        append.stream_id, append.expected_version, append.events, connection=conn
                    )
                except DuplicateEventError:
                    # the same fact arrived under another record (a partner re-sent it): already stored
                    continue
