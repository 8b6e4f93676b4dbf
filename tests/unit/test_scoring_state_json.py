"""The dossier projection's ``state`` writer (orjson) writes the same JSON value as the field-by-field writer it
replaced, for every kind of value a row can hold, and falls back to it where orjson would differ or fail."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, TypeAdapter

from services.scoring.domain.dossier import STATE_FIELDS, DossierRow, UnitStamp
from services.scoring.projections import _state_json, _state_json_by_field

UNIT = UnitStamp("00004", "01")
_PYDANTIC_INSTANT = TypeAdapter(AwareDatetime)

# offsets as payloads carry them (whole minutes, what pydantic accepts) and odd ones a stored state could hold
minutes = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
seconds = st.integers(-50_000, 50_000).map(lambda s: timezone(timedelta(seconds=s)))
aware = st.datetimes(timezones=st.one_of(minutes, seconds, st.just(UTC)))
# instants as the projection gets them: parsed by pydantic (its own tzinfo class; whole-minute offsets only)
parsed = st.datetimes(timezones=minutes).map(lambda d: _PYDANTIC_INSTANT.validate_json(json.dumps(d.isoformat())))
floats = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.text(),
    st.integers(-(2**70), 2**70),
    floats,
    aware,
    parsed,
)
apology = st.dictionaries(st.text(min_size=1), st.booleans(), max_size=5)


@st.composite
def rows(draw: st.DrawFn) -> DossierRow:
    values: dict[str, Any] = {}
    for name in STATE_FIELDS:
        if name == "dossier_id":
            values[name] = draw(st.text())
        elif name == "apology":
            values[name] = draw(st.one_of(st.none(), apology))
        else:
            values[name] = draw(scalars)
    return DossierRow(unit=UNIT, **values)


def same_json(a: str, b: str) -> bool:
    """Equal JSON values, key order included (NaN compared as itself)."""
    left, right = json.loads(a), json.loads(b)
    return list(left) == list(right) and all(
        x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        for x, y in zip(left.values(), right.values(), strict=True)
    )


@settings(max_examples=1000, deadline=None)
@given(row=rows())
def test_the_orjson_writer_writes_the_same_json_as_the_field_by_field_writer(row: DossierRow) -> None:
    fast, slow = _state_json(row), _state_json_by_field(row)
    assert same_json(fast, slow), (fast, slow)


@settings(max_examples=300, deadline=None)
@given(row=rows(), bad=st.sampled_from([math.nan, math.inf, -math.inf]), field=st.sampled_from(STATE_FIELDS[1:]))
def test_a_non_finite_float_is_written_by_the_field_by_field_writer(row: DossierRow, bad: float, field: str) -> None:
    changes: dict[str, Any] = {field: bad}
    odd = dataclasses.replace(row, **changes)
    assert _state_json(odd) == _state_json_by_field(odd)  # orjson would write null, silently


def test_the_cases_orjson_cannot_or_would_write_differently() -> None:
    base = DossierRow(dossier_id="D-1", unit=UNIT)
    odd_offset = datetime(2026, 3, 6, 15, 22, tzinfo=timezone(timedelta(hours=7, seconds=30)))
    cases = [
        dataclasses.replace(base, received_at=odd_offset),  # orjson would round the offset to +07:01
        dataclasses.replace(base, fee_vnd=2**64),  # beyond orjson's integers
        dataclasses.replace(base, apology={1: True}),  # type: ignore[dict-item]  # a non-string key
        dataclasses.replace(base, agency_code='Sở "Tư pháp" \\ Hà Nội \u2028'),
    ]
    for row in cases:
        assert same_json(_state_json(row), _state_json_by_field(row))
    assert '"+07:00:30"'[1:-1] in _state_json(cases[0])


def test_a_typical_row_is_written_byte_for_byte_as_before() -> None:
    at = datetime(2026, 3, 6, 15, 22, tzinfo=timezone(timedelta(hours=7)))
    row = DossierRow(
        dossier_id="B0000001",
        unit=UNIT,
        channel="direct",
        received_at=at,
        resolved_at=at + timedelta(days=2, microseconds=5),
        components=1,
        on_time_766=True,
        processing_working_hours=12.0,
    )
    assert _state_json(row) == _state_json_by_field(row)  # (a mapping differs only by the spaces json.dumps adds)
