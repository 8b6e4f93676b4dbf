"""Every event type of chiso, and the upcasters that read old versions; the input of ``default_registry``."""

from __future__ import annotations

from contracts import dossiers, plans, scoring, surveys
from contracts.base import EventPayload
from contracts.registry import Upcaster

__all__ = ["ALL_EVENT_TYPES", "UPCASTERS"]

ALL_EVENT_TYPES: tuple[type[EventPayload], ...] = (
    *dossiers.EVENTS,
    *surveys.EVENTS,
    *plans.EVENTS,
    *scoring.EVENTS,
)

# To change an event type incompatibly: bump the class's ``schema_version`` to N+1, keep the committed
# ``contracts/schemas/<type>/vN.json`` and ``contracts/examples/<type>/vN.json``, add one entry
#     ("vn.cchc.dossier.received", N): _received_vN_to_vN1,
# whose function takes the vN ``data`` dict and returns a valid vN+1 dict (pure, no I/O), then run
# ``python -m contracts.schemagen`` and add ``examples/<type>/vN+1.json``. The contract tests prove the old
# example upcasts into a valid current model.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}
