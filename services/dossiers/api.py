"""HTTP API of the dossiers service, for one-stop-shop software that cannot speak Kafka.

- ``POST /v1/facts`` — one dossier fact in the contract of :mod:`contracts.dossiers` (the same JSON ``data``
  as on the Kafka inbound topic), with an ``Idempotency-Key`` header: the key is the fact's id for its
  source, so a retried request stores nothing twice; the same key with another body is a 409.
- ``GET /v1/dossiers/{dossier_id}`` — what chiso knows of a dossier (status, due dates, verdicts).
- ``GET /v1/due-date`` — the due instant of a limit in working days or hours (as ``chiso due-date``).

Bad input is a 4xx whose ``detail`` names the field, the value and the rule; the service never answers
5xx for anything a client sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.envelope import EVENT_TYPE_PATTERN, UNIT_CODE_PATTERN
from contracts.registry import Registry, UnknownEventType
from eventkit.pg import Migration
from eventkit.store import ConcurrencyError
from eventkit.worktime import VN_TZ, CalendarConfigError, WorkingCalendar
from services.dossiers.domain import DossierState, Judge
from services.dossiers.inbound import InboundFact
from services.dossiers.intake import Intake

__all__ = ["MIGRATIONS", "api_router"]

MIGRATIONS = (
    Migration(
        "0001_http_idempotency",
        """
        CREATE TABLE http_idempotency (
            source       text NOT NULL,
            key          text NOT NULL,
            body_sha256  text NOT NULL,
            status_code  integer NOT NULL,
            response     jsonb NOT NULL,
            created_at   timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (source, key)
        );
        """,
    ),
)

_RETRIES = 5


class FactRequest(BaseModel):
    """One fact sent over HTTP: who sends it, what it is, where, and the contract payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(
        min_length=1, max_length=200, description="The sending system (CloudEvents source), e.g. urn:mcdt:ha-noi"
    )
    type: str = Field(pattern=EVENT_TYPE_PATTERN, description="Event type, e.g. vn.cchc.dossier.received")
    unitcode: str = Field(pattern=UNIT_CODE_PATTERN, description="Commune code (2025 code, or pre-2025 for history)")
    correlationid: str | None = Field(default=None, max_length=200, description="The sender's correlation id")
    data: dict[str, Any] = Field(description="The payload, in the contract of the event type (JSON Schema)")


class StoredEventView(BaseModel):
    """A canonical event the request produced."""

    id: str = Field(description="Canonical event id")
    type: str = Field(description="Event type")
    subject: str = Field(description="Stream (dossier) id")
    time: datetime = Field(description="When the fact happened")


class FactResponse(BaseModel):
    """What became of a fact."""

    status: str = Field(description="accepted (stored now) or duplicate (stored before; nothing changed)")
    events: list[StoredEventView] = Field(description="Canonical events stored by this request")


class DueDateResponse(BaseModel):
    """A due date in working time."""

    received: datetime = Field(description="The receipt instant given")
    normalized_start: datetime = Field(description="Where the clock starts (cut-offs applied)")
    due_at: datetime = Field(description="Due instant, canonical form, +07:00")
    calendar_version: str = Field(description="Calendar data the answer comes from")


def _problem(status: int, field: str, value: object, rule: str) -> HTTPException:
    return HTTPException(status, detail=[{"field": field, "value": value, "rule": rule}])


