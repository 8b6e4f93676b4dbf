"""End to end on the real broker and database: seed 003's plan is imported with `chiso plans import` (a
separate process writing to the plans event store), the running plans service relays it to
vn.cchc.plans.events, its overdue watch flags the open task whose deadline has passed, and the events on
the topic carry the right timeliness: a task completed on time, one completed late, a report filed late,
one on time. A second import stores nothing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import yaml

from contracts.topics import PLANS_EVENTS
from eventkit.service import ServiceSettings
from eventkit.settings import DatabaseSettings, KafkaSettings, LogSettings
from services.plans.app import build_app
from services.plans.domain import VN_TZ
from services.plans.settings import PlansSettings
from tests.e2e.serving import serve
from tests.kafka_helpers import read_topic

pytestmark = pytest.mark.e2e
SEED_003 = Path(__file__).resolve().parents[2] / "examples" / "plans" / "003_ba-nam-2024.yaml"


class Clock:
    """The service's clock: before the deadlines while the plan is imported, then moved on (the overdue
    watch must not race the import, which assigns tasks before it records their completions)."""

    def __init__(self) -> None:
        self.now = datetime(2024, 12, 30, 9, 0, tzinfo=VN_TZ)

    def __call__(self) -> datetime:
        return self.now


@pytest_asyncio.fixture
async def plans_service(fresh_database: str, kafka_bootstrap: str) -> AsyncIterator[tuple[str, Clock]]:
    shell = ServiceSettings(
        "plans",
        "plans",
        KafkaSettings(bootstrap_servers=kafka_bootstrap),
        DatabaseSettings(url=fresh_database),
        LogSettings(level="WARNING"),
    )
    clock = Clock()
    app = build_app(PlansSettings(overdue_interval_s=0.5), shell, clock=clock)
    async with serve(app) as url:
        yield url, clock


def _plan_file(tmp_path: Path, run: str) -> tuple[Path, str]:
    """Seed 003 under fresh ids (a kept broker may hold earlier runs), plus what happened to it in 2024."""
    document = yaml.safe_load(SEED_003.read_text(encoding="utf-8"))
    old = document["plan"]["plan_id"]
    plan_id = f"{old}-{run}"
    text = SEED_003.read_text(encoding="utf-8").replace(old, plan_id)
    document = yaml.safe_load(text)
    evidence = {"document_number": "15/BC-UBND", "document_date": "2024-12-20", "description": "Báo cáo kết quả"}
    document["task_completions"] = [
        # due 31/12/2024 (Tuesday): done 20/12 -> on time
        {"task_id": f"{plan_id}.1.1-b", "done_at": "2024-12-20T10:00:00+07:00", "evidence": [evidence]},
        # due 31/12/2024; 1/1 is a holiday, done Friday 3/1/2025 -> 2 working days late (2/1, 3/1)
        {"task_id": f"{plan_id}.1.2-a", "done_at": "2025-01-03T10:00:00+07:00"},
    ]
    report = {"document_number": "45/BC-UBND", "document_date": "2024-03-13", "description": "Báo cáo Quý I/2024"}
    document["report_submissions"] = [
        # due Sunday 10/3/2024 -> Monday 11/3; filed Wednesday 13/3 -> 2 working days late
        {"report_id": f"{plan_id}.BC-Q1", "submitted_at": "2024-03-13T10:00:00+07:00", "document": report},
        {
            "report_id": f"{plan_id}.BC-6T",
            "submitted_at": "2024-06-07T16:00:00+07:00",
            "document": {**report, "document_date": "2024-06-07", "description": "Báo cáo 6 tháng"},
        },
    ]
    path = tmp_path / f"plan-{run}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, plan_id


def _import(path: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    chiso = shutil.which("chiso")
    assert chiso, "the chiso command is installed with the package (pip install -e .)"
    env = {**os.environ, "DATABASE_URL": database_url, "COLUMNS": "200"}
    return subprocess.run(
        [chiso, "plans", "import", str(path)], capture_output=True, text=True, env=env, timeout=120, check=False
    )


async def _ours(bootstrap: str, plan_id: str, expect: int, wait_s: float = 60.0) -> list:
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        records = await read_topic(bootstrap, PLANS_EVENTS, wait_s=5)
        ours = [r for r in records if r.key and plan_id in r.key.decode()]
        if len(ours) >= expect or asyncio.get_running_loop().time() > deadline:
            return ours
        await asyncio.sleep(0.5)


def _event(record) -> tuple[str, dict]:
    headers = {k: v.decode() for k, v in record.headers}
    return headers["ce_type"], json.loads(record.value)


async def test_an_imported_plan_reaches_the_topic_with_the_right_timeliness(
    plans_service, fresh_database, kafka_bootstrap, tmp_path
):
    url, clock = plans_service
    path, plan_id = _plan_file(tmp_path, uuid.uuid4().hex[:8])
    first = await asyncio.to_thread(_import, path, fresh_database)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "41 recorded, 0 unchanged, 0 refused" in first.stdout
    await asyncio.sleep(1)
    early = await _ours(kafka_bootstrap, plan_id, expect=42, wait_s=1)
    assert [r for r in early if _event(r)[0] == "vn.cchc.task.became_overdue"] == []
    clock.now = datetime(2025, 1, 2, 9, 0, tzinfo=VN_TZ)  # 31/12/2024 is over (1/1 is a holiday)

    # 37 from the plan, 2 completions, 2 submissions, and the overdue flag of the one open task with a deadline
    records = await _ours(kafka_bootstrap, plan_id, expect=42)
    events = [_event(r) for r in records]
    counts = Counter(t for t, _ in events)
    assert counts == {
        "vn.cchc.plan.issued": 1,
        "vn.cchc.target.set": 14,
        "vn.cchc.task.assigned": 18,
        "vn.cchc.report.scheduled": 4,
        "vn.cchc.task.completed": 2,
        "vn.cchc.report.submitted": 2,
        "vn.cchc.task.became_overdue": 1,
    }
    completed = {d["task_id"].removeprefix(f"{plan_id}."): d for t, d in events if t == "vn.cchc.task.completed"}
    assert (completed["1.1-b"]["on_time"], completed["1.1-b"]["working_days_late"]) == (True, 0)
    assert (completed["1.2-a"]["on_time"], completed["1.2-a"]["working_days_late"]) == (False, 2)
    submitted = {d["report_id"].removeprefix(f"{plan_id}."): d for t, d in events if t == "vn.cchc.report.submitted"}
    assert (submitted["BC-Q1"]["on_time"], submitted["BC-Q1"]["working_days_late"]) == (False, 2)
    assert submitted["BC-Q1"]["due_date"] == "2024-03-10"
    assert submitted["BC-6T"]["on_time"] is True
    (overdue,) = [d for t, d in events if t == "vn.cchc.task.became_overdue"]
    assert overdue["task_id"] == f"{plan_id}.1.8-a"  # the open task due 31/12/2024; 1.1-a... have no deadline
    assert overdue["due_date"] == "2024-12-31"
    headers = {k: v.decode() for k, v in records[0].headers}
    assert headers["ce_legacyunitcode"] == "21535"
    assert headers["ce_provincecode"] == "51"
    # one stream = one key: every event of a task travels under its task stream id
    assert {r.key.decode() for r in records if _event(r)[0] == "vn.cchc.task.completed"} == {
        f"task:{plan_id}.1.1-b",
        f"task:{plan_id}.1.2-a",
    }

    again = await asyncio.to_thread(_import, path, fresh_database)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 recorded, 41 unchanged, 0 refused" in again.stdout
    await asyncio.sleep(2)  # a duplicate would have been relayed by now
    assert len(await _ours(kafka_bootstrap, plan_id, expect=43, wait_s=3)) == 42

    async with httpx.AsyncClient(base_url=url) as client:
        task = (await client.get(f"/tasks/{plan_id}.1.8-a")).json()
        assert task["overdue"] is True
        assert task["status"] == "open"
