"""The intake: submissions from every way in -> judged by the survey domain -> response events, exactly once.

The HTTP API, the Kafka inbound topic and the bulk import all hand :class:`Submission` values to
:meth:`Intake.process` (the inbox and the import inside their own PostgreSQL transaction). Per batch it
costs two statements whatever the batch size: one read of the already-stored event ids and response streams
concerned, one statement creating the new response streams with their events — or only the second, for the
usual batch (see :meth:`Intake.process`). Two submissions about one
dossier in one batch, or in two racing transactions, end the same way: the first is stored, the second
refused (the racing write fails on the existing stream, its caller retries, and the domain then sees the
stored response).

Idempotency: a submission's event id is derived from its sender and the sender's id for it (a Kafka
record's ``ce_source`` + ``ce_id``, an HTTP ``Idempotency-Key``, a paper form's number in an import), so
the same submission sent twice is stored once and the second is reported as a duplicate, not refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from contracts.registry import Registry
from contracts.surveys import SurveyChannel, SurveyResponseSubmitted
from eventkit.pg import Connection
from eventkit.postgres import PostgresEventStore
from eventkit.store import ConcurrencyError, DuplicateEventError
from eventkit.units import ResolvedUnit, UnitRegistry
from services.surveys.catalog import InstrumentCatalog
from services.surveys.domain import (
    Instrument,
    Refusal,
    ResponseState,
    SubmitResponse,
    Violation,
    decide,
    evolve,
    local_day,
    response_id_for_dossier,
    response_id_for_submission,
)

__all__ = ["EVENT_NAMESPACE", "ConcurrencyError", "Intake", "Outcome", "ResponseRow", "Submission"]

#: namespace of canonical event ids: uuid5(namespace, "<source>|<submission id>")
EVENT_NAMESPACE = uuid.UUID("0e7d4b6a-3f2c-4a91-8d57-b6c1e9a2f408")


@dataclass(frozen=True)
class Submission:
    """One completed questionnaire as a way in received it, before anything is checked."""

    #: who sent it (CloudEvents source, ``http:<device>``, ``import:<file>``); with ``submission_id`` its
    #: identity for ever
    source: str
    submission_id: str
    unit_code: Any
    instrument_id: Any
    #: ``None``: the version in force on the submission day
    instrument_version: Any
    channel: Any
    answers: Any
    respondent: Any
    #: ``None``: now (HTTP: the server's clock is the submission time)
    submitted_at: datetime | None = None
    survey_id: Any = None
    ma_tthc: Any = None
    policy_group: Any = None
    weight: Any = None
    linked_dossier_id: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one submission."""

    status: Literal["accepted", "duplicate", "rejected"]
    response_id: str | None = None
    violations: tuple[Violation, ...] = ()
    #: refused because it collides with a stored response (a second response for a dossier)
    conflict: bool = False
    #: the id of the stored response event (accepted now)
    event_id: uuid.UUID | None = None

    @property
    def reason(self) -> str:
        """One line naming every violation."""
        return "; ".join(str(v) for v in self.violations)


@dataclass
class _Prepared:
    submission: Submission
    command: SubmitResponse
    unit: ResolvedUnit
    event_id: uuid.UUID


