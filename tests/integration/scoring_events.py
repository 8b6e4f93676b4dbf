"""Canonical dossier events as the scoring projections consume them, for the scoring integration tests."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from contracts.base import EventPayload
from contracts.dossiers import (
    Channel,
    DossierComponent,
    DossierReceived,
    DossierResolved,
    DossierStatus,
    StatutoryTime,
    TimelinessClass,
    TimeUnit,
)
from contracts.envelope import make_envelope
from contracts.registry import default_registry
from contracts.topics import DOSSIERS_EVENTS
from contracts.wire import encode, read_headers
from eventkit import postgres
from eventkit import projection as plumbing
from eventkit.pg import apply_migrations, create_pool
from eventkit.projection import ConsumedEvent
from services.scoring.app import scoring_projections
from services.scoring.projections import DossierIndicatorsProjection
from services.scoring.subscriptions import MIGRATIONS as SUBSCRIPTIONS

REGISTRY = default_registry()
_offsets = itertools.count()


async def scoring_pool(url: str, *, whole_service: bool = False) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the ``scoring`` schema with the dossier projection's tables (body of a fixture); with
    ``whole_service``, the tables of every projection, the publisher's and the event store's too."""
    pool = await create_pool(url, "scoring", min_size=1, max_size=4)
    await apply_migrations(pool, "eventkit.projection", plumbing.MIGRATIONS)
    if whole_service:
        await apply_migrations(pool, "eventkit.store", postgres.MIGRATIONS)
        for projection in scoring_projections():
            await apply_migrations(pool, projection.name, projection.migrations)
        await apply_migrations(pool, "scoring.subscriptions", SUBSCRIPTIONS)
    else:
        await apply_migrations(pool, "scoring.dossier_indicators", DossierIndicatorsProjection.migrations)
    try:
        yield pool
    finally:
        await pool.close()


def consumed(
    payload: EventPayload,
    unit: str = "00004",
    province: str = "01",
    legacy: str | None = None,
    time: datetime = datetime(2026, 3, 2, tzinfo=UTC),
) -> ConsumedEvent:
    """``payload`` as the record the relay would have written on the dossiers topic."""
    envelope = make_envelope(
        payload,
        id=uuid.uuid4(),
        source="urn:chiso:dossiers",
        subject=f"dossier:{payload.dossier_id}",  # type: ignore[attr-defined]
        time=time,
        unitcode=unit,
        provincecode=province,
        legacyunitcode=legacy,
    )
    key, value, headers = encode(envelope)
    record = ConsumerRecord(
        "vn.cchc.dossiers.events", 0, next(_offsets), 0, 0, key, value, None, len(key), len(value), headers
    )
    return ConsumedEvent(record, read_headers(headers), REGISTRY)


def received(dossier_id: str, at: datetime, channel: Channel = Channel.DIRECT) -> DossierReceived:
    """A direct (or ``channel``) receipt due three days later, one digitised component."""
    return DossierReceived(
        dossier_id=dossier_id,
        agency_code="A",
        channel=channel,
        ma_tthc="1.001193",
        procedure_version="v",
        applicant_type="individual",
        applicant_ref="b" * 64,
        received_at=at,
        due_at=at + timedelta(days=3),
        statutory_time=StatutoryTime(value=3, unit=TimeUnit.WORKING_DAYS),
        components=(
            DossierComponent(component_code="TP1", digitized=True, reused_from_store=False, reused_digital_data=False),
        ),
    )


def resolved(dossier_id: str, received_at: datetime, end: datetime, klass: TimelinessClass) -> DossierResolved:
    """The verdict of a dossier received at ``received_at`` and delivered at ``end``."""
    return DossierResolved(
        dossier_id=dossier_id,
        agency_code="A",
        ma_tthc="1.001193",
        channel=Channel.DIRECT,
        received_at=received_at,
        due_at=received_at + timedelta(days=3),
        resolved_at=end,
        final_status=DossierStatus.RESULT_DELIVERED,
        report06_class=klass,
        on_time_766=klass is not TimelinessClass.LATE,
        supplement_working_hours=0,
        supplement_requests=0,
        processing_working_hours=10,
        ruleset_version="t",
        electronic_result=False,
    )


async def publish_received(bootstrap: str, receipts: list[tuple[str, datetime, str, str]]) -> None:
    """Publish a ``dossier received`` per (dossier id, instant, unit, province) on the canonical dossiers topic,
    as the dossiers service's relay writes them (one stream, so one key, per dossier)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for dossier_id, at, unit, province in receipts:
            envelope = make_envelope(
                received(dossier_id, at), id=uuid.uuid4(), source="urn:chiso:dossiers",
                subject=f"dossier:{dossier_id}", time=at, unitcode=unit, provincecode=province,
            )  # fmt: skip
            key, value, headers = encode(envelope)
            await producer.send_and_wait(DOSSIERS_EVENTS, value=value, key=key, headers=list(headers))
    finally:
        await producer.stop()
