"""Use cases of the plans service: load the streams a command reads, ``decide``, append — the one path every
way in (HTTP, plan files, the overdue scheduler) writes through."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from contracts.envelope import Envelope, make_envelope
from eventkit.store import ConcurrencyError, DuplicateEventError, EventStore, StoredEvent
from services.plans.domain import (
    Command,
    Fact,
    PlansState,
    Refusal,
    RefusalKind,
    Rules,
    UnitRef,
    decide,
    event_id,
    evolve,
)

__all__ = ["Outcome", "OutcomeStatus", "PlansHandler", "fold"]

#: appends that lost a race are decided again on fresh state this many times before giving up
_ATTEMPTS = 5


class OutcomeStatus(StrEnum):
    """What became of a command."""

    RECORDED = "recorded"  # new events were stored
    UNCHANGED = "unchanged"  # already recorded with the same content: nothing stored (idempotent repeat)
    REFUSED = "refused"


@dataclass(frozen=True)
class Outcome:
    """The result of one command: the stored events, or the refusal."""

    status: OutcomeStatus
    stream_id: str
    events: tuple[Envelope, ...] = ()
    refusal: Refusal | None = None

    @property
    def event_ids(self) -> tuple[UUID, ...]:
        """Ids of the stored events."""
        return tuple(e.id for e in self.events)


def _fact(stored: StoredEvent) -> Fact:
    envelope = stored.envelope
    unit = UnitRef(envelope.unitcode, envelope.provincecode, envelope.legacyunitcode)
    return Fact(envelope.data, unit, envelope.time)


def fold(events: Sequence[StoredEvent], state: PlansState | None = None) -> PlansState:
    """The state of the given stored events (one or several streams)."""
    result = state or PlansState()
    for stored in events:
        result = evolve(result, _fact(stored))
    return result


class PlansHandler:
    """Runs commands against an event store (PostgreSQL in the service, in memory in unit tests)."""

    def __init__(
        self, store: EventStore, rules: Rules, clock: Callable[[], datetime], source: str = "urn:chiso:plans"
    ) -> None:
        self._store = store
        self.rules = rules
        self._clock = clock
        self._source = source

    @property
    def store(self) -> EventStore:
        """The event store commands are appended to."""
        return self._store

    async def load(self, *stream_ids: str) -> tuple[PlansState, list[int]]:
        """The folded state of ``stream_ids`` and each stream's version."""
        state, versions = PlansState(), []
        for stream_id in stream_ids:
            events = await self._store.read_stream(stream_id)
            state = fold(events, state)
            versions.append(events[-1].version if events else 0)
        return state, versions

    async def handle(self, command: Command, *, correlation_id: str | None = None) -> Outcome:
        """Decide ``command`` on fresh state and append its events (retrying when another writer won a race)."""
        stream_id = command.stream_id
        for _ in range(_ATTEMPTS):
            state, versions = await self.load(stream_id, *command.reads)
            decision = decide(state, command, self._clock(), self.rules)
            if isinstance(decision, Refusal):
                return Outcome(OutcomeStatus.REFUSED, stream_id, refusal=decision)
            if not decision.events:
                return Outcome(OutcomeStatus.UNCHANGED, stream_id)
            unit = decision.unit
            envelopes = tuple(
                make_envelope(
                    emit.payload,
                    id=event_id(decision.stream_id, emit.payload),
                    source=self._source,
                    subject=decision.stream_id,
                    time=emit.time,
                    unitcode=unit.unit_code,
                    provincecode=unit.province_code,
                    legacyunitcode=unit.legacy_code,
                    correlationid=correlation_id,
                )
                for emit in decision.events
            )
            try:
                await self._store.append(decision.stream_id, versions[0], envelopes)
            except ConcurrencyError:
                continue  # someone appended meanwhile: judge the command again on the new state
            except DuplicateEventError:
                return Outcome(OutcomeStatus.UNCHANGED, stream_id)
            return Outcome(OutcomeStatus.RECORDED, stream_id, envelopes)
        reason = f"{stream_id} keeps changing under concurrent writers; retry"
        return Outcome(OutcomeStatus.REFUSED, stream_id, refusal=Refusal(RefusalKind.CONFLICT, reason))