class Intake:
    """Judges submissions with the survey domain and stores the response events."""

    def __init__(
        self,
        *,
        store: PostgresEventStore,
        registry: Registry,
        units: UnitRegistry,
        catalog: InstrumentCatalog,
        source: str,
    ) -> None:
        self._store = store
        self._registry = registry
        self._units = units
        self._catalog = catalog
        self._source = source

    @property
    def catalog(self) -> InstrumentCatalog:
        """The instruments submissions are judged by."""
        return self._catalog

    async def process(self, conn: Connection, submissions: Sequence[Submission], now: datetime) -> list[Outcome]:
        """Judge and store ``submissions``; one outcome per submission, in order.

        Two statements: a read of what is stored, then one write of every accepted response. In the
        caller's transaction (the inbox, the import) both belong to it; outside one (the HTTP group commit)
        each is its own transaction, and the write, which only creates streams, fails as a whole if a
        response or an event id it decided on was stored in between. Either way the decisions hold for what
        is committed. Raises :class:`ConcurrencyError` when another transaction wrote one of the streams
        or ids first: the caller (rolls back and) calls again (the outcome may then differ, e.g. a dossier
        now answered, or a duplicate).
        """
        prepared = [self._prepare(s, now) for s in submissions]
        if (all_new := await self._store_if_all_new(conn, prepared, now)) is not None:
            return all_new
        ids = [p.event_id for p in prepared if isinstance(p, _Prepared)]
        streams = sorted({p.command.response_id for p in prepared if isinstance(p, _Prepared)})
        stored, states = await self._load(conn, ids, streams)
        seen: dict[str, str] = {}  # event ids of this batch -> response id
        appends: dict[str, list[ResponseRow]] = {}
        outcomes: list[Outcome] = []
        for item in prepared:
            if isinstance(item, Outcome):
                outcomes.append(item)
                continue
            event_id = str(item.event_id)
            if event_id in stored or event_id in seen:
                outcomes.append(Outcome("duplicate", item.command.response_id))
                continue
            response_id = item.command.response_id
            state = states.get(response_id, ResponseState())
            decided = decide(state, item.command, now)
            if isinstance(decided, Refusal):
                outcomes.append(Outcome("rejected", response_id, decided.violations, conflict=decided.conflict))
                continue
            [event] = decided
            states[response_id] = evolve(state, event)
            appends.setdefault(response_id, []).append(self._row(event, item))
            seen[event_id] = response_id
            outcomes.append(Outcome("accepted", response_id, event_id=item.event_id))
        if appends:
            # every response stream is new when it is appended to: creating it makes a racing twin fail
            try:
                await self._store.create_streams(conn, sorted(appends.items()))
            except DuplicateEventError as exc:
                # stored by a transaction that committed after our read: judged again, it is a duplicate
                msg = f"stored meanwhile: {', '.join(exc.event_ids[:5])}"
                raise ConcurrencyError(msg) from None
        return outcomes

    async def _store_if_all_new(
        self, conn: Connection, prepared: Sequence[_Prepared | Outcome], now: datetime
    ) -> list[Outcome] | None:
        """The usual batch in one statement: every submission new, about a response nobody stored, and valid.

        Judged as if nothing were stored, and written by the statement that fails as a whole if a response
        stream or an event id it writes exists (``create_streams``): when it succeeds, nothing concerned was
        stored, so the read of :meth:`process` would have found nothing and every decision is the one it
        would have made. Anything else — a refusal (it may hide a stored response: a refused submission's
        stream is not written, so not checked), two submissions of one response or event id, a stored one —
        returns ``None`` having written nothing, and :meth:`process` judges the batch the long way.
        """
        items = [p for p in prepared if isinstance(p, _Prepared)]
        if not items or len({p.event_id for p in items}) != len(items):
            return None
        if len({p.command.response_id for p in items}) != len(items):
            return None
        appends: list[tuple[str, list[ResponseRow]]] = []
        outcomes: list[Outcome] = []
        for item in prepared:
            if isinstance(item, Outcome):
                outcomes.append(item)
                continue
            decided = decide(ResponseState(), item.command, now)
            if isinstance(decided, Refusal):
                return None
            [event] = decided
            appends.append((item.command.response_id, [self._row(event, item)]))
            outcomes.append(Outcome("accepted", item.command.response_id, event_id=item.event_id))
        try:
            await self._store.create_streams(conn, sorted(appends))
        except (ConcurrencyError, DuplicateEventError):
            return None
        return outcomes

    def _prepare(self, submission: Submission, now: datetime) -> _Prepared | Outcome:
        """Everything that needs the catalog and the unit registry (not the stored state)."""
        problems: list[Violation] = []
        submitted_at = submission.submitted_at or now
        day = local_day(submitted_at)
        instrument = self._instrument(submission, day, problems)
        unit: ResolvedUnit | str | None = None
        if not isinstance(submission.unit_code, str):
            problems.append(Violation("unitcode", submission.unit_code, "a unit code is a string of digits"))
        else:
            unit = self._units.resolve(submission.unit_code, day)
            if isinstance(unit, str):
                problems.append(Violation("unitcode", submission.unit_code, unit))
        try:
            channel = SurveyChannel(submission.channel)
        except ValueError:
            problems.append(Violation("channel", submission.channel, f"one of {[c.value for c in SurveyChannel]}"))
        survey_id = submission.survey_id
        if survey_id is not None and not (isinstance(survey_id, str) and 0 < len(survey_id) <= 200):
            problems.append(Violation("survey_id", survey_id, "a text of 1 to 200 characters"))
        if problems or instrument is None or not isinstance(unit, ResolvedUnit):
            return Outcome("rejected", None, tuple(problems))
        dossier = submission.linked_dossier_id
        response_id = (
            response_id_for_dossier(dossier)
            if dossier is not None
            else response_id_for_submission(submission.source, submission.submission_id)
        )
        command = SubmitResponse(
            response_id=response_id,
            instrument=instrument,
            channel=channel,
            submitted_at=submitted_at,
            province_code=unit.province_code,
            answers=submission.answers,
            respondent=submission.respondent,
            survey_id=survey_id,
            ma_tthc=submission.ma_tthc,
            policy_group=submission.policy_group,
            weight=submission.weight,
            linked_dossier_id=dossier,
        )
        event_id = uuid.uuid5(EVENT_NAMESPACE, f"{submission.source}|{submission.submission_id}")
        return _Prepared(submission, command, unit, event_id)

    def _instrument(self, submission: Submission, day: Any, problems: list[Violation]) -> Instrument | None:
        instrument_id, version = submission.instrument_id, submission.instrument_version
        if not isinstance(instrument_id, str):
            problems.append(Violation("instrument_id", instrument_id, "an instrument id is a string"))
            return None
        if version is None:
            found = self._catalog.in_force(instrument_id, day)
            if found is None:
                known = [i.key for i in self._catalog.versions(instrument_id)] or "none"
                rule = f"no version of {instrument_id!r} is in force on {day.isoformat()} (versions: {known})"
                problems.append(Violation("instrument_id", instrument_id, rule))
            return found
        found = self._catalog.get(instrument_id, version) if isinstance(version, str) else None
        if found is None:
            known = [i.version for i in self._catalog.versions(instrument_id)]
            rule = f"no such instrument version (versions of {instrument_id!r}: {known or 'none'})"
            problems.append(Violation("instrument_version", version, rule))
        return found

    async def _load(
        self, conn: Connection, event_ids: Sequence[uuid.UUID], stream_ids: Sequence[str]
    ) -> tuple[set[str], dict[str, ResponseState]]:
        """Which of ``event_ids`` are stored already, and the stored state of ``stream_ids``: one round trip
        (the batch's duplicates and its answered dossiers are both rows of ``es_events``)."""
        if not event_ids and not stream_ids:
            return set(), {}
        rows = await conn.fetch(
            "SELECT stream_id, type, schema_version, data::text AS data, event_id::text AS event_id,"
            " stream_id = ANY($2::text[]) AS wanted FROM es_events"
            " WHERE event_id = ANY($1::uuid[]) OR stream_id = ANY($2::text[]) ORDER BY stream_id, version",
            list(event_ids),
            list(stream_ids),
        )
        asked = {str(e) for e in event_ids}
        stored = {row["event_id"] for row in rows if row["event_id"] in asked}
        states: dict[str, ResponseState] = {}
        for row in rows:
            if not row["wanted"]:
                continue
            payload = self._registry.parse(row["type"], row["schema_version"], row["data"])
            if isinstance(payload, SurveyResponseSubmitted):
                states[row["stream_id"]] = evolve(states.get(row["stream_id"], ResponseState()), payload)
        return stored, states

    def _row(self, event: SurveyResponseSubmitted, item: _Prepared) -> ResponseRow:
        submission = item.submission
        return ResponseRow(
            id=item.event_id,
            source=self._source,
            type=event.event_type,
            subject=event.response_id,
            partitionkey=event.response_id,
            time=event.submitted_at,
            schemaversion=event.schema_version,
            unitcode=item.unit.unit_code,
            provincecode=item.unit.province_code,
            correlationid=submission.correlation_id or f"{submission.source}|{submission.submission_id}",
            causationid=None,
            legacyunitcode=item.unit.legacy_code,
            data=event,
        )


@dataclass(frozen=True, slots=True)
class ResponseRow:
    """A response event as the store appends it (:class:`~eventkit.store.NewEvent`): the attributes the
    envelope would carry, without building the envelope model (≈ 15 µs per submission); the relay publishes
    the stored row as CloudEvents."""

    id: uuid.UUID
    source: str
    type: str
    subject: str
    partitionkey: str
    time: datetime
    schemaversion: int
    unitcode: str
    provincecode: str
    correlationid: str | None
    causationid: str | None
    legacyunitcode: str | None
    data: SurveyResponseSubmitted
