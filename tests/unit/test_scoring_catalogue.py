"""The TTHC catalogue: row validation (field, value, rule), versions by effective date, and the
catalogue-dependent Decision 766 indicators with hand-computed answers."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.scoring.catalogue import read_rows
from services.scoring.configs import load_configs
from services.scoring.domain.catalogue import (
    Catalogue,
    Procedure,
    TthcDay,
    catalogue_values,
    levels_for_scope,
    validate_rows,
)
from services.scoring.domain.indicators import SPECS, IndicatorValue, Kind, NaReason, OpenCounts, compute, d766_score

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "catalogue"
GOOD = {
    "ma_tthc": "1.001193",
    "name": "x",
    "level": "xã",
    "statutory_time_value": "1",
    "statutory_time_unit": "ngày làm việc",
    "online_level": "một phần",
    "has_fee": "false",
    "requires_paper_result": "true",
    "eligible_full_online": "true",
    "decision_no": "QĐ 1",
    "decision_date": "2024-01-10",
    "effective_from": "2024-01-15",
}


def proc(ma: str, online: str = "partial", **kw: object) -> Procedure:
    base: dict[str, object] = {
        "ma_tthc": ma,
        "name": ma,
        "level": "commune",
        "statutory_time_value": 1.0,
        "statutory_time_unit": "working_days",
        "online_level": online,
        "has_fee": False,
        "requires_paper_result": True,
        "eligible_full_online": online == "full",
        "decision_no": "QĐ",
        "decision_date": date(2024, 1, 1),
        "effective_from": date(2024, 1, 1),
    }
    base.update(kw)
    return Procedure(**base)  # type: ignore[arg-type]


def test_a_good_row_is_parsed_and_normalised() -> None:
    accepted, rejected = validate_rows([GOOD])
    assert rejected == []
    p = accepted[0]
    assert (p.level, p.online_level, p.statutory_time_unit) == ("commune", "partial", "working_days")
    assert (p.has_fee, p.requires_paper_result, p.eligible_full_online) == (False, True, True)
    assert p.effective_from == date(2024, 1, 15)


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("ma_tthc", "1001193", "TTHC code"),
        ("level", "thôn", "one of"),
        ("statutory_time_value", "abc", "a number"),
        ("statutory_time_value", "0", "greater than 0"),
        ("statutory_time_unit", "tuần", "giờ"),
        ("online_level", "mức 4", "toàn trình"),
        ("has_fee", "maybe", "true | false"),
        ("decision_no", "", "required"),
        ("effective_from", "15/01/2024", "YYYY-MM-DD"),
    ],
)
def test_a_bad_row_is_rejected_with_field_value_and_rule(field: str, value: str, rule: str) -> None:
    accepted, rejected = validate_rows([GOOD, {**GOOD, field: value}])
    assert len(accepted) == 1
    assert len(rejected) == 1
    r = rejected[0]
    assert (r.line, r.field, r.value) == (3, field, value)
    assert rule in r.rule


def test_full_online_requires_eligibility_and_versions_are_unique() -> None:
    rows = [
        {**GOOD, "online_level": "toàn trình", "eligible_full_online": "false"},
        GOOD,
        {**GOOD, "name": "again"},
    ]
    accepted, rejected = validate_rows(rows, first_line=1)
    assert [p.name for p in accepted] == ["x"]
    assert [(r.line, r.field) for r in rejected] == [(1, "eligible_full_online"), (3, "effective_from")]
    assert "duplicate of line 2" in rejected[1].rule


def test_shipped_examples() -> None:
    rows, first = read_rows(EXAMPLES / "tthc-example.csv")
    accepted, rejected = validate_rows(rows, first)
    assert rejected == []
    assert len({p.ma_tthc for p in accepted}) == 6
    assert all("ILLUSTRATIVE" in p.name for p in accepted)
    rows, first = read_rows(EXAMPLES / "bad-rows.csv")
    accepted, rejected = validate_rows(rows, first)
    assert accepted == []
    assert [r.field for r in rejected] == [
        "ma_tthc",
        "level",
        "statutory_time_unit",
        "eligible_full_online",
        "effective_from",
    ]


def test_the_version_in_force_on_a_day() -> None:
    old = proc("1.001193", "partial", effective_from=date(2024, 1, 15))
    new = proc("1.001193", "full", effective_from=date(2025, 7, 1))
    cat = Catalogue([new, old])
    assert cat.in_force("1.001193", date(2024, 1, 14)) is None
    assert cat.in_force("1.001193", date(2024, 1, 15)) is old
    assert cat.in_force("1.001193", date(2025, 6, 30)) is old
    assert cat.in_force("1.001193", date(2025, 7, 1)) is new
    assert cat.in_force("9.999999", date(2025, 7, 1)) is None
    assert not Catalogue([])


def test_levels_of_scopes() -> None:
    assert levels_for_scope("00004") == {"commune"}
    assert levels_for_scope("01") == {"province", "commune"}
    assert levels_for_scope("001") == {"district", "commune"}


SYNC = IndicatorValue("d766.1_4", "sync", Kind.RATIO, 9, 10, 0.9, None, "", "")
DAY = date(2026, 3, 5)


def catalogue() -> Catalogue:
    return Catalogue(
        [
            proc("1.000001", "full", eligible_full_online=True, has_fee=True, subject="công dân"),
            proc("1.000002", "partial", eligible_full_online=True, requires_paper_result=False, subject="công dân"),
            proc("1.000003", "none", has_fee=True, subject="doanh nghiệp"),
            proc("1.000004", "partial", subject="công dân"),
            proc("1.000005", "full", eligible_full_online=True, level="province"),  # not a commune's
            proc("1.000006", "partial", effective_from=date(2026, 4, 1)),  # not yet in force
        ]
    )


ROWS = [
    TthcDay("1.000001", DAY, received=4, online=3, online_result_ok=2, fee_synced=1, vneid=1),
    TthcDay("1.000002", DAY, received=5, online=2, online_result_ok=0),
    TthcDay("1.000003", DAY, received=1, online=0, fee_synced=0, vneid=1),
    TthcDay("9.999999", DAY, received=2, online=2, online_result_ok=1),  # not in the catalogue
]


def test_catalogue_indicators_known_answers() -> None:
    v = catalogue_values(catalogue(), frozenset({"commune"}), date(2026, 3, 31), ROWS, SYNC)
    # 3.1: commune TTHC in force 31/03: 1..4 (4); with DVCTT: 1, 2, 4 -> 3/4
    assert (v["d766.3_1"].numerator, v["d766.3_1"].denominator, v["d766.3_1"].value) == (3, 4, 0.75)
    # 3.1 sub-ratio: eligible 1, 2; toàn trình 1 -> 1/2
    assert v["d766.3_1_full"].value == 0.5
    # 3.2: DVC = 1, 2, 4; with an online dossier: 1, 2 -> 2/3
    assert (v["d766.3_2"].numerator, v["d766.3_2"].denominator) == (2, 3)
    # full online: online dossiers of toàn trình TTHC (1: 3) / dossiers of eligible TTHC (1: 4 + 2: 5)
    assert (v["d766.3_full_online"].numerator, v["d766.3_full_online"].denominator) == (3, 9)
    # 3.3: 1 requires paper -> 2 ok; 2 does not -> all 2 online; 3: 0; uncatalogued -> assumption 1 => 5 / 12
    # times the sync ratio 0.9
    v33 = v["d766.3_3"]
    assert (v33.numerator, v33.denominator, v33.value) == (5, 12, round(5 / 12 * 0.9, 4))
    assert "2 dossier(s) of TTHC not in the catalogue" in v33.detail
    # 3.5a: fee TTHC 1, 3; with a synced fee dossier: 1 -> 1/2
    assert v["d766.3_5a"].value == 0.5
    # 4.5a: citizen TTHC 1, 2, 4; with a VNeID dossier: 1 -> 1/3
    assert (v["d766.4_5a"].numerator, v["d766.4_5a"].denominator) == (1, 3)


def test_no_catalogue_no_values_and_na_inputs_stay_na() -> None:
    assert catalogue_values(Catalogue([]), frozenset({"commune"}), DAY, ROWS, SYNC) == {}
    missing = IndicatorValue("d766.1_4", "s", Kind.RATIO, 0, 10, None, NaReason.MISSING_REFERENCE_DATA, "no log", "")
    v = catalogue_values(catalogue(), frozenset({"commune"}), DAY, ROWS, missing)
    assert v["d766.3_3"].value is None
    assert v["d766.3_3"].na_reason is NaReason.MISSING_REFERENCE_DATA
    no_subject = Catalogue([proc("1.000001", "full", eligible_full_online=True)])
    v = catalogue_values(no_subject, frozenset({"commune"}), DAY, [], SYNC)
    assert v["d766.4_5a"].na_reason is NaReason.MISSING_REFERENCE_DATA
    assert v["d766.3_2"].value == 0.0  # one DVC, no online dossier: 0/1, a real zero
    assert v["d766.3_full_online"].na_reason is NaReason.EMPTY_DENOMINATOR


def test_catalogue_values_feed_the_766_score() -> None:
    cfg = load_configs()["d766-m766-2026.1"]
    base = compute(list(SPECS), {"r06.received": 10, "r06.received.online": 5}, OpenCounts())
    without = d766_score(cfg, base)
    clgq = next(g for g in without.groups if g.key == "clgq")
    assert clgq.points is None
    assert "d766.3_full_online" in {
        s.config.key for s in clgq.indicators if s.value.na_reason is NaReason.MISSING_REFERENCE_DATA
    }
    values = dict(base)
    values.update(catalogue_values(catalogue(), frozenset({"commune"}), date(2026, 3, 31), ROWS, SYNC))
    scored = d766_score(cfg, values)
    clgq = next(g for g in scored.groups if g.key == "clgq")
    full = next(s for s in clgq.indicators if s.config.key == "d766.3_full_online")
    assert full.value.value == round(3 / 9, 4)
    assert full.points == round(3 / 9 * 12, 2)  # no target: R x Pmax (DOMAIN §5.2 [I])
    assert clgq.points is not None  # 3.1-3.3 score 0 points in M766, row 7 is the 12
