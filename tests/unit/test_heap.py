"""eventkit.heap: settle_heap freezes what exists and sets only the thresholds it is given."""

from __future__ import annotations

import gc

from eventkit.heap import BATCH_OLDER, BATCH_YOUNG_THRESHOLD, settle_heap, settle_heap_for_batches


def test_settle_heap_freezes_and_sets_only_the_given_thresholds() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        kept = [object() for _ in range(10)]
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (700, 10, 10)
        settle_heap(20_000)
        assert gc.get_threshold() == (20_000, 10, 10)
        settle_heap(50_000, (20, 20))
        assert gc.get_threshold() == (50_000, 20, 20)
        settle_heap(older=(5, 6))
        assert gc.get_threshold() == (50_000, 5, 6)
        assert kept
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_batch_processes_get_the_batch_thresholds() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        settle_heap_for_batches()
        assert gc.get_threshold() == (BATCH_YOUNG_THRESHOLD, *BATCH_OLDER)
        assert BATCH_YOUNG_THRESHOLD > 700  # the point: a batch's short-lived objects die before a collection
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
