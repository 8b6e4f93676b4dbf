"""What a province's communes do in N days: dossiers, SIPAS responses, plan tasks (pure, seeded, no I/O).

Volumes and shares (DOMAIN §9.2, §3, and the shares ``bench/dvcqg_gen.py`` uses):

- dossiers per commune per working day: Poisson with mean ``dossiers_per_commune_day`` (default 12 ≈ 3,000
  a year, the low end of DOMAIN §9.2's 3,000-15,000 for a post-2025 commune); receipts in working hours of
  the shared calendar, more in the morning;
- 30 % online (submitted first, 1-30 hours before receipt; 5 % of them refused at reception), 3 % postal,
  the rest at the counter; due dates from :meth:`WorkingCalendar.due_at` for the procedure's limit;
- 15 % get one processing-stage supplement (the clock pauses), 40 % pay fees (online 80 % of the time
  when submitted online), 1 % withdrawn, 1 % stopped; 8 % finish after the due date (moved by the
  supplement), a third of them with an apology before it; 90 % of results are delivered, most synced to
  DVCQG, 10 % rated;
- 20 % of delivered dossiers get a SIPAS response from the holder (QR on the receipt or SMS link after
  the result), 0.5-16 working hours after delivery; each commune has its own satisfaction level;
- one annual PAR plan per commune at the start, with ``tasks_per_commune`` tasks due inside the window:
  85 % done by the due date, 10 % late, 5 % never.

Every commune also gets its own lateness (0.3 to 1.7 times the province's 8 %), so rankings are not flat.

The stream is ordered by simulated time (a heap of the dossiers in flight), and each dossier's facts keep
their lifecycle order (same key, same partition). Nothing is dated after the cut-off (``end``): a dossier
still in processing then simply stays open, as on any real report date. Online submissions may be dated
a day before the receipt that follows them, so the global order is by receipt for those.
Ids are derived from the seed: running the same scenario again re-sends the same facts, which the
services store once.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from contracts.base import EventPayload
from contracts.dossiers import (
    ApologyIssued,
    ApplicantType,
    Channel,
    DeliveryChannel,
    DossierComponent,
    DossierRated,
    DossierReceived,
    DossierRefused,
    DossierStatus,
    DossierSubmitted,
    DossierSyncedToDVCQG,
    DossierWithdrawn,
    FeeLine,
    FeePaid,
    FinancialObligationRequested,
    OnlinePaymentPlatform,
    ProcessingStepCompleted,
    ProcessingStopped,
    Rating,
    RatingChannel,
    ResultDelivered,
    ResultDocument,
    ResultIssued,
    StatutoryTime,
    SupplementReceived,
    SupplementRequested,
    SupplementStage,
    TimeUnit,
)
from contracts.envelope import Envelope, make_envelope
from contracts.surveys import Answer, RespondentProfile, SurveyChannel, SurveyResponseSubmitted
from eventkit.units import Unit
from eventkit.worktime import VN_TZ, WorkingCalendar
from services.simulator.answers import InstrumentDoc

__all__ = ["SHARES", "DossierFact", "Item", "PlanCommand", "Scenario", "SurveyResponse", "generate"]

#: the province's shares (see the module docstring)
SHARES: dict[str, float] = {
    "online": 0.30,
    "postal": 0.03,
    "refused_of_online": 0.05,
    "synced": 0.95,
    "supplement": 0.15,
    "fees": 0.40,
    "paid_online_of_online": 0.80,
    "withdrawn": 0.01,
    "stopped": 0.01,
    "late": 0.08,
    "apology_of_late": 0.33,
    "delivered": 0.90,
    "rated": 0.10,
    "electronic_result": 0.60,
}

#: (MaTTHC, limit in working days): birth registration, certified copies, marriage, land, business
PROCEDURES: tuple[tuple[str, int], ...] = (
    ("1.001193", 3),
    ("2.000635", 1),
    ("1.001776", 5),
    ("1.003583", 10),
    ("2.001157", 7),
    ("1.000894", 2),
)
_STEPS = ("Thẩm định hồ sơ", "Trình ký", "Ký duyệt", "Vào sổ, đóng dấu")
_TASKS = (
    ("Rà soát, công khai thủ tục hành chính tại Bộ phận Một cửa", "1"),
    ("Số hóa hồ sơ, kết quả giải quyết thủ tục hành chính còn hiệu lực", "8"),
    ("Tuyên truyền sử dụng dịch vụ công trực tuyến toàn trình", "8"),
    ("Khảo sát sự hài lòng của người dân, tổ chức", "1"),
    ("Báo cáo công tác cải cách hành chính quý", "1"),
    ("Kiểm tra việc chấp hành kỷ luật, kỷ cương hành chính", "5"),
)
_ID_NAMESPACE = uuid.UUID("0b6a1f0e-5c1d-4f57-9d0e-3a7c9b1e2d44")


@dataclass(frozen=True)
class Scenario:
    """One simulation: which province, which days, how busy, which seed."""

    province: str
    days: int
    start: date
    seed: int = 7
    #: only the first K communes of the province (by code); None = all of them
    communes: int | None = None
    dossiers_per_commune_day: float = 12.0
    survey_share: float = 0.20
    tasks_per_commune: int = 3
    plans: bool = True
    surveys: bool = True
    #: CloudEvents source of the dossier facts: the province's one-stop-shop system
    source: str = ""
    #: nothing is dated at or after this instant (default: the end of the window)
    cutoff: datetime | None = None

    @property
    def window_start(self) -> datetime:
        """00:00 of the first simulated day (UTC+7)."""
        return datetime.combine(self.start, time(0), VN_TZ)

    @property
    def end(self) -> datetime:
        """The cut-off: the end of the window, or ``cutoff`` if earlier."""
        end = self.window_start + timedelta(days=self.days)
        return end if self.cutoff is None else min(end, self.cutoff)

    @property
    def fact_source(self) -> str:
        """The CloudEvents source the facts are sent with."""
        return self.source or f"urn:chiso:simulator:motcua:{self.province}"

    @property
    def run_tag(self) -> str:
        """The prefix of every id this scenario makes (seeded: a re-run re-sends the same ids)."""
        return f"SIM{self.seed}"


@dataclass(frozen=True)
class DossierFact:
    """A dossier fact as a one-stop-shop system publishes it (CloudEvents envelope, key = ``dossier:<id>``)."""

    at: datetime
    envelope: Envelope
    #: the fact's id for its source (the ``Idempotency-Key`` over HTTP)
    fact_id: str


@dataclass(frozen=True)
class SurveyResponse:
    """A completed SIPAS questionnaire about one dossier, from its holder (QR or SMS link)."""

    at: datetime
    unit_code: str
    province_code: str
    event_id: uuid.UUID
    response: SurveyResponseSubmitted


@dataclass(frozen=True)
class PlanCommand:
    """One write to the plans service's HTTP API: ``POST <path>`` with ``body``."""

    at: datetime
    unit_code: str
    path: str
    body: dict[str, Any]


