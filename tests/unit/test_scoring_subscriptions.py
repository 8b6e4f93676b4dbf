"""Subscriptions: which values go on the wire, and the example subscriber's filter."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from services.scoring.domain.indicators import IndicatorValue, Kind, NaReason
from services.scoring.domain.periods import PeriodKind
from services.scoring.subscriptions import DirtyKey, to_payload

KEY = DirtyKey("00004", "01", PeriodKind.MONTH, date(2026, 3, 1))
AT = datetime(2026, 11, 23, tzinfo=UTC)


def value(value: float | None, reason: NaReason | None, numerator: float | None = 3, denominator: float | None = 4):
    return IndicatorValue("r06.on_time_pct", "on time", Kind.RATIO, numerator, denominator, value, reason, "", "test")


def test_a_value_goes_on_the_wire_with_its_parts_and_period() -> None:
    event = to_payload(KEY, value(0.75, None), "d766-m766-2026.1", AT)
    assert event is not None
    assert (event.numerator, event.denominator, event.value) == (3, 4, 0.75)
    assert event.period_start == date(2026, 3, 1)
    assert event.period_end == date(2026, 3, 31)
    assert event.na_reason is None


def test_na_travels_with_its_reason_and_not_computed_does_not_travel() -> None:
    empty = to_payload(KEY, value(None, NaReason.EMPTY_DENOMINATOR, 0, 0), "v", AT)
    assert empty is not None
    assert empty.value is None
    assert empty.na_reason is not None
    assert empty.na_reason.value == "empty_denominator"
    assert to_payload(KEY, value(None, NaReason.NOT_COMPUTED), "v", AT) is None
    # a value and a reason at once is inconsistent: never published
    assert to_payload(KEY, value(0.5, NaReason.EMPTY_DENOMINATOR), "v", AT) is None


@pytest.fixture(scope="module")
def subscriber():
    path = Path(__file__).resolve().parents[2] / "examples" / "subscriber.py"
    spec = importlib.util.spec_from_file_location("chiso_example_subscriber", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("headers", "prefixes", "province", "expected"),
    [
        (
            {"ce_type": "vn.cchc.indicator.updated", "ce_unitcode": "00004", "ce_provincecode": "01"},
            ["000"],
            None,
            True,
        ),
        (
            {"ce_type": "vn.cchc.indicator.updated", "ce_unitcode": "00004", "ce_provincecode": "01"},
            ["001"],
            None,
            False,
        ),
        ({"ce_type": "vn.cchc.indicator.updated", "ce_unitcode": "00004", "ce_provincecode": "01"}, [], "79", False),
        ({"ce_type": "vn.cchc.indicator.updated", "ce_unitcode": "01", "ce_provincecode": "01"}, [], "01", True),
        ({"ce_type": "vn.cchc.dossier.received", "ce_unitcode": "00004", "ce_provincecode": "01"}, [], None, False),
    ],
)
def test_the_example_subscriber_filters_on_headers(subscriber, headers, prefixes, province, expected) -> None:
    assert subscriber.wanted(headers, prefixes, province) is expected
