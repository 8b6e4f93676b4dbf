"""Keep what a process built at startup out of the cyclic garbage collector's way.

A service loads large, long-lived structures before it handles anything (the unit registry, working
calendars, contract schemas, rule books). CPython's full collections walk every tracked object each time:
in the dossiers inbox they took ≈ 9 % of the process's CPU. ``gc.freeze()`` after startup moves the
survivors to a permanent generation that collections skip; nothing else changes (objects are still
freed by reference counting; only cycles among the frozen objects are no longer collected, and those
live for the whole process anyway).
"""

from __future__ import annotations

import gc

__all__ = ["BATCH_OLDER", "BATCH_YOUNG_THRESHOLD", "settle_heap", "settle_heap_for_batches"]

#: net container allocations between young collections for a process that works in batches (CPython's
#: default: 700): a batch of thousands of records keeps tens of thousands of containers alive while it is
#: judged or projected; with the default they survive young collections, get promoted and trigger full ones
#: that walk every object of the process. Measured: the scoring projection fed 40,000 events from memory
#: spent ≈ 3.3 s of ≈ 12 s in the collector, ≈ 0.25 s with these settings; the dossiers inbox ≈ 10 % less CPU
#: per fact (BENCHMARKS.md)
BATCH_YOUNG_THRESHOLD = 50_000
#: young collections per middle-generation one, middle per full (defaults: 10, 10)
BATCH_OLDER = (20, 20)


def settle_heap(young_threshold: int | None = None, older: tuple[int, int] | None = None) -> None:
    """Collect once, then freeze every object that survived (call when startup is done; idempotent).

    ``young_threshold``: net container allocations between young collections (CPython's default 700): a
    batch or a request allocates hundreds to tens of thousands of short-lived containers that reference
    counting frees anyway, so a larger threshold lets them die before a collection walks them. ``older``:
    young collections per middle one, middle per full (defaults 10, 10). Unchanged when not given.
    """
    gc.collect()  # what is garbage now is not frozen with the rest
    gc.freeze()
    if young_threshold is not None or older is not None:
        young, middle, oldest = gc.get_threshold()
        middle, oldest = older or (middle, oldest)
        gc.set_threshold(young_threshold or young, middle, oldest)


def settle_heap_for_batches() -> None:
    """:func:`settle_heap` with the thresholds of a batch-processing process (inboxes, projections, imports).

    Nothing changes in what is computed: the collector only reclaims reference cycles, which this code rarely
    makes; a larger threshold lets at most that many cycle-bound objects wait a little longer (a few MB).
    """
    settle_heap(BATCH_YOUNG_THRESHOLD, BATCH_OLDER)
