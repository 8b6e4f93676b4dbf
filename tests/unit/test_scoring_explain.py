"""The PAR evidence export and the explain helpers for survey- and task-based indicators (no I/O)."""

from __future__ import annotations

import csv
import io

from services.scoring.configs import load_aggregators
from services.scoring.domain.indicators import IndicatorValue, Kind
from services.scoring.domain.par import NodeScore
from services.scoring.domain.programme import PLAN_KEYS
from services.scoring.explain_more import PLAN_EXPLAIN, evidence_csv, evidence_rows, survey_refs


def node(cid: str, basis: str, score: float | None, **kw: object) -> NodeScore:
    return NodeScore(
        id=cid,
        name=f"criterion {cid}",
        max=4.0,
        method=str(kw.get("method", "manual")),
        score=score,
        basis=basis,
        self_score=kw.get("self_score"),  # type: ignore[arg-type]
        metric=kw.get("metric"),  # type: ignore[arg-type]
        metric_value=kw.get("metric_value"),  # type: ignore[arg-type]
        detail=str(kw.get("detail", "")),
    )


AREA = NodeScore(
    id="1",
    name="area 1",
    max=12.0,
    method="sum",
    score=None,
    basis="sum",
    self_score=None,
    metric=None,
    metric_value=None,
    detail="",
    children=(
        node("1.1", "appraised", 3.0, self_score=4.0),
        node("1.2", "computed", 3.0, method="metric", metric="tasks_on_time_rate", metric_value=0.75),
        node("1.3", "zeroed", 0.0, detail="missing_evidence"),
        node("1.4", "n/a", None, detail="not appraised yet"),
    ),
)
EVIDENCE = {
    ("1.1", "appraisal"): [
        {"document_number": "45/BC-UBND", "document_date": "2024-04-01", "description": "báo cáo quý I"},
        {"document_number": "7/QĐ-UBND", "document_date": "2024-01-05", "description": "kế hoạch", "link": None},
    ],
    ("1.1", "self"): [{"document_number": "self-only", "document_date": "2024-01-01", "description": "x"}],
    ("1.4", "self"): [{"document_number": "9/TTr", "document_date": "2024-02-02", "description": "tờ trình"}],
}
TASKS = IndicatorValue("tasks.on_time_rate", "tasks", Kind.RATIO, 3, 4, 0.75, None, "", "test")


def test_every_criterion_gets_its_source_and_the_appraisal_evidence() -> None:
    rows = {r.criterion: r for r in evidence_rows([AREA], EVIDENCE, {"tasks.on_time_rate": TASKS})}
    assert list(rows) == ["1.1", "1.2", "1.3", "1.4"]  # leaves only, in tree order
    assert {r.area for r in rows.values()} == {"1"}
    appraised = rows["1.1"]
    assert (appraised.source, appraised.score, appraised.self_score) == ("appraisal", 3.0, 4.0)
    # the appraisal's evidence, not the self-assessment's
    assert appraised.evidence == "45/BC-UBND; 2024-04-01; báo cáo quý I | 7/QĐ-UBND; 2024-01-05; kế hoạch"
    metric = rows["1.2"]
    assert (metric.source, metric.metric, metric.numerator, metric.denominator) == (
        "metric",
        "tasks_on_time_rate",
        3,
        4,
    )
    assert (rows["1.3"].source, rows["1.3"].detail) == ("zeroed", "missing_evidence")
    assert (rows["1.4"].source, rows["1.4"].score, rows["1.4"].evidence) == ("n/a", None, "")


def test_the_csv_has_a_header_and_empty_cells_for_nulls() -> None:
    text = evidence_csv(evidence_rows([AREA], EVIDENCE, {}))
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 4
    assert table[0]["criterion"] == "1.1"
    assert table[0]["source"] == "appraisal"
    assert table[3]["score"] == ""  # N/A is empty, never 0
    assert table[1]["numerator"] == ""  # metric inputs unknown without values
    assert "45/BC-UBND" in table[0]["evidence"]


def test_survey_keys_map_to_the_instrument_versions_of_their_kind() -> None:
    aggregators = load_aggregators()
    sipas = survey_refs(aggregators, "sipas.index")
    proxy = survey_refs(aggregators, "papi_proxy.d5.at_most_one_visit")
    assert ("sipas-service", "QĐ2640-2017") in sipas
    assert ("citizen-experience", "chiso-2025.1") in proxy
    assert not set(sipas) & set(proxy)


def test_every_plan_rate_is_explainable() -> None:
    assert set(PLAN_EXPLAIN) == set(PLAN_KEYS)
