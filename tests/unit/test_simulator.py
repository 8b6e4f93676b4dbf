"""The province simulator's generator: seeded, realistic shares, every payload valid for its receiver, each
dossier's facts in an order the dossiers service's own lifecycle accepts, receipts in working hours, link
tokens the surveys service verifies, and no import of another service."""

from __future__ import annotations

import ast
import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contracts.dossiers import DossierReceived, DossierSubmitted, ResultIssued, SupplementReceived, SupplementRequested
from contracts.registry import default_registry
from contracts.wire import decode, encode
from eventkit.units import UnitRegistry
from eventkit.worktime import VN_TZ, WorkingCalendar
from services.dossiers.domain import DossierState, Judge, decide_and_evolve
from services.dossiers.rulesets import DEFAULT_RULESETS, load_rules
from services.plans.domain import AssignTask, CompleteTask, IssuePlan
from services.simulator.answers import InstrumentDoc, load_instrument_file
from services.simulator.links import sign_link
from services.simulator.send import Summary, Targets, send_all
from services.simulator.traffic import DossierFact, Item, PlanCommand, Scenario, SurveyResponse, generate
from services.surveys.catalog import load_catalog
from services.surveys.domain import Valid, validate_answers
from services.surveys.tokens import LinkSigner

REPO = Path(__file__).resolve().parents[2]
SIPAS_FILE = REPO / "services" / "surveys" / "instruments" / "sipas-service-QD1001-2023.yaml"
CALENDAR = WorkingCalendar.load()
COMMUNES = UnitRegistry.load().communes_of("01")
START = date(2026, 3, 2)


def _instrument() -> InstrumentDoc:
    return load_instrument_file(SIPAS_FILE)


def _items(seed: int = 7, *, communes: int = 4, days: int = 10, **changes: object) -> list[Item]:
    scenario = Scenario(province="01", days=days, start=START, seed=seed, communes=communes, **changes)  # type: ignore[arg-type]
    return list(generate(scenario, COMMUNES, CALENDAR, _instrument()))


def _fingerprint(items: list[Item]) -> list[str]:
    out = []
    for item in items:
        if isinstance(item, DossierFact):
            out.append(f"{item.envelope.id}|{item.envelope.model_dump_json()}")
        elif isinstance(item, SurveyResponse):
            out.append(item.response.model_dump_json())
        else:
            out.append(json.dumps(item.body, sort_keys=True))
    return out


def _facts(items: list[Item]) -> list[DossierFact]:
    return [i for i in items if isinstance(i, DossierFact)]


def test_the_same_seed_gives_the_same_traffic_and_another_seed_other_traffic() -> None:
    first = _fingerprint(_items(11))
    assert first == _fingerprint(_items(11))
    assert len(first) > 300
    other = _fingerprint(_items(12))
    assert other != first
    # ids carry the seed: two seeds never collide, one seed re-sends the same ids (stored once)
    assert not {f.split("|")[0] for f in first} & {f.split("|")[0] for f in other if "|" in f}


def test_every_item_is_dated_inside_the_window_and_ordered_by_time_except_early_online_submissions() -> None:
    items = _items(3, days=12)
    scenario = Scenario(province="01", days=12, start=START)
    late_start = scenario.window_start - timedelta(hours=30)
    assert all(late_start <= i.at < scenario.end for i in items)
    timed = [i.at for i in items if not (isinstance(i, DossierFact) and isinstance(i.envelope.data, DossierSubmitted))]
    assert timed == sorted(timed)


