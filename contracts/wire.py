"""CloudEvents binary content mode on Kafka: an :class:`Envelope` <-> (key, value, headers).

Value: the JSON ``data``. Headers: ``content-type`` plus one ``ce_<attribute>`` per attribute, UTF-8.
Key: ``partitionkey`` (the stream id). Decoding is split in two steps so a consumer can look at the
attributes (type, unit) of a record and skip it without parsing its payload.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple
from uuid import UUID

from pydantic import ValidationError

from contracts.base import EventPayload
from contracts.envelope import (
    EVENT_TYPE_PATTERN,
    PROVINCE_CODE_PATTERN,
    UNIT_CODE_PATTERN,
    Attributes,
    Envelope,
)
from contracts.registry import Registry, UnknownEventType

__all__ = [
    "CONTENT_TYPE",
    "CloudEventHeaders",
    "InvalidRecord",
    "decode",
    "decode_attributes",
    "decode_data",
    "encode",
    "encode_headers",
    "read_headers",
]

CONTENT_TYPE = "application/json"

_PREFIX = "ce_"
# attributes that travel in headers; ``datacontenttype`` travels as ``content-type`` (binary mode rule)
_HEADER_ATTRIBUTES = tuple(name for name in Attributes.model_fields if name != "datacontenttype")


class InvalidRecord(ValueError):
    """A Kafka record that is not a valid chiso CloudEvent; ``reason`` says why (for dead letters)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode_headers(attributes: Attributes) -> list[tuple[str, bytes]]:
    """The Kafka headers of an event (binary mode)."""
    dumped = attributes.model_dump(mode="json", include=set(_HEADER_ATTRIBUTES), exclude_none=True)
    headers = [("content-type", CONTENT_TYPE.encode())]
    headers.extend((_PREFIX + name, str(value).encode()) for name, value in dumped.items())
    return headers


def encode(envelope: Envelope) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of a Kafka record carrying ``envelope``."""
    return (
        envelope.partitionkey.encode(),
        envelope.data.model_dump_json().encode(),
        encode_headers(envelope),
    )


def decode_attributes(headers: Iterable[tuple[str, bytes]] | None) -> Attributes:
    """Read the CloudEvents attributes from a record's headers (without touching its value)."""
    found: dict[str, Any] = {}
    content_type = None
    for name, raw in headers or ():
        if name == "content-type":
            content_type = raw.decode("utf-8", "replace")
        elif name.startswith(_PREFIX):
            found[name[len(_PREFIX) :]] = raw.decode("utf-8", "replace")
    if content_type is not None and content_type.split(";")[0].strip() != CONTENT_TYPE:
        msg = f"unsupported content-type {content_type!r}; expected {CONTENT_TYPE}"
        raise InvalidRecord(msg)
    unknown = set(found) - set(_HEADER_ATTRIBUTES)
    for name in unknown:  # unknown CloudEvents extensions are allowed by the spec; we ignore them
        del found[name]
    try:
        return Attributes.model_validate(found)
    except ValidationError as exc:
        raise InvalidRecord(f"invalid CloudEvents headers: {_short(exc)}") from None


class CloudEventHeaders(NamedTuple):
    """The validated attributes of a record, as cheap to build as a tuple (consumers' hot path).

    Same fields and meaning as :class:`Attributes`, except ``id``, kept as its canonical text (``UUID(id)``
    when an object is needed; PostgreSQL takes the text as is).
    """

    id: str
    source: str
    type: str
    subject: str
    time: datetime
    dataschema: str
    schemaversion: int
    unitcode: str
    provincecode: str
    partitionkey: str
    sequence: int | None
    correlationid: str | None
    causationid: str | None
    legacyunitcode: str | None = None

    def to_attributes(self) -> Attributes:
        """The full pydantic model (the values were already validated)."""
        return Attributes.model_construct(**{**self._asdict(), "id": UUID(self.id)})

    @classmethod
    def from_attributes(cls, attributes: Attributes) -> CloudEventHeaders:
        """From the pydantic model."""
        values = attributes.model_dump(exclude={"specversion", "datacontenttype"})
        return cls(**{**values, "id": str(attributes.id)})


# The fast path accepts only the canonical form of every attribute, each a form the pydantic model accepts
# too; anything else (another UUID spelling, another date format, a missing or odd header) is judged by
# :func:`decode_attributes`, so both paths accept exactly the same records (tests/unit prove it). On the
# consumers' hot path per-header Python work costs more than Kafka's own record parsing, so:
# - the headers that repeat from record to record (type, unit, province, schema version, source, schema)
#   are validated once per distinct combination of their exact bytes and remembered (bounded);
# - the per-record ones (id, time, subject, key) are fetched, decoded and checked in three C-level calls.
_STATIC = itemgetter("ce_type", "ce_unitcode", "ce_provincecode", "ce_schemaversion", "ce_source", "ce_dataschema")
_DYNAMIC = itemgetter("ce_id", "ce_time", "ce_subject", "ce_partitionkey")
_MAX_SUBJECT = Attributes.model_fields["subject"].metadata[-1].max_length
_STATIC_FORM = re.compile(
    "(" + EVENT_TYPE_PATTERN.strip("^$").replace("(", "(?:") + ")\x00"
    "(" + UNIT_CODE_PATTERN.strip("^$").replace("(", "(?:") + ")\x00"
    "(" + PROVINCE_CODE_PATTERN.strip("^$") + ")\x00"
    r"([1-9]\d{0,8})\x00"
    r"([^\x00]+)\x00"  # source: not empty
    r"([^\x00]*)"  # dataschema: any text
)
_DYNAMIC_FORM = re.compile(
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\x00"
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2}))\x00"
    r"([^\x00]{1," + str(_MAX_SUBJECT) + r"})\x00"
    r"([^\x00]+)"  # partition key: not empty
)
_POSITIVE = re.compile(r"[1-9]\d{0,8}")
_UNIT_CODE = re.compile(UNIT_CODE_PATTERN.strip("^$"))
_STATIC_CACHE_SIZE = 65_536
# exact bytes of the static headers -> (type, unit, province, schema version, source, dataschema)
_static_seen: dict[tuple[bytes, ...], tuple[str, str, str, int, str, str]] = {}