Item = DossierFact | SurveyResponse | PlanCommand


@dataclass
class _Commune:
    unit: Unit
    late: float
    satisfaction: float
    agency: str
    count: int = 0
    plan_rng: random.Random = field(default_factory=random.Random)


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:  # normal approximation: Knuth's loop is slow and underflows for large means
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def generate(
    scenario: Scenario,
    communes: tuple[Unit, ...],
    calendar: WorkingCalendar,
    instrument: InstrumentDoc | None = None,
) -> Iterator[Item]:
    """The scenario's traffic, ordered by simulated time (see the module docstring).

    ``communes`` are the province's communes (``UnitRegistry.communes_of``); ``instrument`` the SIPAS
    version the responses answer (None: no surveys).
    """
    rng = random.Random(scenario.seed)  # noqa: S311 - a seeded simulation, not a secret
    chosen = communes[: scenario.communes] if scenario.communes is not None else communes
    if not chosen:
        msg = f"province {scenario.province!r} has no communes"
        raise ValueError(msg)
    state = [
        _Commune(
            unit=u,
            late=SHARES["late"] * rng.uniform(0.3, 1.7),
            satisfaction=rng.uniform(0.70, 0.95),
            agency=f"000.{int(u.code) % 100:02d}.{int(u.code) // 100 % 100:02d}.H{scenario.province}",
            plan_rng=random.Random(f"{scenario.seed}|plan|{u.code}"),  # noqa: S311 - seeded simulation
        )
        for u in chosen
    ]
    end = scenario.end
    heap: list[tuple[datetime, int, Item]] = []
    seq = 0

    def push(items: list[Item]) -> None:
        nonlocal seq
        for item in sorted(items, key=lambda i: i.at):  # stable: equal times keep lifecycle order
            if item.at < end:
                heapq.heappush(heap, (item.at, seq, item))
                seq += 1

    if scenario.plans and scenario.tasks_per_commune > 0:
        for index, commune in enumerate(state):
            push(_plan(scenario, commune, calendar, index))
    for offset in range(scenario.days):
        day = scenario.start + timedelta(days=offset)
        day_start = datetime.combine(day, time(0), VN_TZ)
        while heap and heap[0][0] < day_start:
            yield heapq.heappop(heap)[2]
        if day_start >= end:
            break
        if not calendar.is_working_day(day):
            continue
        opening = datetime.combine(day, calendar.hours.segments[0][0], VN_TZ)
        for commune in state:
            for _ in range(_poisson(rng, scenario.dossiers_per_commune_day)):
                # mornings are busier: a beta draw over the day's working hours
                received = calendar.add_working_hours(opening, rng.betavariate(1.6, 2.4) * calendar.hours.hours_per_day)
                push(_dossier(scenario, commune, calendar=calendar, instrument=instrument, rng=rng, received=received))
    while heap:
        yield heapq.heappop(heap)[2]


