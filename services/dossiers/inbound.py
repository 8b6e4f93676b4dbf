"""What reaches the dossiers service from outside, before the domain judges it.

Three ways in — the Kafka inbound topic, the HTTP API and the bulk import of DVCQG exports — all produce
:class:`InboundFact` values, and one intake turns them into canonical events. Nothing here decides
anything: it only names what the partner said.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contracts.base import EventPayload

__all__ = ["InboundFact"]


@dataclass(frozen=True)
class InboundFact:
    """One fact as a partner (one-stop-shop software, a DVCQG export) reported it."""

    #: the partner system (CloudEvents ``source``); with ``event_id`` it identifies the fact for ever
    source: str
    #: the partner's id of the fact: re-sending the same fact must give the same id (it is stored once)
    event_id: str
    #: when the fact happened (business time, aware)
    time: datetime
    #: the administrative unit as the partner gave it: a current 2025 code or a pre-2025 one
    unit_code: str
    #: the fact, in the contract of :mod:`contracts.dossiers` (never a derived type)
    payload: EventPayload
    #: the partner's correlation id (e.g. its request id), carried into the canonical events
    correlation_id: str | None = None