def api_router(
    *,
    pool: asyncpg.Pool,
    intake: Intake,
    registry: Registry,
    clock: Callable[[], datetime],
    judge_of: Callable[[str, str | None], Judge],
    calendar_dir: Any = None,
) -> APIRouter:
    """The service's public API (its OpenAPI is served at /openapi.json)."""
    router = APIRouter(prefix="/v1", tags=["dossiers"])

    @router.post(
        "/facts",
        response_model=FactResponse,
        status_code=201,
        responses={
            200: {"description": "Already stored (same idempotency key and body, or the same fact before)"},
            409: {"description": "The idempotency key was used with another body"},
            422: {"description": "Invalid payload, unknown unit, or a fact the dossier's lifecycle refuses"},
        },
    )
    async def post_fact(
        request: FactRequest,
        idempotency_key: Annotated[
            str, Header(min_length=1, max_length=200, description="Unique per fact for this source; retries reuse it")
        ],
    ) -> JSONResponse:
        """Record one dossier fact (the HTTP twin of the Kafka inbound topic)."""
        try:
            cls = registry.latest(request.type)
        except UnknownEventType:
            raise _problem(422, "type", request.type, "unknown event type") from None
        if cls.producer != "dossiers":
            raise _problem(422, "type", request.type, f"not a dossier fact (owned by the {cls.producer} service)")
        try:
            payload = cls.model_validate(request.data)
        except ValidationError as exc:
            detail = [
                {"field": "data." + ".".join(str(p) for p in e["loc"]), "value": e.get("input"), "rule": e["msg"]}
                for e in exc.errors()[:20]
            ]
            raise HTTPException(422, detail=json.loads(json.dumps(detail, default=str))) from None
        body_hash = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
        fact = InboundFact(
            source=request.source,
            event_id=idempotency_key,
            time=clock(),
            unit_code=request.unitcode,
            payload=payload,
            correlation_id=request.correlationid,
        )
        for attempt in range(_RETRIES):
            try:
                return await _record(pool, intake, fact, body_hash, clock())
            except ConcurrencyError:
                if attempt == _RETRIES - 1:
                    raise HTTPException(503, detail="the dossier is busy; retry with the same key") from None
        raise AssertionError  # pragma: no cover

    @router.get("/dossiers/{dossier_id}", responses={404: {"description": "No fact of this dossier was recorded"}})
    async def get_dossier(dossier_id: str) -> dict[str, Any]:
        """What chiso knows of a dossier: status, original due date, supplements, apologies, verdicts."""
        row = await pool.fetchrow(
            "SELECT version, unit_code, province_code, legacy_unit_code, state, overdue_watch_at"
            " FROM dossier_state WHERE stream_id = $1",
            f"dossier:{dossier_id}",
        )
        if row is None:
            raise _problem(404, "dossier_id", dossier_id, "no fact of this dossier was recorded")
        state = DossierState.from_json(json.loads(row["state"]))
        return {
            "dossier_id": dossier_id,
            "version": row["version"],
            "unitcode": row["unit_code"],
            "provincecode": row["province_code"],
            "legacyunitcode": row["legacy_unit_code"],
            "status": None if state.status is None else state.status.value,
            "next_overdue_check": row["overdue_watch_at"],
            "state": state.to_json(),
        }

    @router.get("/due-date", response_model=DueDateResponse)
    async def due_date(
        received: Annotated[datetime, Query(description="Receipt instant, ISO 8601; no offset = +07:00")],
        working_days: Annotated[float | None, Query(ge=0, le=3650, description="Limit in working days")] = None,
        working_hours: Annotated[float | None, Query(ge=0, le=87600, description="Limit in working hours")] = None,
        province: Annotated[str | None, Query(pattern=r"^\d{2}$", description="Province code (its calendar)")] = None,
    ) -> DueDateResponse:
        """The due instant of a statutory limit (DOMAIN §3.2), as ``chiso due-date`` prints it."""
        if (working_days is None) == (working_hours is None):
            raise _problem(422, "working_days/working_hours", None, "give exactly one of the two")
        start = received if received.tzinfo is not None else received.replace(tzinfo=VN_TZ)
        try:
            calendar = judge_of(province, None).calendar if province is not None else WorkingCalendar.load()
            assert isinstance(calendar, WorkingCalendar)
            if working_days is not None:
                due = calendar.due_at(start, working_days, "working_days")
            else:
                due = calendar.due_at(start, working_hours or 0.0, "working_hours")
        except (CalendarConfigError, ValueError) as exc:
            raise _problem(422, "received", received.isoformat(), str(exc)) from None
        return DueDateResponse(
            received=start.astimezone(VN_TZ),
            normalized_start=calendar.normalize(start),
            due_at=due,
            calendar_version=calendar.version,
        )

    return router


async def _record(pool: asyncpg.Pool, intake: Intake, fact: InboundFact, body_hash: str, now: datetime) -> JSONResponse:
    async with pool.acquire() as conn, conn.transaction():
        known = await conn.fetchrow(
            "SELECT body_sha256, status_code, response FROM http_idempotency WHERE source = $1 AND key = $2 FOR UPDATE",
            fact.source,
            fact.event_id,
        )
        if known is not None:
            if known["body_sha256"] != body_hash:
                detail = [
                    {"field": "Idempotency-Key", "value": fact.event_id, "rule": "already used with another body"}
                ]
                return JSONResponse({"detail": detail}, status_code=409)
            return JSONResponse(json.loads(known["response"]), status_code=200, headers={"Idempotent-Replayed": "true"})
        [outcome] = await intake.process(conn, [[fact]], now)
        if outcome.status == "rejected":
            # not remembered: once the dossier's state allows it, a retry with the same key may succeed
            detail = [{"field": "data", "value": fact.payload.event_type, "rule": outcome.reason or ""}]
            return JSONResponse({"detail": detail}, status_code=422)
        body = FactResponse(
            status=outcome.status,
            events=[StoredEventView(id=str(e.id), type=e.type, subject=e.subject, time=e.time) for e in outcome.events],
        ).model_dump(mode="json")
        code = 201 if outcome.status == "accepted" else 200
        await conn.execute(
            "INSERT INTO http_idempotency (source, key, body_sha256, status_code, response)"
            " VALUES ($1, $2, $3, $4, $5)",
            fact.source,
            fact.event_id,
            body_hash,
            code,
            json.dumps(body),
        )
        return JSONResponse(body, status_code=code)
