"""Communes for e2e tests: random, so reruns against a broker that keeps its history use fresh units, and never
the same twice in one session, because e2e tests share the broker's topics. A fresh read model reads a topic
from its beginning, so two tests that counted one commune's March would each see the other's dossiers (a
count of 58 where the test sent 29)."""

from __future__ import annotations

import random

from eventkit.units import UnitRegistry

# units other e2e tests use by fixed code (test_dossiers_month: 00004; test_scoring_merger_history: 00097)
_TAKEN: set[str] = {"00004", "00097"}


def pick_communes(k: int = 1, *, province: str | None = None) -> tuple[str, list[str]]:
    """A province (``province``, or a random one with k communes left) and k of its communes nobody in this
    session has been given."""
    registry = UnitRegistry.load()
    provinces = [province] if province else [p.code for p in registry.provinces()]
    random.shuffle(provinces)
    for code in provinces:
        free = [u.code for u in registry.communes_of(code) if u.code not in _TAKEN]
        if len(free) >= k:
            chosen = random.sample(free, k)
            _TAKEN.update(chosen)
            return code, chosen
    raise AssertionError(f"no province with {k} communes left for e2e tests")
