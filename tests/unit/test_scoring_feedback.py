"""766 group 5 from PAKN and ratings (DOMAIN §5.3): the F766 deadlines in working days, the four indicators on
a hand-computed commune month, N/A where an input is missing, and the group's points under both versions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from eventkit.worktime import WorkingCalendar
from services.scoring.configs import load_configs
from services.scoring.domain.feedback import Pakn, RatingRow, Window, group5, judge, sides
from services.scoring.domain.indicators import SPECS, IndicatorValue, Kind, NaReason, OpenCounts, compute, d766_score
from services.scoring.outside_values import needs_outside_values

VN = timezone(timedelta(hours=7))
CAL = WorkingCalendar.load()
MON = datetime(2026, 3, 2, 9, tzinfo=VN)  # Monday; no holiday in March 2026
MARCH = Window(datetime(2026, 3, 1, tzinfo=VN), datetime(2026, 4, 1, tzinfo=VN))
CONFIGS = load_configs()


def pakn(fid: str, **kw: object) -> Pakn:
    base: dict[str, object] = {"feedback_id": fid, "unitcode": "00004", "category": "regulation", "received_at": MON}
    base.update(kw)
    return Pakn(**base)  # type: ignore[arg-type]


def d21(num: float, den: float) -> IndicatorValue:
    return IndicatorValue("d766.2_1", "2.1", Kind.RATIO, num, den, num / den if den else None, None, "", "")


@pytest.mark.parametrize(
    ("facts", "cut", "finished", "on_time", "late"),
    [
        ({"rejected_at": MON + timedelta(days=2)}, MARCH.cut, True, True, ()),  # Wed 09:00: exactly 2 WD
        ({"rejected_at": MON + timedelta(days=2, hours=1)}, MARCH.cut, True, False, ("reject",)),
        (
            {"supplement_at": MON + timedelta(days=8), "published_at": MON + timedelta(days=9)},
            MARCH.cut,
            True,
            False,
            ("supplement",),
        ),  # Tue 10/3 = 6 WD after receipt
        # Mon 23/3 09:00 = 15 WD, published a day later
        (
            {"awaiting_publication_at": MON + timedelta(days=21), "published_at": MON + timedelta(days=22)},
            MARCH.cut,
            True,
            True,
            (),
        ),
        ({"published_at": MON + timedelta(days=21, hours=1)}, MARCH.cut, True, False, ("handle",)),
        # handled on time but still unpublished 2 working days after "chờ công khai" at the cut-off
        ({"awaiting_publication_at": MON + timedelta(days=7)}, MARCH.cut, True, False, ("publish",)),
        ({"awaiting_publication_at": MON + timedelta(days=7)}, MON + timedelta(days=8), True, True, ()),
        ({}, MON + timedelta(days=21), False, True, ()),  # in progress, 15 WD exactly
        ({}, MON + timedelta(days=21, hours=1), False, False, ("handle",)),  # in progress past 15 WD
        # a refusal after the cut-off is not seen: in progress at the cut
        ({"rejected_at": MON + timedelta(days=20)}, MON + timedelta(days=3), False, True, ()),
    ],
)
def test_the_f766_deadlines_in_working_days(
    facts: dict[str, datetime], cut: datetime, finished: bool, on_time: bool, late: tuple[str, ...]
) -> None:
    verdict = judge(pakn("P", **facts), cut, CAL)
    assert (verdict.finished, verdict.on_time, verdict.late_steps) == (finished, on_time, late)


def test_a_hand_computed_commune_month() -> None:
    items = [
        # A: regulation, handled and published on time
        pakn("A", awaiting_publication_at=MON + timedelta(days=3), published_at=MON + timedelta(days=4)),
        # B: conduct, refused late (3 WD)
        pakn("B", category="official_conduct", rejected_at=MON + timedelta(days=3)),
        # C: regulation, handled on time, published, more dislikes than likes
        pakn(
            "C",
            dossier_id="X",
            awaiting_publication_at=MON + timedelta(days=1),
            published_at=MON + timedelta(days=1),
            likes=1,
            dislikes=3,
            likes_at=MON + timedelta(days=5),
        ),
        # D: regulation, handled on time, but E (received later in March) complains about its result
        pakn(
            "D",
            category="official_conduct",
            published_at=MON + timedelta(days=2),
            followed_up_at=MON + timedelta(days=10),
        ),
        pakn("E", received_at=MON + timedelta(days=10), follows_up="D"),  # in progress, within time at the cut
        # F: February, in progress at the start of March and past 15 WD by its end: measured by 5.2 only
        pakn("F", received_at=datetime(2026, 2, 20, 9, tzinfo=VN)),
        # G: February, handled in February: not seen by March at all
        pakn("G", received_at=datetime(2026, 2, 2, 9, tzinfo=VN), published_at=datetime(2026, 2, 3, 9, tzinfo=VN)),
    ]
    ratings = [
        RatingRow("X", "00004", MON + timedelta(days=6), "dissatisfied"),  # same dossier as C's PAKN: once
        RatingRow("Y", "00004", MON + timedelta(days=6), "dislike"),
        RatingRow("Z", "00004", MON + timedelta(days=6), "very_satisfied"),
        RatingRow("W", "00004", datetime(2026, 4, 2, tzinfo=VN), "dislike"),  # April: not in March
    ]
    values = group5(items, ratings, MARCH, CAL, d21(8, 10))
    v51, v52, v53, v54 = (values[k] for k in ("d766.5_1", "d766.5_2", "d766.5_3", "d766.5_4"))
    assert (v51.numerator, v51.denominator, v51.value) == (3, 5, 0.6)  # A, C, E of A..E
    # measured: A..E (handled in March or in progress) + F (in progress); on time: A, C, D, E
    assert (v52.numerator, v52.denominator, v52.value) == (4, 6, 0.6667)
    # received A..E; unsatisfied: B (overdue), C (dislikes), D (followed up) -> 2 of 5
    assert (v53.numerator, v53.denominator, v53.value) == (2, 5, 0.4)
    # base 10 dossiers of 2.1, 2 overdue, complaints on X and Y -> (10 - 2 - 2) / 10
    assert (v54.numerator, v54.denominator, v54.value) == (6, 10, 0.6)
    s = sides(items, ratings, MARCH, CAL)
    assert s.complaints == ("X", "Y")
    assert [p.feedback_id for p in s.measured] == ["F", "A", "B", "C", "D", "E"]


def test_na_where_an_input_is_missing() -> None:
    nothing = group5([], [], MARCH, CAL, d21(8, 10))
    for key in ("d766.5_1", "d766.5_2", "d766.5_3"):
        assert nothing[key].value is None
        assert nothing[key].na_reason is NaReason.EMPTY_DENOMINATOR
    # no rating and no PAKN at all: a system that forwards none cannot be told from one without complaints
    assert nothing["d766.5_4"].na_reason is NaReason.MISSING_REFERENCE_DATA
    rated = group5([], [RatingRow("Z", "00004", MON, "satisfied")], MARCH, CAL, d21(8, 10))
    assert rated["d766.5_4"].value == 0.8  # one rating, no complaint: only the overdue rate is deducted
    no_dossiers = group5([], [RatingRow("Z", "00004", MON, "satisfied")], MARCH, CAL, d21(0, 0))
    assert no_dossiers["d766.5_4"].na_reason is NaReason.EMPTY_DENOMINATOR
    assert group5([], [RatingRow("Z", "00004", MON, "satisfied")], MARCH, CAL, None)["d766.5_4"].value is None


def test_5_4_is_floored_at_zero_and_says_so() -> None:
    ratings = [RatingRow(f"D{i}", "00004", MON, "dislike") for i in range(5)]
    v = group5([], ratings, MARCH, CAL, d21(1, 4))["d766.5_4"]
    assert (v.numerator, v.denominator, v.value) == (4 - 3 - 5, 4, 0.0)
    assert "floored" in v.detail


def test_group_5_points_under_both_configurations() -> None:
    items = [pakn("A", published_at=MON + timedelta(days=1))]
    values = dict(compute(list(SPECS), {"d766.2_1.resolved": 10, "d766.2_1.on_time": 9}, OpenCounts()))
    values.update(group5(items, [RatingRow("X", "00004", MON, "dislike")], MARCH, CAL, values["d766.2_1"]))
    m766 = d766_score(CONFIGS["d766-m766-2026.1"], values)
    mdhl = next(g for g in m766.groups if g.key == "mdhl")
    points = {s.config.key: s.points for s in mdhl.indicators}
    # 5.2 = 1/1 -> 6; 5.3 = 1/1 -> 6; 5.4 = (10 - 1 - 1)/10 = 0.8 < target 0.9 -> 0.8 x 6 / 0.9 = 5.33
    assert points == {"d766.5_1": 0.0, "d766.5_2": 6.0, "d766.5_3": 6.0, "d766.5_4": 5.33, "d766.5_simplification": 0.0}
    assert mdhl.points == 17.33
    td = d766_score(CONFIGS["d766-td-2024.1"], values)
    td_group = next(g for g in td.groups if g.key == "mdhl")
    assert td_group.points is None  # TD's group-5 allocation is not in DOMAIN: never guessed
    assert [s.value.value for s in td_group.indicators] == [1.0, 1.0, 0.8]


def test_which_outside_values_a_table_or_series_needs() -> None:
    m766 = CONFIGS["d766-m766-2026.1"]
    assert needs_outside_values("d766.2_1", m766) == (False, False)  # counters only: no extra query
    assert needs_outside_values("r06.on_time_rate", m766) == (False, False)
    assert needs_outside_values("d766.3_1", m766) == (True, False)
    assert needs_outside_values("d766.5_3", m766) == (False, True)
    assert needs_outside_values("d766.group.mdhl", m766) == (False, True)
    assert needs_outside_values("d766.group.clgq", m766) == (True, False)
    assert needs_outside_values("d766.total", m766) == (True, True)
    assert needs_outside_values(None, m766) == (True, True)
    # 5.1 is not in the TD version, but its value is still group 5
    assert needs_outside_values("d766.5_1", CONFIGS["d766-td-2024.1"]) == (False, True)
