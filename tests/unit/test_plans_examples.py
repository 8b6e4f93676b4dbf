"""The shipped plan files (one per seed document) import through the real rules — shared calendar, unit
registry, shipped indicators and criteria trees — and yield the expected events; a second import stores
nothing. Bad entries are refused with their reason while the rest imports."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

from contracts.plans import TargetSet
from eventkit.memory import InMemoryEventStore
from services.plans.config import build_rules
from services.plans.domain import Rules
from services.plans.handler import PlansHandler
from services.plans.importer import PlanFileError, entries, import_plan, read_plan_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plans"
NOW = datetime(2025, 6, 1, tzinfo=UTC)

EXPECTED = {
    "000_quang-cong-2020.yaml": {"vn.cchc.plan.issued": 1, "vn.cchc.task.assigned": 10},
    "001_huong-hoa-2020-inspection.yaml": {
        "vn.cchc.plan.issued": 1,
        "vn.cchc.inspection.planned": 2,
        "vn.cchc.task.assigned": 7,
    },
    "002_huong-khe-2023-remediation.yaml": {
        "vn.cchc.plan.issued": 1,
        "vn.cchc.target.set": 5,
        "vn.cchc.task.assigned": 11,
        "vn.cchc.task.remediation_linked": 8,
    },
    "003_ba-nam-2024.yaml": {
        "vn.cchc.plan.issued": 1,
        "vn.cchc.target.set": 14,
        "vn.cchc.task.assigned": 18,
        "vn.cchc.report.scheduled": 4,
    },
    "004_huong-an-2022.yaml": {"vn.cchc.plan.issued": 1, "vn.cchc.target.set": 2, "vn.cchc.task.assigned": 17},
}


@cache
def rules() -> Rules:
    return build_rules()


def test_there_is_one_example_per_seed_document():
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_a_seed_example_imports_with_the_expected_events_and_a_reimport_stores_nothing(name):
    store = InMemoryEventStore()
    handler = PlansHandler(store, rules(), lambda: NOW)
    document = read_plan_file(EXAMPLES / name)
    summary = await import_plan(handler, document)
    assert summary.refused == []
    assert dict(summary.events) == EXPECTED[name]
    stored = await store.read_all(limit=10_000)
    assert Counter(e.envelope.type for e in stored) == Counter(EXPECTED[name])
    again = await import_plan(handler, document)
    assert (again.recorded, len(again.refused), again.unchanged) == (0, 0, summary.recorded)
    assert len(await store.read_all(limit=10_000)) == len(stored)


async def test_seed_003_yields_its_14_targets_on_configured_indicators_under_the_current_commune():
    store = InMemoryEventStore()
    await import_plan(PlansHandler(store, rules(), lambda: NOW), read_plan_file(EXAMPLES / "003_ba-nam-2024.yaml"))
    targets = [e for e in await store.read_all(limit=1000) if isinstance(e.envelope.data, TargetSet)]
    assert [t.envelope.data.target_id for t in targets] == [f"MT-{i:02d}" for i in range(1, 15)]
    keys = {t.envelope.data.indicator_key for t in targets}
    assert {"sipas.satisfaction_pct", "dossiers.online_share_pct", "dossiers.e_transfer_pct"} <= keys
    assert all(t.envelope.data.indicator_key in rules().indicators.indicators for t in targets)
    envelope = targets[0].envelope
    assert envelope.legacyunitcode == "21535"  # xã Ba Nam as the 2023 plan names it
    assert envelope.unitcode != "21535"
    assert envelope.provincecode == "51"
    assert all(t.stream_id == "plan:QD-193-2023-BANAM" for t in targets)


async def test_bad_entries_are_refused_with_their_reason_and_the_rest_imports():
    document = {
        "plan": {
            "plan_id": "KH-TEST",
            "unit_code": "21535",
            "kind": "annual",
            "title": "Kế hoạch thử",
            "year": 2024,
            "document_number": "1/KH-UBND",
            "document_date": "2024-01-05",
            "issuer": "UBND xã Ba Nam",
        },
        "targets": [
            {
                "target_id": "T1",
                "indicator_key": "sipas.happiness",
                "comparison": ">=",
                "target_value": 90,
                "unit_of_measure": "percent",
                "description": "x",
            },
            {
                "target_id": "T2",
                "indicator_key": "sipas.satisfaction_pct",
                "comparison": ">=",
                "target_value": 90,
                "unit_of_measure": "percent",
                "description": "Hài lòng",
            },
        ],
        "tasks": [
            {"task_id": "KH-TEST.1", "title": "Nhiệm vụ", "assignee_role": "VP", "due_date": "2023-12-01"},
            {"task_id": "KH-TEST.2", "title": "Nhiệm vụ", "assignee_role": "VP", "deadline": "2024-02-01"},
        ],
    }
    summary = await import_plan(PlansHandler(InMemoryEventStore(), rules(), lambda: NOW), document)
    assert summary.recorded == 2
    reasons = dict(summary.refused)
    assert "unknown indicator 'sipas.happiness'" in reasons["targets[0] T1"]
    assert "before the plan was issued" in reasons["tasks[0] KH-TEST.1"]
    assert "deadline: Extra inputs are not permitted" in reasons["tasks[1] KH-TEST.2"]


def test_a_file_without_a_plan_or_with_unknown_sections_is_refused_whole():
    with pytest.raises(PlanFileError, match="'plan' section"):
        list(entries({"targets": []}))
    with pytest.raises(PlanFileError, match="unknown sections"):
        list(entries({"plan": {}, "objectives": []}))
