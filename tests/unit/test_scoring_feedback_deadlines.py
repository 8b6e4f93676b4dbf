"""The next deadline of a PAKN (F766 5.2, working days of the national calendar): the instant from which it is
late with no new event, per state, and that :func:`judge` agrees with it on either side."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from eventkit.worktime import WorkingCalendar
from services.scoring.domain.feedback import Pakn, judge, next_deadline

VN = timezone(timedelta(hours=7))
CAL = WorkingCalendar.load()
MON = datetime(2026, 3, 2, 9, tzinfo=VN)  # Monday; no holiday in March 2026
SECOND = timedelta(seconds=1)


def pakn(**kw: object) -> Pakn:
    base: dict[str, object] = {"feedback_id": "P", "unitcode": "00004", "category": "regulation", "received_at": MON}
    base.update(kw)
    return Pakn(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "due"),
    [
        # in progress: 15 working days after receipt (Mon 23/3 09:00), one working second past it
        ({}, datetime(2026, 3, 23, 9, tzinfo=VN) + SECOND),
        # a supplement request neither pauses the clock nor sets a deadline of its own
        ({"supplement_at": MON + timedelta(days=1)}, datetime(2026, 3, 23, 9, tzinfo=VN) + SECOND),
        # "chờ công khai" Mon 9/3 09:00, not published: 2 working days later
        ({"awaiting_publication_at": MON + timedelta(days=7)}, datetime(2026, 3, 11, 9, tzinfo=VN) + SECOND),
        # refused after "chờ công khai": still handled first, publication still due
        (
            {"awaiting_publication_at": MON + timedelta(days=7), "rejected_at": MON + timedelta(days=8)},
            datetime(2026, 3, 11, 9, tzinfo=VN) + SECOND,
        ),
        # finished: refused, published, or published after "chờ công khai" — nothing turns late any more
        ({"rejected_at": MON + timedelta(days=1)}, None),
        ({"published_at": MON + timedelta(days=3)}, None),
        ({"awaiting_publication_at": MON + timedelta(days=3), "published_at": MON + timedelta(days=4)}, None),
        # already late when published: no deadline is ahead either
        ({"published_at": MON + timedelta(days=30)}, None),
    ],
)
def test_the_next_deadline_per_state(facts: dict[str, object], due: datetime | None) -> None:
    assert next_deadline(pakn(**facts), CAL) == due


def test_a_limit_that_ends_at_a_close_turns_late_at_the_next_opening() -> None:
    # received Mon 2/3 07:00: 15 working days end Fri 20/3 17:00, equal in working time to Mon 23/3 07:00
    p = pakn(received_at=datetime(2026, 3, 2, 7, tzinfo=VN))
    due = next_deadline(p, CAL)
    assert due == datetime(2026, 3, 23, 7, tzinfo=VN) + SECOND
    assert judge(p, datetime(2026, 3, 22, 12, tzinfo=VN), CAL).on_time  # the weekend: still on time
    assert not judge(p, due, CAL).on_time


@pytest.mark.parametrize("hours", [0, 1.5, 4, 5.25, 8, 30, 24 * 7 + 3])
@pytest.mark.parametrize("awaiting", [False, True])
def test_judge_turns_late_exactly_at_the_deadline(hours: float, awaiting: bool) -> None:
    # receipts at all times of day and week, a weekend and a holiday (30/4, 1/5) among them
    received = datetime(2026, 4, 24, 6, 45, tzinfo=VN) + timedelta(hours=hours)
    facts: dict[str, object] = {"received_at": received}
    if awaiting:
        facts["awaiting_publication_at"] = received + timedelta(days=2)
    p = pakn(**facts)
    due = next_deadline(p, CAL)
    assert due is not None
    assert not judge(p, due, CAL).on_time
    assert judge(p, due - 2 * SECOND, CAL).on_time
