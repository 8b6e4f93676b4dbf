"""The pure indicator functions of the scoring service: DOMAIN §11 known answers, the §5.2 scoring rule,
N/A instead of made-up values, and the shipped 766 configurations."""

from __future__ import annotations

import copy
from datetime import date

import pytest
import yaml

from contracts.scoring import NaReason as ContractNaReason
from services.scoring.configs import DEFAULT_VERSION, SHIPPED_DIR, load_configs
from services.scoring.domain.config import parse_config
from services.scoring.domain.indicators import (
    SPECS,
    NaReason,
    OpenCounts,
    band_of,
    compute,
    d766_score,
    points_for,
    total_of,
)
from services.scoring.domain.periods import PeriodKind, cutoff, period_end, period_start, periods_between

M766 = "d766-m766-2026.1"
TD = "d766-td-2024.1"


@pytest.fixture(scope="module")
def configs():
    return load_configs()


NOTHING_OPEN = OpenCounts()


def values(counters, open_counts=NOTHING_OPEN):
    return compute(list(SPECS), counters, open_counts)


# --- DOMAIN §11.4: 766 group points sum to the published total ------------------------------------------


@pytest.mark.parametrize(
    ("groups", "total", "band"),
    [
        # Quảng Nam 19/08/2024: CKMB, TDGQ, DVCTT, TTTT, MDHL, MDSH -> 80.1, "xếp loại Tốt"
        ([13.2, 18.4, 7.7, 7.6, 17.6, 15.6], 80.1, "Tốt"),
        # Quảng Trị 25/07/2025 (online incl. payment /22)
        ([15.4, 19.35, 9.03, 17.82, 16.05], 77.65, "Khá"),
        # Bắc Ninh (total computed by DOMAIN; 1st nationally)
        ([15.82, 19.45, 8.53, 10.00, 17.86, 21.17], 92.83, "Xuất sắc"),
    ],
)
def test_766_group_points_sum_to_the_published_totals(configs, groups, total, band) -> None:
    assert total_of(groups) == total
    assert band_of(total, configs[M766]) == band


def test_published_quang_nam_groups_fit_the_configured_group_maxima(configs) -> None:
    maxima = {g.dvcqg_key: g.max_points for g in configs[M766].groups}
    published = {"CKMB": 13.2, "TDGQ": 18.4, "CLGQ": 7.7, "TTTT": 7.6, "MDHL": 17.6, "MDSH": 15.6}
    assert set(published) == set(maxima)
    assert all(published[k] <= maxima[k] for k in published)
    assert maxima == {"CKMB": 18, "TDGQ": 20, "CLGQ": 12, "TTTT": 10, "MDSH": 22, "MDHL": 18}


def test_the_m766_allocation_fills_every_group_and_td_leaves_what_domain_lacks_unknown(configs) -> None:
    m766 = configs[M766]
    for group in m766.groups:  # DOMAIN §5.3: "Sum M766 = 22 ✓", "Sum = 18 ✓"
        assert sum(i.points or 0 for i in group.indicators) == group.max_points, group.key
    td = configs[TD]
    assert {i.key: i.points for g in td.groups for i in g.indicators if i.key.startswith("d766.3")} == {
        "d766.3_1": 2,
        "d766.3_2": 4,
        "d766.3_3": 6,
        "d766.3_5a": 2,
        "d766.3_5b": 2,
        "d766.3_6": 6,
    }
    assert all(i.points is None for i in next(g for g in td.groups if g.key == "mdhl").indicators)
    assert DEFAULT_VERSION == M766
    assert all(i.source for g in td.groups for i in g.indicators)


# --- DOMAIN §11.5: one-stop-shop ratios ------------------------------------------------------------------


def test_vinh_phuc_on_time_rate_is_96_55_percent() -> None:
    v = values({"r06.resolved.early": 19_000, "r06.resolved.on_time": 255, "r06.resolved.late": 689})
    rate = v["r06.on_time_rate"]
    assert (rate.numerator, rate.denominator, rate.value) == (19_255, 19_944, 0.9655)
    assert v["r06.resolved_late"].value == 689


@pytest.mark.parametrize(("online", "received", "share"), [(12_516, 56_039, 0.2233), (3_399, 26_030, 0.1306)])
def test_kon_tum_online_shares(online, received, share) -> None:
    # the article prints 13.05% for the commune level; 3,399 / 26,030 = 13.058% rounds to 13.06% (DOMAIN §11.5)
    assert values({"r06.received": received, "r06.received.online": online})["r06.online_share"].value == share


# --- the scoring rule and N/A ----------------------------------------------------------------------------


def test_points_follow_the_5_2_rule() -> None:
    assert points_for(0.85, 4, 0.8) == 4  # R >= T: full points
    assert points_for(0.6, 4, 0.8) == 3  # R x Pmax / T
    assert points_for(0.25, 6, 0.3) == 5  # TD's 3.6 threshold: not TD's constant 3*0.3
    assert points_for(0.9655, 20, None) == 19.31  # no target: R x Pmax


def test_an_empty_denominator_is_na_never_zero() -> None:
    v = values({})
    for key in ("r06.on_time_rate", "d766.2_1", "d766.3_6", "apology.rate"):
        assert v[key].value is None
        assert v[key].na_reason is NaReason.EMPTY_DENOMINATOR
    assert v["r06.received"].value == 0  # a count of nothing is 0, not N/A


