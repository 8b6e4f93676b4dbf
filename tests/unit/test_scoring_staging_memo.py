"""The dossier projection's memo of array texts gives exactly what the text functions build."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring import projections
from services.scoring.pg_text import date_array, text_array

_keys = st.lists(st.sampled_from(["r06.received", 'a"b', "c\\d", "NULL", "x,y", "", "{}"]) | st.text(), max_size=6)
_days = st.lists(st.sampled_from([date.min, date.max, date(2026, 3, 1)]) | st.dates(), max_size=6)


@settings(max_examples=300)
@given(st.lists(st.tuples(_keys, _days), min_size=1, max_size=20))
def test_a_memoised_text_is_the_text_the_function_builds(rows: list[tuple[list[str], list[date]]]) -> None:
    for keys, days in rows + rows:  # every tuple a second time: a hit must give the same text as a miss
        k, d = tuple(keys), tuple(days)
        assert projections._memo_text(projections._keys_text, text_array, k) == text_array(k)
        assert projections._memo_text(projections._days_text, date_array, d) == date_array(d)


def test_the_memo_stays_bounded() -> None:
    memo: dict[tuple[str, ...], str] = {}
    for i in range(projections._MEMO_SIZE + 10):
        assert projections._memo_text(memo, text_array, (str(i),)) == text_array((str(i),))
    assert len(memo) <= projections._MEMO_SIZE
