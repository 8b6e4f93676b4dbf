"""The CloudEvents 1.0 envelope every chiso event travels in.

On Kafka we use the CloudEvents *binary* content mode: the record value is the JSON ``data`` as is, the
``content-type`` header carries ``datacontenttype`` and every other attribute is a ``ce_``-prefixed header
(see :mod:`contracts.wire`). Consumers can therefore route and filter on headers (type, unit code) without
parsing the payload, and any CloudEvents SDK can read our topics.

Extension attributes (lowercase alphanumerics, as the CloudEvents naming rule requires):

- ``schemaversion``: version of the ``data`` schema for this ``type`` (also encoded in ``dataschema``);
- ``unitcode`` / ``provincecode``: the administrative unit the fact belongs to (commune, or the province
  itself for province-level facts) and its province, on every event, so rollups and subscriptions never
  have to look inside the payload;
- ``partitionkey``: the Kafka record key, always the stream id (``subject``);
- ``sequence``: the 1-based version of the event within its stream, when it comes from an event store;
- ``correlationid`` / ``causationid``: the request or message that started the chain / caused this event.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, SerializeAsAny

from contracts.base import EventPayload, Record

__all__ = [
    "EVENT_TYPE_PATTERN",
    "PROVINCE_CODE_PATTERN",
    "UNIT_CODE_PATTERN",
    "Attributes",
    "Envelope",
    "make_envelope",
]

#: 2-digit province codes; 5-digit commune codes (current registry); 3-digit legacy district codes
UNIT_CODE_PATTERN = r"^(\d{2}|\d{3}|\d{5})$"
PROVINCE_CODE_PATTERN = r"^\d{2}$"
#: stable event type names: ``vn.cchc.<aggregate>.<fact>``
EVENT_TYPE_PATTERN = r"^vn\.cchc\.[a-z_]+(\.[a-z_]+)+$"

UnitCode = Annotated[
    str,
    Field(
        pattern=UNIT_CODE_PATTERN,
        description="Administrative unit code (mã ĐVHC): 5-digit commune, 2-digit province, or 3-digit "
        "legacy district for pre-2025 history",
        examples=["00004", "01"],
    ),
]


class Attributes(Record):
    """CloudEvents context attributes of one event (everything but ``data``)."""

    id: UUID = Field(description="Unique event id; ``source`` + ``id`` identify the event, consumers dedupe on it")
    source: str = Field(
        min_length=1,
        description="URI-reference of the producer, e.g. ``urn:chiso:dossiers`` or the one-stop-shop system",
        examples=["urn:chiso:dossiers"],
    )
    specversion: Literal["1.0"] = Field(default="1.0", description="CloudEvents specification version")
    type: str = Field(
        pattern=EVENT_TYPE_PATTERN,
        description="Stable event type name, e.g. ``vn.cchc.dossier.received``",
    )
    subject: str = Field(min_length=1, max_length=200, description="The stream (aggregate) id the event belongs to")
    time: AwareDatetime = Field(description="When the fact happened (ISO 8601 with offset)")
    datacontenttype: Literal["application/json"] = Field(
        default="application/json", description="Media type of ``data``"
    )
    dataschema: str = Field(description="URN of the exact ``data`` schema: ``urn:chiso:schema:<type>:v<N>``")
    schemaversion: int = Field(ge=1, description="Version of the ``data`` schema of this ``type``")
    unitcode: UnitCode
    provincecode: str = Field(pattern=PROVINCE_CODE_PATTERN, description="2-digit province code of ``unitcode``")
    partitionkey: str = Field(min_length=1, description="Kafka record key; always equal to ``subject``")
    sequence: int | None = Field(
        default=None, ge=1, description="1-based version of the event in its stream, when event-sourced"
    )
    correlationid: str | None = Field(default=None, description="Id of the request that started the chain")
    causationid: str | None = Field(default=None, description="Id of the message that caused this event")
    legacyunitcode: str | None = Field(
        default=None,
        pattern=UNIT_CODE_PATTERN,
        description="The pre-2025 unit code the producer was given, when ``unitcode`` was mapped from it (the "
        "2025 merger); lets history be rolled up by legacy district as well as by the current unit",
    )


class Envelope(Attributes):
    """One event: its CloudEvents attributes and its typed ``data``."""

    data: SerializeAsAny[EventPayload] = Field(description="The event payload (schema given by ``dataschema``)")


def make_envelope(
    data: EventPayload,
    *,
    id: UUID,
    source: str,
    subject: str,
    time: AwareDatetime,
    unitcode: str,
    provincecode: str,
    sequence: int | None = None,
    correlationid: str | None = None,
    causationid: str | None = None,
    legacyunitcode: str | None = None,
) -> Envelope:
    """Wrap ``data`` in a validated envelope; type, schema and key are derived from the payload class."""
    return Envelope(
        id=id,
        source=source,
        type=data.event_type,
        subject=subject,
        time=time,
        dataschema=data.schema_id(),
        schemaversion=data.schema_version,
        unitcode=unitcode,
        provincecode=provincecode,
        partitionkey=subject,
        sequence=sequence,
        correlationid=correlationid,
        causationid=causationid,
        legacyunitcode=legacyunitcode,
        data=data,
    )