def test_no_sync_event_makes_1_4_and_3_3_na_not_zero() -> None:
    v = values({"r06.received": 10, "r06.received.online": 4, "d766.3_3.online": 4})
    assert v["d766.1_4"].na_reason is NaReason.MISSING_REFERENCE_DATA
    assert v["d766.3_3"].value is None
    assert "d766.1_4" in v["d766.3_3"].detail
    synced = values({"r06.received": 10, "d766.3_3.online": 4, "d766.1_4.synced": 5})
    assert synced["d766.1_4"].value == 0.5
    assert synced["d766.3_3"].value == 0.2  # 4/10 x the 0.5 sync ratio (F766 3.3)


def test_766_2_1_counts_dossiers_still_open_within_time() -> None:
    counters = {"d766.2_1.resolved": 28, "d766.2_1.on_time": 24}
    v = values(counters, OpenCounts(within=1, overdue=0))["d766.2_1"]
    assert (v.numerator, v.denominator, v.value) == (25, 29, 0.8621)
    late = values(counters, OpenCounts(within=0, overdue=1))["d766.2_1"]
    assert (late.numerator, late.denominator) == (24, 29)


def test_distinct_procedures_for_3_5b() -> None:
    v = values(
        {
            "d766.3_5b.fee_tthc:2.000635": 3,
            "d766.3_5b.fee_tthc:2.000908": 2,
            "d766.3_5b.fee_tthc:1.001193": 0,
            "d766.3_5b.paid_tthc:2.000635": 2,
        }
    )["d766.3_5b"]
    assert (v.numerator, v.denominator, v.value) == (1, 2, 0.5)


def test_group_total_and_band_are_na_while_catalogue_indicators_are(configs) -> None:
    counters = {"d766.2_1.resolved": 10, "d766.2_1.on_time": 9, "r06.received": 10}
    score = d766_score(configs[M766], values(counters))
    assert score.total is None
    assert score.band is None
    groups = {g.key: g for g in score.groups}
    assert groups["tdgq"].points == 18  # 0.9 x 20, the only complete group
    assert groups["ckmb"].points is None
    assert "1.1: missing_reference_data" in groups["ckmb"].detail
    assert groups["mdhl"].points is None
    catalogue = next(s for s in groups["ckmb"].indicators if s.config.key == "d766.1_1")
    assert catalogue.value.value is None
    assert catalogue.points is None


def test_a_complete_configuration_gives_a_total_and_a_band(configs) -> None:
    data = yaml.safe_load((SHIPPED_DIR / "d766-m766-2026.yaml").read_text(encoding="utf-8"))
    # every indicator made computable from these counters: 2.1 for all the scored points
    for group in data["groups"]:
        group["indicators"] = [
            {**i, "computation": "d766.2_1", "target": None} if (i["points"] or 0) > 0 else i
            for i in group["indicators"]
        ]
    config = parse_config(data, frozenset(SPECS))
    score = d766_score(config, values({"d766.2_1.resolved": 100, "d766.2_1.on_time": 85}))
    assert score.total == 85
    assert score.band == "Tốt"
    assert sum(g.points or 0 for g in score.groups) == score.total


def test_a_configuration_that_over_allocates_a_group_or_names_an_unknown_formula_is_refused() -> None:
    data = yaml.safe_load((SHIPPED_DIR / "d766-m766-2026.yaml").read_text(encoding="utf-8"))
    over = copy.deepcopy(data)
    over["groups"][1]["indicators"][0]["points"] = 25
    with pytest.raises(ValueError, match="allocate"):
        parse_config(over, frozenset(SPECS))
    unknown = copy.deepcopy(data)
    unknown["groups"][1]["indicators"][0]["computation"] = "d766.9_9"
    with pytest.raises(ValueError, match="unknown computation"):
        parse_config(unknown, frozenset(SPECS))


def test_na_reasons_are_the_contract_s_plus_one() -> None:
    ours = {r.value for r in NaReason}
    contract = {r.value for r in ContractNaReason}
    assert ours - contract == {"not_computed"}
    assert ours & contract == {"empty_denominator", "missing_reference_data", "not_applicable"}


# --- periods ----------------------------------------------------------------------------------------------


def test_periods_of_a_day() -> None:
    day = date(2026, 5, 17)
    assert period_start(PeriodKind.MONTH, day) == date(2026, 5, 1)
    assert period_start(PeriodKind.QUARTER, day) == date(2026, 4, 1)
    assert period_start(PeriodKind.YEAR, day) == date(2026, 1, 1)
    assert period_end(PeriodKind.QUARTER, date(2026, 10, 1)) == date(2026, 12, 31)
    assert period_end(PeriodKind.MONTH, date(2028, 2, 1)) == date(2028, 2, 29)
    assert cutoff(PeriodKind.YEAR, date(2026, 1, 1)).isoformat() == "2027-01-01T00:00:00+07:00"
    assert periods_between(PeriodKind.QUARTER, date(2025, 11, 3), date(2026, 4, 1)) == [
        date(2025, 10, 1),
        date(2026, 1, 1),
        date(2026, 4, 1),
    ]
