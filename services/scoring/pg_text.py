"""PostgreSQL text forms of the values the dossier projection stages (timestamps, arrays), built in Python.

Why: asyncpg's binary COPY encodes a ``timestamptz`` through Python-level calls and an array element by element
with a type check each; for the projection's rows (three timestamps and three arrays of about ten elements each)
that cost ≈ 40 µs per row, more than all the rest of the row. Staged as text, the same values are parsed by
PostgreSQL's own input functions in C (the ``INSERT ... SELECT`` casts them), and building the text here costs a
few µs. Each function returns exactly what PostgreSQL reads back as the value given
(``tests/integration/test_scoring_pg_text.py`` compares them with asyncpg's binary encoding on the real server).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

__all__ = ["date_array", "float_array", "instant", "text_array"]


def instant(value: datetime | None) -> str | None:
    """A ``timestamptz`` input: ISO 8601 with its UTC offset (microseconds and second offsets kept).

    A naive value (the projection's rows hold none: payload instants are validated as aware) is read as
    local time, as asyncpg's binary encoder does, not in the session's time zone.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        if value == datetime.max or value == datetime.min:  # noqa: PLR1714 - asyncpg's own infinity markers
            return "infinity" if value == datetime.max else "-infinity"
        value = value.astimezone(UTC)
    return value.isoformat()


def text_array(items: Sequence[str]) -> str:
    """A ``text[]`` input: every element double-quoted (so commas, braces, spaces and ``NULL`` stay text)."""
    joined = '","'.join(items)
    if '"' in joined or "\\" in joined:  # rare: escape element by element
        joined = '","'.join(i.replace("\\", "\\\\").replace('"', '\\"') for i in items)
    return '{"' + joined + '"}' if items else "{}"


def date_array(days: Sequence[date]) -> str:
    """A ``date[]`` input (ISO dates, which every ``DateStyle`` reads the same way).

    ``date.min`` and ``date.max`` are written as -infinity and infinity, as asyncpg's binary encoder does.
    """
    return "{" + ",".join(map(_day, days)) + "}"


def _day(value: date) -> str:
    if value == date.max:
        return "infinity"
    if value == date.min:
        return "-infinity"
    return value.isoformat()


def float_array(values: Sequence[float]) -> str:
    """A ``float8[]`` input: ``repr`` is the shortest text that reads back as the same double (also inf, nan)."""
    return "{" + ",".join(map(repr, values)) + "}"
