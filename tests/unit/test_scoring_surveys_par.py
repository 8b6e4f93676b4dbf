"""Pure computations of the scoring service's survey, PAPI, PAR and target indicators: known answers
(DOMAIN §7.3, §8.2, §11.1, §11.2, §6.2), intervals, and N/A instead of made-up values."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import yaml

from services.scoring.configs import load_aggregators, load_par_trees, load_target_map
from services.scoring.domain.papi import validate_rows
from services.scoring.domain.par import Assessment, Metric, ParTree, rank, score_par
from services.scoring.domain.periods import PeriodKind
from services.scoring.domain.programme import plan_values, survey_blocks, survey_values
from services.scoring.domain.surveys import Aggregator, aggregate, count_answers, mean_interval, wilson
from services.scoring.domain.targets import compare, mapping_for, period_of
from services.scoring.papi import read_rows

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "papi"
SIPAS_2017 = ("sipas-service", "QĐ2640-2017")
SIPAS_2023 = ("sipas-service", "QĐ1001-2023")
PROXY = ("citizen-experience", "chiso-2025.1")


@pytest.fixture(scope="module")
def aggs():
    return load_aggregators()


def by_key(values):
    return {v.key: v for v in values}


# --- intervals ---------------------------------------------------------------------------------------------


def test_wilson_known_answers() -> None:
    assert tuple(round(x, 4) for x in wilson(8, 10)) == (0.4902, 0.9433)  # the textbook 8/10 case
    low, high = wilson(0, 20)
    assert low == 0.0
    assert round(high, 4) == 0.1611  # stays informative at 0%, unlike the normal interval (0, 0)
    assert wilson(20, 20)[1] == 1.0


def test_mean_interval_uses_the_mean_of_the_standard_errors() -> None:
    mean, low, high = mean_interval([(0.5, 100), (0.9, 100)])
    assert mean == pytest.approx(0.7)
    se = (0.05 + 0.03) / 2  # sqrt(.25/100), sqrt(.09/100)
    assert (low, high) == pytest.approx((0.7 - 1.959964 * se, 0.7 + 1.959964 * se), abs=1e-6)


# --- SIPAS ---------------------------------------------------------------------------------------------------


def responses_2017() -> Counter[str]:
    """Ten hand-made responses: per element satisfaction points and judgements, and expectations."""
    sat = {
        "access": [5, 4, 4, 3, 2, 5, 4, 4, 1, 5],  # 7 positive
        "procedure": [4, 4, 4, 4, 4, 4, 4, 4, 3, 3],  # 8
        "civil_servant": [5, 5, 5, 5, 5, 2, 2, 2, 2, 2],  # 5
        "result": [4, 4, 4, 4, 4, 4, 4, 4, 4, 4],  # 10
        "feedback": [5, 1, None, None, None, None, None, None, None, None],  # 1 of 2 answered
    }
    total: Counter[str] = Counter()
    for i in range(10):
        answers: list[tuple[str, int | str | tuple[str, ...]]] = []
        for element, points in sat.items():
            if points[i] is not None:
                answers.append((f"{element}.satisfaction", points[i]))
        answers.append(("access.waiting_area_sufficient", 1 if i < 6 else 2))  # 6 of 10 agree
        answers.append(("access.equipment_modern", 1 if i < 9 else 2))  # 9 of 10
        if i < 4:
            answers.append(("expectations", ("staff_attitude", "staff_capacity") if i < 3 else ("staff_attitude",)))
        total.update(count_answers(answers, weighted=i == 0))
    return total


def test_sipas_2017_known_answer(aggs) -> None:
    values = by_key(aggregate(aggs[SIPAS_2017], responses_2017()))
    assert values["sipas.responses"].value == 10
    got = {
        e: (values[f"sipas.{e}.satisfaction"].numerator, values[f"sipas.{e}.satisfaction"].n)
        for e in ("access", "procedure", "civil_servant", "result", "feedback")
    }
    assert got == {
        "access": (7, 10),
        "procedure": (8, 10),
        "civil_servant": (5, 10),
        "result": (10, 10),
        "feedback": (1, 2),
    }
    assert values["sipas.access.satisfaction"].value == 0.7
    assert (values["sipas.access.satisfaction"].ci_low, values["sipas.access.satisfaction"].ci_high) == (0.3968, 0.8922)
    # judgements pooled over the element's items: 6 + 9 of 20
    assert (values["sipas.access.judgement"].numerator, values["sipas.access.judgement"].n) == (15, 20)
    # DOMAIN §7.3: SIPAS_service (2017) = mean of S_e = (0.7 + 0.8 + 0.5 + 1.0 + 0.5) / 5
    index = values["sipas.index"]
    assert index.value == 0.7
    assert index.ci_low is not None
    assert index.ci_high is not None
    assert index.ci_low < 0.7 < index.ci_high
    assert index.n == 2  # the smallest element n
    # expectations: share of all respondents
    assert values["sipas.expectation.staff_attitude"].value == 0.4
    assert values["sipas.expectation.staff_capacity"].value == 0.3
    assert values["sipas.expectation.access"].value == 0.0
    assert "1 carry a weight" in values["sipas.responses"].detail


def test_no_answers_is_na_never_zero(aggs) -> None:
    counters = responses_2017()
    for key in [k for k in counters if k.startswith("item:feedback.")]:
        del counters[key]
    values = by_key(aggregate(aggs[SIPAS_2017], counters))
    assert values["sipas.feedback.satisfaction"].value is None
    assert values["sipas.feedback.satisfaction"].na_reason == "empty_denominator"
    assert values["sipas.feedback.satisfaction"].n == 0
    assert values["sipas.index"].value is None  # the mean needs every element
    assert "sipas.feedback.satisfaction" in values["sipas.index"].detail
    nothing = by_key(aggregate(aggs[SIPAS_2023], {}))
    assert all(v.value is None for k, v in nothing.items() if k != "sipas.responses")


def test_the_2023_index_is_labelled_as_not_the_national_headline(aggs) -> None:
    agg = aggs[SIPAS_2023]
    assert agg.index is not None
    assert "NOT the national headline" in agg.index.label
    # same answers, same element means: the aggregator, not the instrument, decides the index
    values = by_key(aggregate(agg, responses_2017()))
    assert values["sipas.index"].value == 0.7


def test_papi_proxy_is_labelled_proxy_and_excludes_dont_know(aggs) -> None:
    agg = aggs[PROXY]
    assert "proxy" in agg.label.lower()
    assert "not PAPI" in agg.label
    counters: Counter[str] = Counter()
    for visits, clear, paid in [
        ("1", "yes", "no"),
        ("online", "dont_know", "no"),
        ("3", "no", "yes"),
        ("2", "yes", "no_answer"),
    ]:
        counters.update(
            count_answers(
                [
                    ("procedures.visits", visits),
                    ("procedures.information_clear", clear),
                    ("procedures.informal_payment_asked", paid),
                ]
            )
        )
    values = by_key(aggregate(agg, counters))
    assert (values["papi_proxy.d5.at_most_one_visit"].numerator, values["papi_proxy.d5.at_most_one_visit"].n) == (2, 4)
    assert (values["papi_proxy.d5.information_clear"].numerator, values["papi_proxy.d5.information_clear"].n) == (
        2,
        3,
    )  # "don't know" left out
    assert values["papi_proxy.d5.no_informal_payment"].value == round(2 / 3, 4)
    assert values["papi_proxy.d5"].value is None  # satisfaction and result not asked here: N/A, not a partial mean
    raw = yaml.safe_load(
        (
            Path(__file__).resolve().parents[2]
            / "services/scoring/config/surveys"
            / "citizen-experience-chiso-2025.1.yaml"
        ).read_text(encoding="utf-8")
    )
    raw["label"] = "PAPI (commune)"
    with pytest.raises(ValueError, match="proxy"):
        Aggregator.model_validate(raw)


def test_several_versions_in_one_period_are_not_pooled(aggs) -> None:
    counters = {SIPAS_2017: responses_2017(), SIPAS_2023: responses_2017()}
    flat = survey_values(aggs, survey_blocks(aggs, counters))
    assert flat["sipas.index"].value is None
    assert "not pooled" in flat["sipas.index"].detail
    one = survey_values(aggs, survey_blocks(aggs, {SIPAS_2017: responses_2017()}))
    assert one["sipas.index"].value == 0.7
    assert one["papi_proxy.d5"].na_reason == "empty_denominator"
    unknown = survey_blocks(aggs, {("own-survey", "1"): Counter({"responses": 3})})
    assert unknown[0][0] is None
    assert unknown[0][2] == []


# --- PAPI official scores (DOMAIN §11.1, §11.2) ----------------------------------------------------------


def test_the_domain_papi_tables_import_whole() -> None:
    accepted, rejected = validate_rows(read_rows(EXAMPLES / "papi-known-answers.csv"))
    assert rejected == []
    d6 = [r for r in accepted if r.year == 2023 and r.dimension == 6 and not r.sub_dimension]
    assert len(d6) == 18
    bac_ninh = {
        r.sub_dimension: r.score for r in accepted if r.year == 2023 and r.province_code == "27" and r.dimension == 6
    }
    assert bac_ninh[""] == 8.2568
    assert abs(sum(v for k, v in bac_ninh.items() if k) - bac_ninh[""]) <= 0.0001
    totals = {(r.year, r.province_name): r.score for r in accepted if r.dimension == 0}
    assert totals[(2023, "Thua Thien Hue")] == 46.04
    assert totals[(2021, "Ba Ria-Vung Tau")] == 40.62
    assert round(100 * totals[(2021, "Ba Ria-Vung Tau")] / 80, 2) == 50.77  # "đạt tỷ lệ 50,77%"
    hatinh_2015 = {r.dimension: r.score for r in accepted if r.year == 2015 and not r.sub_dimension}
    assert hatinh_2015 == {1: 6.44, 2: 7.24, 3: 7.51}


def test_sub_dimensions_that_do_not_sum_are_rejected_with_the_reason() -> None:
    accepted, rejected = validate_rows(read_rows(EXAMPLES / "papi-bad-sum.json"))
    assert accepted == []
    assert len(rejected) == 1
    assert rejected[0].line_numbers == (1, 2, 3, 4, 5)
    assert "sum to 5.68" in rejected[0].reason
    assert "5.58" in rejected[0].reason


def test_rounding_tolerance_follows_the_published_decimals() -> None:
    def dim(score: str, subs: list[str], year: int = 2023) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = [{"year": year, "province_code": "01", "dimension": "6", "score": score}]
        rows += [
            {"year": year, "province_code": "01", "dimension": "6", "sub_dimension": f"6.{i}", "score": s}
            for i, s in enumerate(subs, 1)
        ]
        return rows

    # 4 decimals: Ha Noi 2023 sums exactly; 0.0002 off is rounding; 0.001 off is not
    assert validate_rows(dim("7.8486", ["1.7029", "1.9570", "2.2548", "1.9339"]))[1] == []
    assert validate_rows(dim("7.8488", ["1.7029", "1.9570", "2.2548", "1.9339"]))[1] == []
    assert validate_rows(dim("7.8496", ["1.7029", "1.9570", "2.2548", "1.9339"]))[1] != []
    # 2 decimals: 0.02 off can be rounding of five figures, 0.03 cannot
    assert validate_rows(dim("5.34", ["0.88", "1.58", "1.59", "1.27"]))[1] == []
    assert validate_rows(dim("5.35", ["0.88", "1.58", "1.59", "1.27"]))[1] != []


def test_a_total_must_equal_its_eight_dimensions_and_bad_rows_are_refused() -> None:
    rows: list[dict[str, object]] = [
        {"year": 2023, "province_code": "27", "dimension": str(d), "score": "5.5"} for d in range(1, 9)
    ]
    ok = [*rows, {"year": 2023, "province_code": "27", "dimension": "total", "score": "44.0"}]
    assert validate_rows(ok)[1] == []
    bad = [*rows, {"year": 2023, "province_code": "27", "dimension": "total", "score": "45.0"}]
    assert "the 8 dimensions sum to 44" in validate_rows(bad)[1][0].reason
    refused = validate_rows(
        [
            {"year": 2023, "province_code": "1", "dimension": "6", "score": "7"},
            {"year": 2023, "province_code": "01", "dimension": "6", "score": "11"},
            {"year": 2023, "province_code": "01", "dimension": "9", "score": "5"},
            {"year": 2023, "province_code": "01", "dimension": "6", "sub_dimension": "5.1", "score": "1"},
        ]
    )[1]
    assert [r.reason.split(" ")[0] for r in refused] == ["province_code", "a", "dimension", "sub-dimension"]


# --- PAR Index -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree() -> ParTree:
    return load_par_trees()[("51", 2024)]


def full_marks(tree: ParTree) -> dict[str, Assessment]:
    """Every leaf criterion that has no metric appraised at its maximum."""
    return {
        c.id: Assessment(appraised_score=c.max, appraised_max=c.max, appraiser="Sở Nội vụ")
        for c in tree.nodes()
        if not c.criteria and c.metric is None
    }


METRICS_ALL = {
    "tasks_on_time_rate": Metric(0.75),
    "reports_on_time_rate": Metric(1.0),
    "dossier_on_time_rate": Metric(0.9),
    "apology_rate": Metric(0.5),
    "online_share": Metric(0.25),
    "digitised_rate": Metric(1 / 3),
    "sipas_index": Metric(0.8),
}


def test_the_shipped_tree_matches_the_plans_tree_and_sums_to_100(tree) -> None:
    assert tree.max_points == 100
    plans = yaml.safe_load(
        (
            Path(__file__).resolve().parents[2] / "services/plans/config/criteria" / "quang-ngai-2024-commune.yaml"
        ).read_text(encoding="utf-8")
    )

    def ids(nodes):
        return [(n["id"], n["max"]) for n in nodes] + [x for n in nodes for x in ids(n.get("criteria", []))]

    assert sorted((a["id"], a["max"]) for a in plans["areas"]) == sorted((a.id, a.max) for a in tree.areas)
    plan_criteria = sorted(x for a in plans["areas"] for x in ids(a["criteria"]))
    assert plan_criteria == sorted((c.id, c.max) for c in tree.nodes())


def test_par_known_answer(tree) -> None:
    result = score_par(tree, METRICS_ALL, full_marks(tree))
    # computed: 1.2 4x0.75=3, 1.3 3x1=3, 3.2.1 6x0.9=5.4, 3.2.2 3x0.5=1.5, 3.2.3 3x0.25=0.75, 7.2 4x0.25=1,
    # 7.3 3x1/3=1, 8.1 10x0.8=8 -> 23.65 of the 36 points with a metric; the other 64 appraised at their maximum
    assert result.total == 87.65
    assert result.percent == 87.65
    assert result.klass == "B"
    areas = {a.id: a.score for a in result.areas}
    assert areas == {"1": 13.0, "2": 10, "3": 17.65, "4": 8, "5": 10, "6": 8, "7": 9.0, "8": 12.0}
    node = next(c for c in next(a for a in result.areas if a.id == "3").children if c.id == "3.2")
    assert (node.score, node.basis) == (7.65, "sum")


def test_par_appraisal_zeroing_and_missing_inputs(tree) -> None:
    assessed = full_marks(tree)
    assessed["1.1"] = Assessment(
        self_score=3,
        self_max=3,
        appraised_score=0,
        appraised_max=3,
        zeroed_reason="missing_evidence",
        appraiser="Đoàn thẩm định",
    )
    assessed["3.2.1"] = Assessment(appraised_score=5, appraised_max=6)  # an appraisal overrides the events
    result = score_par(tree, METRICS_ALL, assessed)
    nodes = {n.id: n for a in result.areas for n in _walk(a.children)}
    assert (nodes["1.1"].score, nodes["1.1"].basis, nodes["1.1"].self_score) == (0, "zeroed", 3)
    assert "missing_evidence" in nodes["1.1"].detail
    assert (nodes["3.2.1"].score, nodes["3.2.1"].basis) == (5, "appraised")
    assert result.total == round(87.65 - 3 - 0.4, 2)
    # a metric without data and a manual criterion without an appraisal: N/A, total N/A, partial points shown
    missing = dict(METRICS_ALL)
    missing["sipas_index"] = Metric(None, "no survey responses")
    del assessed["2.1"]
    partial = score_par(tree, missing, assessed)
    assert partial.total is None
    assert partial.percent is None
    assert partial.klass is None
    assert "2" in partial.detail
    assert "8" in partial.detail
    nodes = {n.id: n for a in partial.areas for n in _walk(a.children)}
    assert "no survey responses" in nodes["8.1"].detail
    assert "manual" in nodes["2.1"].detail
    assert partial.points_available == round(84.25 - 4 - 8, 2)
    # an appraisal against another maximum is not rescaled
    assessed["2.1"] = Assessment(appraised_score=2, appraised_max=5)
    odd = score_par(tree, METRICS_ALL, assessed)
    assert {n.id: n for a in odd.areas for n in _walk(a.children)}["2.1"].score is None


def _walk(nodes):
    for n in nodes:
        yield n
        yield from _walk(n.children)


def test_classes_and_ranks(tree) -> None:
    low = score_par(tree, {k: Metric(0.0) for k in METRICS_ALL}, full_marks(tree))
    assert low.percent == 64
    assert low.klass is None
    assert "below" in low.detail
    assert rank({"a": 90.0, "b": 95.5, "c": 90.0, "d": None, "e": 80.0}) == {"b": 1, "a": 2, "c": 2, "e": 4, "d": None}
    bad = copy.deepcopy(tree.model_dump())
    bad["areas"][0]["max"] = 15
    with pytest.raises(ValueError, match="criteria sum to 14"):
        ParTree.model_validate(bad)


# --- plans rates and targets -------------------------------------------------------------------------------


def test_plan_rates() -> None:
    values = plan_values({"tasks.due": 8, "tasks.done": 7, "tasks.on_time": 6, "reports.due": 0})
    assert values["tasks.on_time_rate"].value == 0.75
    assert values["tasks.completed_rate"].value == 0.875
    assert values["reports.on_time_rate"].value is None
    assert values["reports.on_time_rate"].na_reason == "empty_denominator"


def test_targets_mapping_periods_and_comparisons() -> None:
    mapping = load_target_map().mappings
    assert mapping_for(mapping, "dossiers.on_time_pct").indicator == "r06.on_time_rate"
    assert mapping_for(mapping, "dossiers.on_time_pct").scale == 100
    assert mapping_for(mapping, "documents.e_signed_pct").indicator is None
    assert "no mapping" in mapping_for(mapping, "nope.x").reason
    plans_ids = {
        i["id"]
        for i in yaml.safe_load(
            (Path(__file__).resolve().parents[2] / "services/plans/config" / "indicators.yaml").read_text(
                encoding="utf-8"
            )
        )["indicators"]
    }
    assert plans_ids == set(mapping)  # every id a plan may name has a mapping (or a stated reason)
    assert period_of(date(2026, 1, 1), date(2026, 12, 31)) is PeriodKind.YEAR
    assert period_of(date(2026, 4, 1), date(2026, 6, 30)) is PeriodKind.QUARTER
    assert period_of(date(2026, 2, 1), date(2026, 2, 28)) is PeriodKind.MONTH
    assert period_of(date(2026, 2, 1), date(2026, 3, 15)) is None
    assert compare(95.0, ">=", 95).met is True
    assert compare(94.99, ">=", 95).met is False
    assert compare(2.0, "<=", 3).met is True
    assert compare(None, ">=", 95).met is None
    assert compare(84.62, ">=", 90).gap == -5.38
