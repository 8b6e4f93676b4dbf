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
from eventkit.projection import ConsumedEvent, Projection, Rejection
from eventkit.store import DuplicateEventError

__all__ = ["Append", "Inbox"]


@dataclass(frozen=True)
class Append:
    """Events to append to one stream (``expected_version`` None = at whatever version it is)."""

    stream_id: str
    expected_version: int | None
    events: Sequence[Envelope]


#: what the service makes of an inbound fact: the appends, or the reason it refuses the fact
Accept = Callable[[ConsumedEvent], Sequence[Append] | str]


class Inbox(Projection):
    """Consumes ``topic`` and appends what ``accept`` decides to ``store``, exactly once."""

    def __init__(self, *, name: str, topic: str, store: PostgresEventStore, accept: Accept) -> None:
        self.name = name
        self.topics = (topic,)
        self._store = store
        self._accept = accept

    async def apply(self, conn: Connection, events: Sequence[ConsumedEvent]) -> list[Rejection]:
        """Append the accepted events of every inbound record inside the runner's transaction."""
        rejected: list[Rejection] = []
        for event in events:
            decision = self._accept(event)
            if isinstance(decision, str):
                rejected.append(Rejection(event, decision))
                continue
            for append in decision:
                try:
                    await self._store.append(append.stream_id, append.expected_version, append.events, connection=conn)
                except DuplicateEventError:
                    # the same fact arrived under another record (a partner re-sent it): already stored
                    continue
        return rejected