def _dossier(  # noqa: PLR0912, PLR0915 - one dossier's whole life, step by step
    scenario: Scenario,
    commune: _Commune,
    *,
    calendar: WorkingCalendar,
    instrument: InstrumentDoc | None,
    rng: random.Random,
    received: datetime,
) -> list[Item]:
    commune.count += 1
    unit = commune.unit
    dossier_id = f"{scenario.run_tag}-{unit.code}-{received:%y%m%d}-{commune.count:05d}"
    subject = f"dossier:{dossier_id}"
    facts: list[Item] = []
    base = {"dossier_id": dossier_id, "agency_code": commune.agency}

    def fact(payload: EventPayload, at: datetime) -> None:
        fact_id = f"{dossier_id}/{len(facts) + 1}"
        envelope = make_envelope(
            payload,
            id=uuid.uuid5(_ID_NAMESPACE, fact_id),
            source=scenario.fact_source,
            subject=subject,
            time=at,
            unitcode=unit.code,
            provincecode=unit.province_code,
        )
        facts.append(DossierFact(at=at, envelope=envelope, fact_id=fact_id))

    ma_tthc, days = rng.choice(PROCEDURES)
    draw = rng.random()
    channel = Channel.DIRECT
    if draw < SHARES["online"]:
        channel = Channel.ONLINE
    elif draw < SHARES["online"] + SHARES["postal"]:
        channel = Channel.POSTAL
    online = channel is Channel.ONLINE
    applicant = {
        "applicant_type": ApplicantType.ORGANISATION if rng.random() < 0.08 else ApplicantType.INDIVIDUAL,
        "applicant_ref": hashlib.sha256(f"{scenario.seed}|{dossier_id}".encode()).hexdigest(),
        "ma_tthc": ma_tthc,
        "procedure_version": f"QĐ {rng.randint(100, 999)}/QĐ-UBND",
        "channel": channel,
    }
    if online:
        submitted = received - timedelta(hours=rng.uniform(1, 30))
        vneid = rng.random() < 0.7
        fact(
            DossierSubmitted(
                **base,
                **applicant,
                submitted_at=submitted,
                submitted_via_dvcqg=rng.random() < 0.4,
                vneid_authenticated=vneid,
            ),
            submitted,
        )
        if rng.random() < SHARES["refused_of_online"]:
            reason = "Hồ sơ không thuộc thẩm quyền giải quyết"
            fact(DossierRefused(**base, refused_at=received, reason=reason), received)
            return facts
    due = calendar.due_at(received, days, TimeUnit.WORKING_DAYS)
    components = tuple(
        DossierComponent(
            component_code=f"{ma_tthc}-TP{i + 1}",
            digitized=rng.random() < 0.7,
            reused_from_store=rng.random() < 0.1,
            reused_digital_data=rng.random() < 0.2,
        )
        for i in range(rng.randint(1, 4))
    )
    fact(
        DossierReceived(
            **base,
            **applicant,
            received_at=received,
            due_at=due,
            statutory_time=StatutoryTime(value=days, unit=TimeUnit.WORKING_DAYS),
            components=components,
        ),
        received,
    )
    if rng.random() < SHARES["synced"]:
        synced = calendar.add_working_hours(received, rng.uniform(0.05, 1))
        fact(DossierSyncedToDVCQG(**base, synced_at=synced, status_synced=DossierStatus.RECEIVED), synced)

    allowed = calendar.working_hours_between(received, due)  # working hours until the due date
    # the plan in "active" working hours from receipt (time waiting for the applicant comes on top)
    pause = rng.uniform(2, 16) if rng.random() < SHARES["supplement"] else 0.0
    late = rng.random() < commune.late
    share = rng.uniform(1.05, 1.6) if late else rng.uniform(0.2, 0.98)
    active_end = max(allowed * share, 0.5)
    asked_at = rng.uniform(0.1, 0.5) * active_end if pause else None

    def actual(active: float) -> datetime:
        """The instant of an active-time offset: after the supplement request, its wait is added."""
        hours = active + pause if asked_at is not None and active > asked_at else active
        return calendar.add_working_hours(received, hours)

    ending = rng.random()
    if ending < SHARES["withdrawn"] + SHARES["stopped"]:
        active_end = rng.uniform(0.1, 0.6) * active_end
        if asked_at is not None and asked_at >= active_end:
            asked_at, pause = None, 0.0
    # what happens during processing, in order, at sorted active offsets in (0, active_end)
    steps: list[str] = ["step"] * rng.randint(1, 3)
    fees = rng.random() < SHARES["fees"]
    if fees:
        steps.insert(0, "fee_request")
        steps.insert(2, "fee_paid")
    offsets = sorted(rng.uniform(0.02, 0.98) * active_end for _ in steps)
    step_no = 0
    for kind, offset in zip(steps, offsets, strict=True):
        at = actual(offset)
        if kind == "step":
            step_no += 1
            fact(ProcessingStepCompleted(**base, step=_STEPS[(step_no - 1) % len(_STEPS)], completed_at=at), at)
        elif kind == "fee_request":
            line = FeeLine(fee_code="LP1", name="Lệ phí", amount_vnd=50_000)
            fact(FinancialObligationRequested(**base, requested_at=at, amount_vnd=50_000, fee_lines=(line,)), at)
        else:
            paid_online = online and rng.random() < SHARES["paid_online_of_online"]
            fact(
                FeePaid(
                    **base,
                    paid_at=at,
                    amount_vnd=50_000,
                    fee_lines=(FeeLine(fee_code="LP1", name="Lệ phí", amount_vnd=50_000),),
                    paid_online=OnlinePaymentPlatform.DVCQG if paid_online else None,
                ),
                at,
            )
    if asked_at is not None:
        # the request and the return sit between the surrounding steps (nothing else happens meanwhile)
        requested = calendar.add_working_hours(received, asked_at)
        back = calendar.add_working_hours(received, asked_at + pause)
        supplement_id = f"{dossier_id}-BS1"
        fact(
            SupplementRequested(
                **base,
                supplement_id=supplement_id,
                requested_at=requested,
                stage=SupplementStage.PROCESSING,
                content="Bổ sung giấy tờ chứng minh",
            ),
            requested,
        )
        fact(SupplementReceived(**base, supplement_id=supplement_id, received_at=back), back)
    finished = actual(active_end)
    if ending < SHARES["withdrawn"]:
        fact(DossierWithdrawn(**base, withdrawn_at=finished), finished)
        return facts
    if ending < SHARES["withdrawn"] + SHARES["stopped"]:
        fact(ProcessingStopped(**base, stopped_at=finished, reason="Hồ sơ thuộc trường hợp dừng giải quyết"), finished)
        return facts
    if late and rng.random() < SHARES["apology_of_late"]:
        issued = max(calendar.add_working_hours(due, -rng.uniform(1, 8)), received + timedelta(minutes=1))
        if issued < finished:
            new_due = calendar.add_working_hours(finished, rng.uniform(0, 8))
            fact(
                ApologyIssued(
                    **base, issued_at=issued, reason="Hồ sơ cần xác minh thêm", new_due_at=new_due, sequence_no=1
                ),
                issued,
            )
    electronic = rng.random() < SHARES["electronic_result"]
    document = ResultDocument(
        name="Kết quả giải quyết thủ tục hành chính",
        result_code=f"KQ-{dossier_id}" if electronic else None,
        electronic=electronic,
        digitally_signed=electronic,
        synced_to_citizen_store=electronic and rng.random() < 0.5,
    )
    fact(ResultIssued(**base, finished_at=finished, result_docs=(document,)), finished)
    if rng.random() >= SHARES["delivered"]:
        return facts
    delivered = calendar.add_working_hours(finished, rng.uniform(0.5, 8))
    how = DeliveryChannel.ELECTRONIC if online and electronic else DeliveryChannel.IN_PERSON
    fact(ResultDelivered(**base, delivered_at=delivered, delivery_channel=how), delivered)
    if rng.random() < SHARES["synced"]:
        synced = calendar.add_working_hours(delivered, rng.uniform(0.05, 1))
        fact(DossierSyncedToDVCQG(**base, synced_at=synced, status_synced=DossierStatus.RESULT_DELIVERED), synced)
    if rng.random() < SHARES["rated"]:
        rated = calendar.add_working_hours(delivered, rng.uniform(0.1, 4))
        mood = Rating.VERY_SATISFIED if rng.random() < commune.satisfaction else Rating.DISSATISFIED
        fact(DossierRated(**base, rated_at=rated, rated_via=RatingChannel.DVCQG, rating=mood), rated)
    if scenario.surveys and instrument is not None and rng.random() < scenario.survey_share:
        at = calendar.add_working_hours(delivered, rng.uniform(0.5, 16))
        if instrument.in_force(at.date()):
            survey = _survey(
                scenario, commune, instrument=instrument, rng=rng, dossier_id=dossier_id, ma_tthc=ma_tthc, at=at
            )
            facts.append(survey)
    return facts