def test_shares_match_the_documented_province_profile() -> None:
    facts = _facts(_items(5, communes=30, days=21))
    by_dossier: dict[str, list[DossierFact]] = defaultdict(list)
    for fact in facts:
        by_dossier[fact.envelope.subject].append(fact)
    dossiers = len(by_dossier)
    assert dossiers > 3000  # 30 communes x 15 working days x 12 a day
    online = sum(any(isinstance(f.envelope.data, DossierSubmitted) for f in fs) for fs in by_dossier.values())
    assert online / dossiers == pytest.approx(0.30, abs=0.03)
    received = [fs for fs in by_dossier.values() if any(isinstance(f.envelope.data, DossierReceived) for f in fs)]
    supplemented = sum(any(isinstance(f.envelope.data, SupplementRequested) for f in fs) for fs in received)
    assert supplemented / len(received) == pytest.approx(0.15, abs=0.03)
    late = finished = 0
    for fs in received:
        rec = next(f.envelope.data for f in fs if isinstance(f.envelope.data, DossierReceived))
        result = next((f.envelope.data for f in fs if isinstance(f.envelope.data, ResultIssued)), None)
        if result is None:
            continue
        paused = sum(
            CALENDAR.working_hours_between(a.envelope.data.requested_at, b.envelope.data.received_at)  # type: ignore[attr-defined]
            for a, b in zip(
                [f for f in fs if isinstance(f.envelope.data, SupplementRequested)],
                [f for f in fs if isinstance(f.envelope.data, SupplementReceived)],
                strict=True,
            )
        )
        worked = CALENDAR.working_hours_between(rec.received_at, result.finished_at) - paused
        finished += 1
        late += worked > CALENDAR.working_hours_between(rec.received_at, rec.due_at) + 1e-6
    assert late / finished == pytest.approx(0.08, abs=0.025)


def test_receipts_are_in_working_hours_on_working_days_with_due_dates_from_the_calendar() -> None:
    received = [f.envelope.data for f in _facts(_items(9, days=14)) if isinstance(f.envelope.data, DossierReceived)]
    assert len(received) > 300
    segments = CALENDAR.hours.segments
    for fact in received:
        local = fact.received_at.astimezone(VN_TZ)
        assert CALENDAR.is_working_day(local.date())
        assert any(start <= local.time() <= end for start, end in segments), local
        days = fact.statutory_time.value
        assert fact.due_at == CALENDAR.due_at(fact.received_at, days, "working_days")


def test_every_fact_is_a_valid_cloudevent_and_each_dossier_is_accepted_by_the_dossiers_lifecycle() -> None:
    registry = default_registry()
    judge = Judge(load_rules(DEFAULT_RULESETS), CALENDAR, CALENDAR.hours.hours_per_day, "01")
    states: dict[str, DossierState] = defaultdict(DossierState)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    facts = _facts(_items(21, communes=6, days=15))
    for fact in facts:
        key, value, headers = encode(fact.envelope)
        decoded = decode(key, value, headers, registry)  # what the inbound consumer will read
        assert decoded.data == fact.envelope.data
        assert key == f"dossier:{fact.envelope.data.dossier_id}".encode()  # type: ignore[attr-defined]
        assert decoded.unitcode in {u.code for u in COMMUNES}
        outcome = decide_and_evolve(states[fact.envelope.subject], fact.envelope.data, now, judge)
        assert not isinstance(outcome, str), (fact.envelope.subject, outcome)
        states[fact.envelope.subject] = outcome[1]
    assert len(states) > 500
    assert len({f.envelope.id for f in facts}) == len(facts)


def test_survey_responses_answer_the_instrument_as_the_surveys_service_checks_it() -> None:
    catalog = load_catalog()
    surveys = [i for i in _items(4, communes=10, days=15) if isinstance(i, SurveyResponse)]
    assert len(surveys) > 40
    for survey in surveys:
        response = survey.response
        instrument = catalog.get(response.instrument_id, response.instrument_version)
        assert instrument is not None
        answers = [a.model_dump(mode="json") for a in response.answers]
        checked = validate_answers(
            instrument,
            answers,
            response.respondent.model_dump(mode="json", exclude_none=True),
            response.policy_group,
            response.ma_tthc,
        )
        assert isinstance(checked, Valid), checked
        assert response.linked_dossier_id is not None
        assert response.linked_dossier_id.startswith("SIM4-")
    assert len({s.response.linked_dossier_id for s in surveys}) == len(surveys)  # one response per dossier


