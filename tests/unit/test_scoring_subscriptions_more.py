"""Subscriptions: which (unit, period) keys the dossier, survey and plans projections' changes mark dirty."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pytest

from services.scoring.domain.activity import VN_TZ
from services.scoring.domain.dossier import Contribution, DossierRow, UnitStamp
from services.scoring.domain.periods import STORED_KINDS, PeriodKind, period_start, periods_between
from services.scoring.subscriptions import DirtyKey, DossierChange, dirty_keys, unit_day_keys


def test_a_commune_day_marks_the_commune_and_its_province_in_every_stored_period() -> None:
    keys = unit_day_keys([("79001", "79", date(2026, 5, 17), None)])
    assert keys == {
        DirtyKey(unit, "79", kind, start)
        for unit in ("79001", "79")
        for kind, start in (
            (PeriodKind.MONTH, date(2026, 5, 1)),
            (PeriodKind.QUARTER, date(2026, 4, 1)),
            (PeriodKind.YEAR, date(2026, 1, 1)),
        )
    }


def test_a_yearly_change_marks_only_the_year() -> None:
    keys = unit_day_keys([("79001", "79", date(2026, 1, 1), PeriodKind.YEAR)])
    assert keys == {
        DirtyKey("79001", "79", PeriodKind.YEAR, date(2026, 1, 1)),
        DirtyKey("79", "79", PeriodKind.YEAR, date(2026, 1, 1)),
    }


def test_a_province_level_row_marks_the_province_only_and_duplicates_collapse() -> None:
    keys = unit_day_keys(
        [("79", "79", date(2026, 2, 3), PeriodKind.MONTH), ("79", "79", date(2026, 2, 27), PeriodKind.MONTH)]
    )
    assert keys == {DirtyKey("79", "79", PeriodKind.MONTH, date(2026, 2, 1))}


# --- dossier changes -------------------------------------------------------------------------------------


def _reference_dirty_keys(changes: list[DossierChange], today: date) -> set[DirtyKey]:
    """The definition, spelled out per dossier and contribution (how dirty_keys was first written)."""
    out: set[DirtyKey] = set()
    for old, old_made, new, new_made in changes:
        for row, made in ((old, old_made), (new, new_made)):
            if row is None:
                continue
            units = [row.unit.provincecode] + ([row.unit.unitcode] if len(row.unit.unitcode) == 5 else [])
            for unit in units:
                for kind in STORED_KINDS:
                    starts = {period_start(kind, c.day) for c in made}
                    if row.received_at is not None:
                        first = row.received_at.astimezone(VN_TZ).date()
                        last = row.resolved_at.astimezone(VN_TZ).date() if row.resolved_at else max(today, first)
                        starts.update(periods_between(kind, first, last))
                    out.update(DirtyKey(unit, row.unit.provincecode, kind, s) for s in starts)
    return out


def _changes(seed: int) -> list[DossierChange]:
    rng = random.Random(seed)
    units = [UnitStamp("79001", "79"), UnitStamp("79002", "79"), UnitStamp("01004", "01"), UnitStamp("790", "79")]
    out: list[DossierChange] = []
    for i in range(60):
        unit = rng.choice(units)
        received = datetime(2025, 11, 1, 8, tzinfo=VN_TZ) + timedelta(days=rng.randrange(200), hours=rng.randrange(16))
        resolved = received + timedelta(days=rng.randrange(60)) if rng.random() < 0.6 else None
        new = DossierRow(dossier_id=f"D{i}", unit=unit, received_at=received, resolved_at=resolved)
        made = tuple(Contribution(f"k{j}", received.date() + timedelta(days=rng.randrange(90))) for j in range(3))
        if rng.random() < 0.5:  # a dossier already stored: its old row and contributions move too
            old = DossierRow(dossier_id=f"D{i}", unit=rng.choice(units), received_at=received - timedelta(days=40))
            out.append((old, (Contribution("k0", received.date() - timedelta(days=40)),), new, made))
        else:
            out.append((None, (), new, made))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_dossier_changes_mark_the_same_keys_as_the_per_dossier_definition(seed: int) -> None:
    changes = _changes(seed)
    today = date(2026, 6, 15)
    assert dirty_keys(changes, today) == _reference_dirty_keys(changes, today)


def test_an_open_dossier_marks_every_period_from_its_receipt_to_today() -> None:
    row = DossierRow(dossier_id="D", unit=UnitStamp("79001", "79"), received_at=datetime(2026, 3, 31, 23, tzinfo=VN_TZ))
    keys = dirty_keys([(None, (), row, (Contribution("r06.received", date(2026, 3, 31)),))], date(2026, 5, 2))
    months = {k.start for k in keys if k.kind is PeriodKind.MONTH and k.unitcode == "79001"}
    assert months == {date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)}
    assert {k.unitcode for k in keys} == {"79001", "79"}
    assert {k.start for k in keys if k.kind is PeriodKind.QUARTER} == {date(2026, 1, 1), date(2026, 4, 1)}
