"""tests/e2e/units.py never hands out a commune that an e2e test fills by a fixed code (e.g. a seed plan)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from eventkit.units import ResolvedUnit, UnitRegistry
from tests.e2e import units

SEED_003 = Path(__file__).resolve().parents[2] / "examples" / "plans" / "003_ba-nam-2024.yaml"


def test_the_seed_plan_that_an_e2e_test_imports_has_its_commune_reserved(monkeypatch: pytest.MonkeyPatch) -> None:
    # the picks below must not use up communes the e2e tests of this session will ask for
    monkeypatch.setattr(units, "_TAKEN", set(units._TAKEN))
    monkeypatch.setattr(units, "_PROVINCES_GIVEN", set(units._PROVINCES_GIVEN))
    plan = yaml.safe_load(SEED_003.read_text(encoding="utf-8"))["plan"]
    resolved = UnitRegistry.load().resolve(plan["unit_code"], date(2024, 6, 1))
    assert isinstance(resolved, ResolvedUnit), resolved
    assert resolved.unit_code in units._TAKEN
    for _ in range(20):  # and picking in its province never returns it
        _, chosen = units.pick_communes(3, province=resolved.province_code)
        assert resolved.unit_code not in chosen
