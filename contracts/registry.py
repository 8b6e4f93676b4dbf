"""Which payload class reads which (type, schema version), and how old versions are upcast.

The rule for evolving an event type:

- additive changes (a new *optional* field) keep the version;
- anything else (a removed, renamed or retyped field, a new required field) bumps ``schema_version``
  and registers an upcaster ``(type, old_version) -> function(old_data_dict) -> new_data_dict``; the old
  JSON Schema stays committed under ``contracts/schemas/`` and an example of it under
  ``contracts/examples/`` so the tests prove the upcaster turns real old data into valid new data.

Readers always get the latest class: an old record is upcast step by step before validation.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import Any

from contracts.base import EventPayload

__all__ = ["Registry", "UnknownEventType", "Upcaster", "default_registry"]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(LookupError):
    """The (type, version) pair is not part of the contracts this process knows."""


class Registry:
    """Payload classes by event type, plus the upcasters that bring old versions to the latest."""

    def __init__(
        self,
        payloads: Iterable[type[EventPayload]],
        upcasters: Mapping[tuple[str, int], Upcaster] | None = None,
    ) -> None:
        self._latest: dict[str, type[EventPayload]] = {}
        for cls in payloads:
            if cls.event_type in self._latest:
                msg = f"event type {cls.event_type!r} is declared twice"
                raise ValueError(msg)
            self._latest[cls.event_type] = cls
        self._upcasters = dict(upcasters or {})
        for event_type, version in self._upcasters:
            latest = self._latest.get(event_type)
            if latest is None or not 1 <= version < latest.schema_version:
                msg = f"upcaster for unknown or current version {event_type} v{version}"
                raise ValueError(msg)

    def types(self) -> list[type[EventPayload]]:
        """Every registered payload class (latest versions), sorted by event type."""
        return [self._latest[t] for t in sorted(self._latest)]

    def latest(self, event_type: str) -> type[EventPayload]:
        """The current payload class of ``event_type``."""
        try:
            return self._latest[event_type]
        except KeyError:
            msg = f"unknown event type {event_type!r}"
            raise UnknownEventType(msg) from None

    def has_upcaster(self, event_type: str, version: int) -> bool:
        """Whether data of ``version`` can be brought one step forward."""
        return (event_type, version) in self._upcasters

    def upcast(self, event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
        """Bring ``data`` written with ``version`` up to the latest version of ``event_type``."""
        latest = self.latest(event_type).schema_version
        if version > latest:
            msg = f"{event_type} v{version} is newer than this reader (v{latest}); upgrade the contracts"
            raise UnknownEventType(msg)
        while version < latest:
            step = self._upcasters.get((event_type, version))
            if step is None:
                msg = f"no upcaster from {event_type} v{version}"
                raise UnknownEventType(msg)
            data = step(copy.deepcopy(data))  # an upcaster may mutate its input; callers keep theirs
            version += 1
        return data

    def parse(self, event_type: str, version: int, raw: bytes | str) -> EventPayload:
        """Validate raw JSON ``data`` of (type, version) into the latest payload class."""
        cls = self.latest(event_type)
        if version == cls.schema_version:
            return cls.model_validate_json(raw)
        return cls.model_validate(self.upcast(event_type, version, json.loads(raw)))


@cache
def default_registry() -> Registry:
    """The registry of all event types of all services (built on first use, not at import)."""
    from contracts.catalog import ALL_EVENT_TYPES, UPCASTERS  # noqa: PLC0415 - avoid an import cycle

    return Registry(ALL_EVENT_TYPES, UPCASTERS)