def _static_part(raw: tuple[bytes, ...]) -> tuple[str, str, str, int, str, str] | None:
    known = _static_seen.get(raw)
    if known is None:
        match = _STATIC_FORM.fullmatch(b"\x00".join(raw).decode())
        if match is None:
            return None
        event_type, unit, province, version, source, schema = match.groups()
        known = (event_type, unit, province, int(version), source, schema)
        if len(_static_seen) >= _STATIC_CACHE_SIZE:
            _static_seen.clear()  # bounded: a rare full refill beats an unbounded dict
        _static_seen[raw] = known
    return known


def read_headers(headers: Iterable[tuple[str, bytes]] | None) -> CloudEventHeaders:
    """:func:`decode_attributes`, fast for canonical records (see the comment above)."""
    h = dict(headers or ())
    try:
        static = _static_part(_STATIC(h))
        dynamic = _DYNAMIC_FORM.fullmatch(b"\x00".join(_DYNAMIC(h)).decode())
        sequence = h.get("ce_sequence")
        if (
            static is not None
            and dynamic is not None
            and h.get("content-type", b"application/json") == b"application/json"
            and h.get("ce_specversion", b"1.0") == b"1.0"
            and (sequence is None or _POSITIVE.fullmatch(sequence.decode()))
            and ((legacy := h.get("ce_legacyunitcode")) is None or _UNIT_CODE.fullmatch(legacy.decode()))
        ):
            event_type, unit, province, version, source, schema = static
            event_id, time, subject, key = dynamic.groups()
            correlation = h.get("ce_correlationid")
            causation = h.get("ce_causationid")
            # tuple.__new__ skips the NamedTuple's Python-level __new__ (same fields, in order)
            return tuple.__new__(
                CloudEventHeaders,
                (
                    event_id,
                    source,
                    event_type,
                    subject,
                    datetime.fromisoformat(time),
                    schema,
                    version,
                    unit,
                    province,
                    key,
                    None if sequence is None else int(sequence),
                    None if correlation is None else correlation.decode(),
                    None if causation is None else causation.decode(),
                    None if legacy is None else legacy.decode(),
                ),
            )
    except (KeyError, UnicodeDecodeError, ValueError):
        pass
    return CloudEventHeaders.from_attributes(decode_attributes(h.items()))


def decode_data(attributes: Attributes | CloudEventHeaders, value: bytes | None, registry: Registry) -> EventPayload:
    """Validate a record's value against the schema its attributes name (upcasting old versions)."""
    if value is None:
        msg = "record has no value (tombstone) but an event needs data"
        raise InvalidRecord(msg)
    try:
        return registry.parse(attributes.type, attributes.schemaversion, value)
    except UnknownEventType as exc:
        raise InvalidRecord(str(exc)) from None
    except ValidationError as exc:
        msg = f"{attributes.type} v{attributes.schemaversion}: invalid data: {_short(exc)}"
        raise InvalidRecord(msg) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # old-version data goes through json.loads and the upcasters first; their failures are bad input too
        msg = f"{attributes.type} v{attributes.schemaversion}: invalid data (upcast failed): {exc!r}"[:500]
        raise InvalidRecord(msg) from None


def decode(
    key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes]] | None, registry: Registry
) -> Envelope:
    """A whole :class:`Envelope` from a Kafka record; :class:`InvalidRecord` says what is wrong."""
    attributes = decode_attributes(headers)
    if key is not None and key.decode("utf-8", "replace") != attributes.partitionkey:
        msg = f"record key {key!r} differs from ce_partitionkey {attributes.partitionkey!r}"
        raise InvalidRecord(msg)
    if attributes.partitionkey != attributes.subject:
        msg = "ce_partitionkey must equal ce_subject (one stream = one key = one partition)"
        raise InvalidRecord(msg)
    data = decode_data(attributes, value, registry)
    if attributes.dataschema != type(data).schema_id() and attributes.schemaversion == data.schema_version:
        msg = f"ce_dataschema {attributes.dataschema!r} does not match {type(data).schema_id()!r}"
        raise InvalidRecord(msg)
    return Envelope.model_construct(**dict(attributes), data=data)


def _short(exc: ValidationError) -> str:
    """A one-line summary of a validation error, safe to put in a dead-letter header."""
    parts = []
    for error in exc.errors()[:5]:
        location = ".".join(str(p) for p in error["loc"]) or "<root>"
        parts.append(f"{location}: {error['msg']}")
    more = exc.error_count() - 5
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
