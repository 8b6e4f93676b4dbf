"""Garbage-collector settings of the scoring process (the service, ``chiso scoring rebuild|verify``, the bench).

Why: a projection batch keeps tens of thousands of container objects alive for its duration (records,
headers, payloads, rows, contributions). With CPython's default thresholds (700, 10, 10) they survive the
young collections, get promoted, and keep triggering full collections that walk every object of the
process — the hundreds of thousands of long-lived objects the imports and configurations created included.
Measured on the dossier projection fed 40,000 events from memory (no broker; the records themselves kept
alive, which makes full collections dearer than in the service): the collector took ≈ 3.3 s of ≈ 12 s, about
a third of the Python time; with these settings ≈ 0.25 s. Freezing what exists once the process is set up
moves it out of every later collection, and a larger young-generation threshold lets a batch's short-lived
objects die by reference counting before a collection sees them.

Nothing changes in what is computed: the collector only reclaims reference cycles, which this code rarely
makes; a larger threshold lets at most that many cycle-bound objects wait a little longer (a few MB).
"""

from __future__ import annotations

from eventkit.heap import BATCH_YOUNG_THRESHOLD, settle_heap_for_batches

__all__ = ["YOUNG_THRESHOLD", "tune_gc"]

#: container allocations (net) between young-generation collections (CPython's default: 700)
YOUNG_THRESHOLD = BATCH_YOUNG_THRESHOLD


def tune_gc() -> None:
    """Freeze the objects the process has made so far and raise the collection thresholds.

    Call it once the long-lived state is loaded (modules, configurations, the unit registry); calling it
    again freezes what has been added since, which is harmless.
    """
    settle_heap_for_batches()
