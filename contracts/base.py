"""Base classes of the wire language: every event payload and every nested record derives from these.

Events are immutable facts: frozen, closed (``extra="forbid"``, so a typo in a producer is an error and
not silently dropped data) and self-describing (an explicit, stable ``event_type`` and a
``schema_version`` that never derive from the module path, so classes can move without breaking the wire).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["EventPayload", "Record"]


class Record(BaseModel):
    """A frozen, closed value object used inside event payloads (e.g. a fee line, an answer)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=False)


class EventPayload(Record):
    """The ``data`` of a CloudEvent: one domain fact.

    Subclasses set ``event_type`` (the CloudEvents ``type``, e.g. ``vn.cchc.dossier.received``) and
    ``schema_version`` (bumped only for a backward-incompatible change, together with an upcaster from
    the previous version; see :mod:`contracts.registry`).
    """

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    #: the service that owns and emits this event type (``plans``, ``dossiers``, ``surveys``, ``scoring``)
    producer: ClassVar[str]
    #: the Kafka topic the event type is published on (a name from :mod:`contracts.topics`)
    topic: ClassVar[str]

    @classmethod
    def schema_id(cls) -> str:
        """Stable identifier of this exact schema, used as the CloudEvents ``dataschema``."""
        return f"urn:chiso:schema:{cls.event_type}:v{cls.schema_version}"
