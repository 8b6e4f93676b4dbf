"""The per-dossier read model: what each dossier contributes to which counter and period, and that a
re-emitted or corrected verdict replaces the old contribution instead of adding to it."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta, timezone

from contracts.dossiers import (
    EVENTS,
    ApologyAssessed,
    Channel,
    DossierBecameOverdue,
    DossierComponent,
    DossierReceived,
    DossierRefused,
    DossierResolved,
    DossierStatus,
    StatutoryTime,
    TimelinessClass,
    TimeUnit,
)
from services.scoring.domain.dossier import (
    EVENT_TYPES,
    Contribution,
    DossierRow,
    UnitStamp,
    contributions,
    fold,
    fold_all,
)

VN = timezone(timedelta(hours=7))
UNIT = UnitStamp("00004", "01")
BASE = {"dossier_id": "D-1", "agency_code": "000.04.01.H26"}


def received(channel=Channel.ONLINE, at=datetime(2026, 3, 31, 23, 30, tzinfo=VN)) -> DossierReceived:
    return DossierReceived(
        **BASE,
        channel=channel,
        ma_tthc="2.000635",
        procedure_version="QD-1",
        applicant_type="individual",
        applicant_ref="a" * 64,
        received_at=at,
        due_at=at + timedelta(days=2),
        statutory_time=StatutoryTime(value=4, unit=TimeUnit.WORKING_HOURS),
        components=(
            DossierComponent(component_code="TP1", digitized=True, reused_from_store=False, reused_digital_data=False),
            DossierComponent(component_code="TP2", digitized=True, reused_from_store=True, reused_digital_data=True),
        ),
    )


def resolved(klass: TimelinessClass, at: datetime, *, on_time: bool = True, **service) -> DossierResolved:
    return DossierResolved(
        **BASE,
        ma_tthc="2.000635",
        channel=Channel.ONLINE,
        received_at=datetime(2026, 3, 31, 23, 30, tzinfo=VN),
        due_at=datetime(2026, 4, 2, 23, 30, tzinfo=VN),
        resolved_at=at,
        final_status=DossierStatus.RESULT_DELIVERED,
        report06_class=klass,
        on_time_766=on_time,
        supplement_working_hours=0,
        supplement_requests=0,
        processing_working_hours=3.5,
        ruleset_version="t-1",
        **service,
    )


def keys(row: DossierRow) -> dict[str, date]:
    return {c.key: c.day for c in contributions(row)}


def test_a_received_dossier_counts_on_its_vietnamese_receipt_day() -> None:
    row = fold(None, "D-1", UNIT, received())
    got = keys(row)
    # 23:30 UTC+7 on 31/03: March, whatever offset the producer wrote
    assert got["r06.received"] == date(2026, 3, 31)
    assert got["r06.received.online"] == date(2026, 3, 31)
    assert {"d766.3_3.online", "d766.4_2.digitised", "d766.4_3.reused", "d766.4_4.store"} <= set(got)
    assert "d766.2_1.resolved" not in got  # still open: counted live at query time, not here


def test_a_re_emitted_verdict_replaces_the_old_one() -> None:
    row = fold(None, "D-1", UNIT, received())
    first = fold(row, "D-1", UNIT, resolved(TimelinessClass.LATE, datetime(2026, 4, 3, 9, tzinfo=VN), on_time=False))
    again = fold(first, "D-1", UNIT, resolved(TimelinessClass.EARLY, datetime(2026, 4, 1, 9, tzinfo=VN)))
    made = [c.key for c in contributions(again)]
    assert made.count("d766.2_1.resolved") == 1
    assert "r06.resolved.early" in made
    assert "r06.resolved.late" not in made
    assert "d766.2_1.on_time" in made


def test_a_paper_only_result_fails_the_online_and_digitisation_conditions() -> None:
    row = fold(
        fold(None, "D-1", UNIT, received()),
        "D-1",
        UNIT,
        resolved(TimelinessClass.EARLY, datetime(2026, 4, 1, 9, tzinfo=VN), electronic_result=False),
    )
    got = keys(row)
    assert "d766.4_1.result" in got
    assert "d766.4_1.e_result" not in got
    assert "d766.3_3.online" not in got
    assert "d766.4_2.digitised" not in got
    assert got["r06.processing.count"] == date(2026, 3, 31)  # F766 2.2: by the start of processing


def test_fees_and_online_payment_come_from_the_verdict() -> None:
    row = fold(
        fold(None, "D-1", UNIT, received()),
        "D-1",
        UNIT,
        resolved(
            TimelinessClass.ON_TIME,
            datetime(2026, 4, 1, 9, tzinfo=VN),
            fee_vnd=8000,
            paid_online="dvcqg",
            vneid_authenticated=True,
        ),
    )
    got = keys(row)
    assert {
        "d766.3_6.fee",
        "d766.3_6.paid_online",
        "d766.3_5b.fee_tthc:2.000635",
        "d766.3_5b.paid_tthc:2.000635",
        "d766.4_5b.vneid",
    } <= set(got)


def test_refused_at_reception_is_not_received() -> None:
    row = fold(
        None,
        "D-2",
        UNIT,
        DossierRefused(
            **{**BASE, "dossier_id": "D-2"}, refused_at=datetime(2026, 3, 17, 14, 20, tzinfo=VN), reason="x"
        ),
    )
    assert keys(row) == {"r06.refused": date(2026, 3, 17)}


def test_overdue_and_apology_verdicts() -> None:
    row = fold(None, "D-1", UNIT, received())
    due = datetime(2026, 4, 2, 23, 30, tzinfo=VN)
    row = fold(
        row,
        "D-1",
        UNIT,
        DossierBecameOverdue(
            **BASE,
            ma_tthc="2.000635",
            due_at=due,
            detected_at=due,
            status=DossierStatus.PROCESSING,
            ruleset_version="t",
        ),
    )
    row = fold(
        row,
        "D-1",
        UNIT,
        ApologyAssessed(
            **BASE,
            original_due_at=due,
            apologies_issued=1,
            issued=True,
            before_original_due=True,
            at_least_one_working_day_before=False,
            single_reschedule=True,
            result_by_rescheduled_due=False,
            assessed_at=due,
            ruleset_version="t",
        ),
    )
    assert row.overdue_due_at == due
    got = keys(row)
    assert got["apology.late"] == date(2026, 4, 2)  # still open: the period it fell due
    assert "apology.before_original_due" in got
    assert "apology.at_least_one_working_day_before" not in got


def test_rows_survive_their_json_form() -> None:
    row = fold(
        fold(None, "D-1", UNIT, received()),
        "D-1",
        UNIT,
        resolved(TimelinessClass.EARLY, datetime(2026, 4, 1, 9, tzinfo=VN)),
    )
    again = DossierRow.from_json(UNIT, row.to_json())
    assert again == row
    assert contributions(again) == contributions(row)


def test_folded_types_are_contract_types() -> None:
    assert {cls.event_type for cls in EVENTS} >= EVENT_TYPES
    assert "vn.cchc.dossier.resolved" in EVENT_TYPES


def test_legacy_codes_resolve_to_their_pre_2025_district() -> None:
    from services.scoring.app import legacy_district_of  # noqa: PLC0415 - loads the unit registry

    assert legacy_district_of("00004") == "001"  # a ward of quận Ba Đình (Hà Nội) before 2025
    assert legacy_district_of("001") == "001"
    assert legacy_district_of("01") is None  # a province has no district


def test_folding_a_batch_at_once_equals_folding_event_by_event_and_keeps_the_legacy_unit() -> None:
    legacy = UnitStamp("00004", "01", "00010", "001")
    late = datetime(2026, 4, 3, 9, tzinfo=VN)
    events = [
        (legacy, received()),
        (UNIT, resolved(TimelinessClass.LATE, late, on_time=False, fee_vnd=5000)),  # a verdict without legacy code
        (UNIT, resolved(TimelinessClass.EARLY, datetime(2026, 4, 1, 9, tzinfo=VN))),  # re-emitted: replaces
    ]
    one_by_one = None
    for stamp, data in events:
        one_by_one = fold(one_by_one, "D-1", stamp, data)
    at_once = fold_all(None, "D-1", events)
    assert at_once.unit == legacy  # the dossier keeps the pre-2025 code it was received with
    assert one_by_one is not None
    assert at_once == dataclasses.replace(one_by_one, unit=legacy)
    assert contributions(at_once) == contributions(one_by_one)
    # and continuing from a stored row gives the same row as folding everything in one go
    assert fold_all(fold_all(None, "D-1", events[:1]), "D-1", events[1:]) == at_once


def test_contributions_are_plain_key_day_value_triples() -> None:
    row = fold(None, "D-1", UNIT, received())
    made = contributions(row)
    assert all(isinstance(c, Contribution) and len(c) == 3 and c.value == 1.0 for c in made)
    assert made[0] == Contribution("r06.received", date(2026, 3, 31))
    # the stored form (three parallel arrays) reads back to equal contributions
    keys_, days, values = zip(*made, strict=True)
    assert tuple(map(Contribution, keys_, days, values)) == made


def test_the_stored_state_text_is_the_rows_json_form() -> None:
    from services.scoring.projections import _state_json  # noqa: PLC0415 - the writer's encoding, tested here

    row = fold(
        fold(None, "D-1", UNIT, received()),
        "D-1",
        UNIT,
        resolved(
            TimelinessClass.LATE,
            datetime(2026, 4, 3, 9, 15, 30, 123456, tzinfo=UTC),
            on_time=False,
            fee_vnd=8000,
            paid_online="dvcqg",
        ),
    )
    row = dataclasses.replace(
        row,
        agency_code='Sở "Tư pháp" \\ Hà Nội',
        apology={"issued": True, "single_reschedule": False},
        processing_working_hours=12.75,
    )
    for value in (row, DossierRow(dossier_id="D-2", unit=UNIT)):
        text = _state_json(value)
        assert json.loads(text) == json.loads(json.dumps(value.to_json()))
        assert DossierRow.from_json(UNIT, json.loads(text)) == value
