"""The text forms the dossier projection stages (services.scoring.pg_text) read back on the real PostgreSQL as
exactly the values asyncpg's binary encoding stored before: timestamps, text, date and float arrays."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.scoring.pg_text import date_array, float_array, instant, text_array

pytestmark = pytest.mark.integration

# what PostgreSQL text can hold (no NUL), including what an array literal must escape
texts = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)))
offsets = st.one_of(
    st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
    st.integers(-50_000, 50_000).map(lambda s: timezone(timedelta(seconds=s))),
    st.just(UTC),
)
instants = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=offsets)
naive = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1))  # read as local time
days = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
floats = st.one_of(st.floats(), st.sampled_from([1.0, 12.75, -0.0, 1e-300, 5e-324, 1.7976931348623157e308]))

_SAME = """SELECT $1::text::timestamptz IS NOT DISTINCT FROM $2::timestamptz,
                  $3::text::text[] = $4::text[],
                  $5::text::date[] = $6::date[],
                  $7::text::float8[]::text = $8::float8[]::text"""


@pytest.fixture
async def conn(fresh_database: str):
    connection = await asyncpg.connect(fresh_database)
    await connection.execute("SET TimeZone = 'America/Los_Angeles'; SET DateStyle = 'SQL, DMY'")  # not UTC, not ISO
    try:
        yield connection
    finally:
        await connection.close()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    at=st.one_of(st.none(), instants, naive, st.sampled_from([datetime.max, datetime.min])),
    keys=st.lists(texts, max_size=12),
    on=st.lists(days, max_size=12),
    values=st.lists(floats, max_size=12),
)
async def test_text_forms_read_back_as_the_binary_values(
    conn: asyncpg.Connection, at: datetime | None, keys: list[str], on: list[date], values: list[float]
) -> None:
    row = await conn.fetchrow(
        _SAME, instant(at), at, text_array(keys), keys, date_array(on), on, float_array(values), values
    )
    assert tuple(row) == (True, True, True, True), (at, keys, on, values)


async def test_the_edge_cases_by_name(conn: asyncpg.Connection) -> None:
    odd = datetime(2026, 3, 6, 15, 22, 0, 123456, tzinfo=timezone(timedelta(hours=7, seconds=30)))
    nasty = [
        "",
        "NULL",
        "null",
        'a "quoted" one',
        "back\\slash",
        "{braces}",
        "com,ma",
        " spaced ",
        "d766.3_5b.fee_tthc:1.0",
    ]
    specials = [math.inf, -math.inf, math.nan, -0.0]
    row = await conn.fetchrow(
        _SAME, instant(odd), odd, text_array(nasty), nasty, date_array([]), [], float_array(specials), specials
    )
    assert tuple(row) == (True, True, True, True)
    assert await conn.fetchval("SELECT $1::text::text[]", text_array([])) == []
    assert await conn.fetchval("SELECT $1::text::text[]", text_array(nasty)) == nasty
