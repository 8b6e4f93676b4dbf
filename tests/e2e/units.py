"""Communes for e2e tests: random, so reruns against a broker that keeps its history use fresh units, and never
the same twice in one session, because e2e tests share the broker's topics. A fresh read model reads a topic
from its beginning, so two tests that counted one commune's March would each see the other's dossiers, and a
province's rollup holds every test's communes in it (tests comparing rollups must wait for it to settle)."""

from __future__ import annotations

import random

from eventkit.units import UnitRegistry

# units other e2e tests use by fixed code (test_dossiers_month: 00004; test_scoring_merger_history: 00097;
# test_plans_timeliness imports the seed plan of xã Ba Nam, legacy 21535, today 21523 in province 51: a test
# given 21523 counted that plan's 2024 tasks with its own, seen once in CI as (4, 7) on-time tasks for (3, 4))
_TAKEN: set[str] = {"00004", "00097", "21523"}
# provinces given so far (and 01, whose fixed units above other tests use): a province's rollup sums every
# test's communes in it, so tests that compare rollups are steadier in a province of their own
_PROVINCES_GIVEN: set[str] = {"01"}


def pick_communes(k: int = 1, *, province: str | None = None) -> tuple[str, list[str]]:
    """A province (``province``, or a random one with k communes left) and k of its communes nobody in this
    session has been given."""
    registry = UnitRegistry.load()
    provinces = [province] if province else [p.code for p in registry.provinces()]
    random.shuffle(provinces)
    provinces.sort(key=lambda code: code in _PROVINCES_GIVEN)  # untouched provinces first: fewer shared rollups
    for code in provinces:
        free = [u.code for u in registry.communes_of(code) if u.code not in _TAKEN]
        if len(free) >= k:
            chosen = random.sample(free, k)
            _TAKEN.update(chosen)
            _PROVINCES_GIVEN.add(code)
            return code, chosen
    raise AssertionError(f"no province with {k} communes left for e2e tests")
