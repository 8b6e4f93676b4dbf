"""The plans HTTP API over an in-memory event store: status codes, precise refusals, timeliness in the
responses, and schemathesis against the OpenAPI document (no 5xx on generated input)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from eventkit.memory import InMemoryEventStore
from services.plans.api import plans_router
from services.plans.config import build_rules
from services.plans.domain import Rules
from services.plans.handler import PlansHandler

NOW = datetime(2025, 1, 15, 2, 0, tzinfo=UTC)


@cache
def rules() -> Rules:
    return build_rules()


def make_app() -> FastAPI:
    app = FastAPI(title="plans API under test")
    app.include_router(plans_router(PlansHandler(InMemoryEventStore(), rules(), lambda: NOW)))
    return app


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://plans") as c:
        yield c


PLAN = {
    "plan_id": "KH-193-2023",
    "unit_code": "21535",
    "kind": "annual",
    "title": "Kế hoạch cải cách hành chính năm 2024 của xã Ba Nam",
    "year": 2024,
    "document_number": "193/QĐ-UBND",
    "document_date": "2023-12-25",
    "issuer": "Chủ tịch UBND xã Ba Nam",
}
TASK = {
    "plan_id": "KH-193-2023",
    "task_id": "KH-193-2023.T1",
    "title": "Ban hành kế hoạch tuyên truyền",
    "assignee_role": "Công chức Văn hóa - xã hội",
    "due_date": "2024-03-08",
}


async def test_a_plan_is_recorded_once_and_read_back(client):
    first = await client.post("/plans", json=PLAN)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["status"] == "recorded"
    assert [e["type"] for e in body["events"]] == ["vn.cchc.plan.issued"]
    again = await client.post("/plans", json=PLAN)
    assert again.status_code == 200
    assert again.json() == {"status": "unchanged", "stream_id": "plan:KH-193-2023", "events": []}
    view = (await client.get("/plans/KH-193-2023")).json()
    assert view["legacy_unit_code"] == "21535"
    assert view["province_code"] == "51"
    assert view["plan"]["document_number"] == "193/QĐ-UBND"


async def test_refusals_name_the_field_the_value_and_the_rule(client):
    unknown_unit = await client.post("/plans", json={**PLAN, "unit_code": "99999"})
    assert unknown_unit.status_code == 422
    problem = unknown_unit.json()
    assert (problem["kind"], problem["field"], problem["value"]) == ("invalid", "unit_code", "99999")
    assert "99999" in problem["reason"]

    missing_plan = await client.post("/tasks", json=TASK)
    assert missing_plan.status_code == 404
    assert missing_plan.json()["field"] == "plan_id"

    await client.post("/plans", json=PLAN)
    target = {
        "plan_id": "KH-193-2023",
        "target_id": "MT-14",
        "indicator_key": "sipas.nope",
        "comparison": ">=",
        "target_value": 90,
        "unit_of_measure": "percent",
        "description": "Hài lòng",
    }
    unknown_indicator = await client.post("/targets", json=target)
    assert unknown_indicator.status_code == 422
    assert unknown_indicator.json()["field"] == "indicator_key"

    early = await client.post("/tasks", json={**TASK, "due_date": "2023-11-30"})
    assert early.status_code == 422
    assert "before the plan was issued" in early.json()["reason"]

    shape = await client.post("/tasks", json={**TASK, "due_date": "not a date"})
    assert shape.status_code == 422
    assert shape.json()["detail"][0]["loc"] == ["body", "due_date"]

    conflict = await client.post("/plans", json={**PLAN, "title": "Kế hoạch khác"})
    assert conflict.status_code == 409


async def test_completions_and_submissions_carry_their_timeliness(client):
    await client.post("/plans", json=PLAN)
    assert (await client.post("/tasks", json=TASK)).status_code == 201
    done = await client.post(
        "/task-completions", json={"task_id": "KH-193-2023.T1", "done_at": "2024-03-12T10:00:00+07:00"}
    )
    assert done.status_code == 201, done.text
    data = done.json()["events"][0]["data"]
    assert (data["on_time"], data["working_days_late"], data["due_date"]) == (False, 2, "2024-03-08")
    task = (await client.get("/tasks/KH-193-2023.T1")).json()
    assert task["status"] == "completed"
    assert task["completed"]["on_time"] is False

    report = {
        "report_id": "BC-Q1",
        "plan_id": "KH-193-2023",
        "kind": "quarterly",
        "title": "Báo cáo Quý I/2024",
        "year": 2024,
        "data_from": "2023-12-15",
        "data_to": "2024-03-10",
        "due_date": "2024-03-10",
    }
    assert (await client.post("/reports", json=report)).status_code == 201
    sent = await client.post(
        "/report-submissions",
        json={
            "report_id": "BC-Q1",
            "submitted_at": "2024-03-11T15:00:00+07:00",
            "document": {
                "document_number": "45/BC-UBND",
                "document_date": "2024-03-11",
                "description": "Báo cáo Quý I",
            },
        },
    )
    assert sent.status_code == 201
    assert sent.json()["events"][0]["data"]["on_time"] is True  # due Sunday 10/3 -> Monday 11/3
    assert (await client.get("/reports/BC-Q1")).json()["submitted"]["on_time"] is True
    assert (await client.get("/reports/BC-404")).status_code == 404


async def test_nul_characters_are_refused_at_the_door(client):
    response = await client.post("/plans", json={**PLAN, "title": "a\u0000b"})
    assert response.status_code == 422
    assert "NUL" in response.text


schema = schemathesis.openapi.from_asgi("/openapi.json", make_app())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_makes_the_api_fail_with_a_5xx(case):
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:500]}"