def test_plan_commands_are_valid_plans_api_bodies_each_plan_before_its_tasks() -> None:
    plans = [i for i in _items(8, communes=5, days=20) if isinstance(i, PlanCommand)]
    models = {"/plans": IssuePlan, "/tasks": AssignTask, "/task-completions": CompleteTask}
    seen: set[str] = set()
    for command in plans:
        model = models[command.path].model_validate(command.body)
        if isinstance(model, IssuePlan):
            seen.add(model.plan_id)
        elif isinstance(model, AssignTask):
            assert model.plan_id in seen
            seen.add(model.task_id)
        else:
            assert model.task_id in seen
    assert Counter(c.path for c in plans)["/plans"] == 5
    assert Counter(c.path for c in plans)["/tasks"] == 15


def test_links_signed_by_the_simulator_are_accepted_by_the_surveys_service() -> None:
    secret = b"simulator-test-key-0123456789"
    expires = datetime.now(UTC) + timedelta(days=3)
    token = sign_link(
        secret,
        dossier_id="SIM1-00004-260302-00001",
        unit_code="00004",
        channel="sms",
        expires_at=expires,
        instrument_id="sipas-service",
        ma_tthc="1.001193",
    )
    claims = LinkSigner(secret).verify(token, datetime.now(UTC))
    assert not isinstance(claims, str), claims
    assert (claims.dossier_id, claims.unit_code, claims.channel, claims.ma_tthc) == (
        "SIM1-00004-260302-00001",
        "00004",
        "sms",
        "1.001193",
    )
    assert isinstance(LinkSigner(b"another-key-0123456789").verify(token, datetime.now(UTC)), str)


def test_the_cutoff_keeps_every_fact_in_the_past() -> None:
    cutoff = datetime.combine(START + timedelta(days=5), time(12), VN_TZ)
    items = _items(2, days=10, cutoff=cutoff)
    assert items
    assert max(i.at for i in items) < cutoff


def test_the_simulator_imports_no_other_service() -> None:
    allowed = ("contracts", "eventkit", "services.simulator")
    for path in (REPO / "services" / "simulator").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in {"services", "infra", "bench", "tests"}:
                    assert name.startswith(allowed), f"{path.name} imports {name}"


async def test_a_dry_run_writes_every_item_as_a_json_line(tmp_path: Path) -> None:
    out = tmp_path / "sim.jsonl"
    items = _items(6, communes=2, days=5)
    summary = await send_all(items, Targets(dry_run=out), rate=0)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(items) == summary.total
    kinds = Counter(line["to"] for line in lines)
    assert kinds["kafka:vn.cchc.dossiers.inbound"] == sum(summary.facts.values())
    assert kinds["kafka:vn.cchc.surveys.inbound"] == summary.surveys
    first = next(line for line in lines if line["to"].startswith("kafka:vn.cchc.dossiers"))
    assert first["headers"]["ce_partitionkey"] == first["key"] == first["headers"]["ce_subject"]


def test_the_command_line_dry_run_prints_the_summary(tmp_path: Path) -> None:
    from services.cli import app  # noqa: PLC0415

    out = tmp_path / "cli.jsonl"
    args = ["simulate", "--province", "01", "--days", "3", "--communes", "2", "--rate", "0", "--start", "2026-03-02"]
    result = CliRunner().invoke(app, [*args, "--dry-run", str(out), "--instrument-file", str(SIPAS_FILE)])
    assert result.exit_code == 0, result.output
    assert "vn.cchc.dossier.received" in result.output
    assert len(out.read_text(encoding="utf-8").splitlines()) > 20


def test_summary_counts_what_was_sent() -> None:
    summary = Summary()
    summary.facts["vn.cchc.dossier.received"] += 2
    summary.surveys += 1
    summary.plans["POST /plans"] += 1
    assert summary.total == 4