def _survey(
    scenario: Scenario,
    commune: _Commune,
    *,
    instrument: InstrumentDoc,
    rng: random.Random,
    dossier_id: str,
    ma_tthc: str,
    at: datetime,
) -> SurveyResponse:
    answers, policy_group = instrument.answers(rng, positive_share=commune.satisfaction)
    response = SurveyResponseSubmitted(
        response_id=f"SR-{dossier_id}",
        survey_id=f"SIPAS-{scenario.province}-{at.year}",
        instrument_id=instrument.id,
        instrument_version=instrument.version,
        ma_tthc=ma_tthc,
        policy_group=policy_group,
        channel=SurveyChannel.QR if rng.random() < 0.4 else SurveyChannel.SMS,
        respondent=RespondentProfile.model_validate(instrument.respondent(rng)),
        answers=tuple(Answer(item_id=k, value=v) for k, v in answers.items()),
        linked_dossier_id=dossier_id,
        submitted_at=at,
    )
    return SurveyResponse(
        at=at,
        unit_code=commune.unit.code,
        province_code=commune.unit.province_code,
        event_id=uuid.uuid5(_ID_NAMESPACE, f"survey/{dossier_id}"),
        response=response,
    )


def _plan(scenario: Scenario, commune: _Commune, calendar: WorkingCalendar, index: int) -> list[Item]:
    rng = commune.plan_rng
    unit = commune.unit
    first = calendar.normalize(scenario.window_start) + timedelta(seconds=index)
    year = scenario.start.year
    plan_id = f"{scenario.run_tag}-KH-{unit.code}-{year}"
    out: list[Item] = [
        PlanCommand(
            at=first,
            unit_code=unit.code,
            path="/plans",
            body={
                "plan_id": plan_id,
                "unit_code": unit.code,
                "kind": "annual",
                "title": f"Kế hoạch cải cách hành chính năm {year} của {unit.name}",
                "year": year,
                "document_number": f"{rng.randint(1, 300)}/KH-UBND",
                "document_date": (scenario.start - timedelta(days=rng.randint(1, 20))).isoformat(),
                "issuer": f"Chủ tịch UBND {unit.name}",
            },
        )
    ]
    for number in range(1, scenario.tasks_per_commune + 1):
        title, area = _TASKS[(number - 1 + index) % len(_TASKS)]
        task_id = f"{plan_id}-NV{number:02d}"
        due_day = scenario.start + timedelta(days=rng.randint(0, max(0, scenario.days - 1)))
        due_day = due_day if calendar.is_working_day(due_day) else calendar.next_working_day(due_day)
        out.append(
            PlanCommand(
                at=first + timedelta(milliseconds=number),
                unit_code=unit.code,
                path="/tasks",
                body={
                    "plan_id": plan_id,
                    "task_id": task_id,
                    "title": title,
                    "par_area": area,
                    "assignee_role": "Công chức Văn phòng - Thống kê",
                    "due_date": due_day.isoformat(),
                },
            )
        )
        draw = rng.random()
        if draw >= 0.95:
            continue  # never done
        due_end = datetime.combine(due_day, calendar.hours.segments[-1][1], VN_TZ)
        hours = calendar.working_hours_between(first, due_end)
        if draw < 0.85:
            done = calendar.add_working_hours(first, rng.uniform(0.05, 1.0) * max(hours, 0.1))
        else:
            done = calendar.add_working_hours(due_end, rng.uniform(1, 40))
        done = max(done, first + timedelta(seconds=1))
        out.append(
            PlanCommand(
                at=done,
                unit_code=unit.code,
                path="/task-completions",
                body={"task_id": task_id, "done_at": done.isoformat()},
            )
        )
    return out
