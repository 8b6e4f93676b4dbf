"""The per-dossier read model of the scoring service and the counters each dossier contributes to.

Why a per-dossier row and not just counters: the dossiers service re-emits a verdict when a late fact or a
new ruleset changes it (``resolved`` "again, with the same stream"), and facts arrive late and out of
order. A counter that only adds would count such a dossier twice, or in the wrong period. So every dossier
keeps the list of contributions it made (counter key, day, value); when an event changes the dossier, the
projection subtracts the old list and adds the new one. A re-emitted verdict therefore *replaces* the old
one, and a corrected date moves the dossier to the period it belongs to.

Folding reads the canonical facts (received, refused, submitted, fees, results, sync) and the derived
verdicts (``resolved``, ``became_overdue``, ``apology_assessed``). Timeliness is never re-judged here: the
verdicts come from the dossiers service, which owns the rules (rulesets by receipt date, working calendar).
When the verdict carries a service fact (fee, online payment, e-result, ...), it wins over what the raw
facts said, since it is the dossiers service's folded view at resolution.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, NamedTuple

from contracts.base import EventPayload
from contracts.dossiers import (
    ApologyAssessed,
    DossierBecameOverdue,
    DossierReceived,
    DossierRefused,
    DossierResolved,
    DossierStatus,
    DossierSubmitted,
    DossierSyncedToDVCQG,
    DossierWithdrawn,
    FeePaid,
    FinancialObligationRequested,
    ProcessingStopped,
    ResultDelivered,
    ResultIssued,
)

__all__ = [
    "EVENT_TYPES",
    "RESULT_STATUSES",
    "STATE_FIELDS",
    "Contribution",
    "DossierRow",
    "UnitStamp",
    "contributions",
    "fold",
    "fold_all",
]

#: statuses with a result (Đã xử lý xong / Đã trả kết quả): report 06 classes, e-result, average time
RESULT_STATUSES = frozenset({DossierStatus.PROCESSED.value, DossierStatus.RESULT_DELIVERED.value})

_FOLDED: tuple[type[EventPayload], ...] = (
    DossierSubmitted,
    DossierReceived,
    DossierRefused,
    FinancialObligationRequested,
    FeePaid,
    ProcessingStopped,
    DossierWithdrawn,
    ResultIssued,
    ResultDelivered,
    DossierSyncedToDVCQG,
    DossierResolved,
    DossierBecameOverdue,
    ApologyAssessed,
)
#: the dossier events this read model folds (others on the topic are skipped by the runner)
EVENT_TYPES = frozenset(cls.event_type for cls in _FOLDED)


@dataclass(frozen=True, slots=True)
class UnitStamp:
    """Where an event counts: the current unit and province, and the pre-2025 district when there is one."""

    unitcode: str
    provincecode: str
    legacy_unit: str | None = None
    legacy_district: str | None = None


class Contribution(NamedTuple):
    """One dossier's share of one counter: ``value`` added to ``key`` in the periods containing ``day``.

    A named tuple rather than a dataclass: a batch builds tens of thousands of them (about 15 per dossier).
    """

    key: str
    day: date
    value: float = 1.0


@dataclass(frozen=True, slots=True)
class DossierRow:
    """What the scoring service knows about one dossier (None = not known yet)."""

    dossier_id: str
    unit: UnitStamp
    agency_code: str | None = None
    ma_tthc: str | None = None
    channel: str | None = None
    status: str | None = None
    received_at: datetime | None = None
    due_at: datetime | None = None
    refused_at: datetime | None = None
    submitted_via_dvcqg: bool | None = None
    vneid_authenticated: bool | None = None
    components: int | None = None
    components_digitized: int | None = None
    components_reused_data: int | None = None
    components_from_store: int | None = None
    fee_vnd: int | None = None
    paid_online: str | None = None
    electronic_result: bool | None = None
    result_to_store: bool | None = None
    synced_to_dvcqg: bool = False
    # the resolved verdict (latest wins)
    resolved_at: datetime | None = None
    final_status: str | None = None
    report06_class: str | None = None
    on_time_766: bool | None = None
    supplement_requests: int | None = None
    processing_working_hours: float | None = None
    verdict_ruleset: str | None = None
    # the became-overdue verdict: the (effective) due date that passed while the dossier was open
    overdue_due_at: datetime | None = None
    # the apology assessment of a late dossier (DOMAIN §3.6)
    apology: Mapping[str, bool] | None = None
    apology_due_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-able form for the read model's ``state`` column (instants as ISO 8601)."""
        out: dict[str, Any] = {}
        for name in STATE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                if name in _INSTANTS:
                    value = value.isoformat()
                elif name == "apology":
                    value = dict(value)
            out[name] = value
        return out

    @classmethod
    def from_json(cls, unit: UnitStamp, data: Mapping[str, Any]) -> DossierRow:
        """The row stored by :meth:`to_json` (unknown keys from a newer version are ignored)."""
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name not in _STATE_SET:
                continue
            if name in _INSTANTS and isinstance(value, str):
                values[name] = datetime.fromisoformat(value)
            else:
                values[name] = value
        return cls(unit=unit, **values)


#: the row's fields in declaration order (``unit`` is stored in columns of its own, not in the state)
_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(DossierRow))
#: the fields kept in the read model's JSON ``state`` column
STATE_FIELDS: tuple[str, ...] = tuple(name for name in _FIELDS if name != "unit")
_STATE_SET = frozenset(STATE_FIELDS)
_INSTANTS = frozenset(name for name in STATE_FIELDS if name.endswith("_at"))


_OPEN = "open"


def fold(row: DossierRow | None, dossier_id: str, unit: UnitStamp, data: EventPayload) -> DossierRow:
    """The row after one more event of the dossier (pure; the unit of the latest event wins)."""
    values = _values(row, dossier_id)
    values["unit"] = unit
    _evolve(values, data)
    return DossierRow(**values)


def fold_all(row: DossierRow | None, dossier_id: str, events: Iterable[tuple[UnitStamp, EventPayload]]) -> DossierRow:
    """:func:`fold` over a dossier's events in order, building the row once (the projection's hot path).

    Derived events (verdicts) may omit the pre-2025 unit code: the dossier keeps the one it was received with.
    """
    values = _values(row, dossier_id)
    for stamp, data in events:
        current: UnitStamp | None = values.get("unit")
        if current is not None and stamp.legacy_unit is None and current.legacy_unit is not None:
            values["unit"] = UnitStamp(stamp.unitcode, stamp.provincecode, current.legacy_unit, current.legacy_district)
        else:
            values["unit"] = stamp
        _evolve(values, data)
    return DossierRow(**values)


def _values(row: DossierRow | None, dossier_id: str) -> dict[str, Any]:
    """The fields of ``row`` as a dict the folds update in place (one row built per dossier and batch)."""
    if row is None:
        return {"dossier_id": dossier_id}
    return {name: getattr(row, name) for name in _FIELDS}


def _evolve(v: dict[str, Any], data: EventPayload) -> None:
    # dispatch on the exact type (pydantic models' isinstance goes through ABCMeta: slow on the hot path)
    handler = _HANDLERS.get(type(data))
    if handler is None:
        handler = next((h for cls, h in _HANDLERS.items() if isinstance(data, cls)), None)
    if handler is not None:
        handler(v, data)


def _submitted(v: dict[str, Any], data: Any) -> None:
    v.update(
        agency_code=data.agency_code,
        ma_tthc=data.ma_tthc,
        channel=data.channel.value,
        submitted_via_dvcqg=data.submitted_via_dvcqg,
        vneid_authenticated=data.vneid_authenticated,
        status=v.get("status") or DossierStatus.SUBMITTED.value,
    )


def _received(v: dict[str, Any], data: Any) -> None:
    components = data.components
    v.update(
        agency_code=data.agency_code,
        ma_tthc=data.ma_tthc,
        channel=data.channel.value,
        received_at=data.received_at,
        due_at=data.due_at,
        components=len(components),
        components_digitized=sum(c.digitized for c in components),
        components_reused_data=sum(c.reused_digital_data for c in components),
        components_from_store=sum(c.reused_from_store for c in components),
        status=v.get("status") if v.get("resolved_at") else DossierStatus.RECEIVED.value,
    )


def _refused(v: dict[str, Any], data: Any) -> None:
    v.update(agency_code=data.agency_code, refused_at=data.refused_at, status=DossierStatus.NOT_RECEIVED.value)


def _fee_requested(v: dict[str, Any], data: Any) -> None:
    v["fee_vnd"] = max(v.get("fee_vnd") or 0, data.amount_vnd)


def _fee_paid(v: dict[str, Any], data: Any) -> None:
    v["fee_vnd"] = max(v.get("fee_vnd") or 0, data.amount_vnd)
    if data.paid_online:
        v["paid_online"] = data.paid_online.value


def _result_issued(v: dict[str, Any], data: Any) -> None:
    v.update(
        electronic_result=any(d.electronic for d in data.result_docs),
        result_to_store=any(d.synced_to_citizen_store for d in data.result_docs),
        status=DossierStatus.PROCESSED.value,
    )


def _status(status: DossierStatus) -> Any:
    def handler(v: dict[str, Any], _data: Any) -> None:
        v["status"] = status.value

    return handler


def _synced(v: dict[str, Any], _data: Any) -> None:
    v["synced_to_dvcqg"] = True


def _overdue(v: dict[str, Any], data: Any) -> None:
    v["overdue_due_at"] = data.due_at


def _apology(v: dict[str, Any], data: Any) -> None:
    v["apology"] = {
        "issued": data.issued,
        "before_original_due": data.before_original_due,
        "at_least_one_working_day_before": data.at_least_one_working_day_before,
        "single_reschedule": data.single_reschedule,
        "result_by_rescheduled_due": data.result_by_rescheduled_due,
    }
    v["apology_due_at"] = data.original_due_at


def _resolved(v: dict[str, Any], data: Any) -> None:
    status = v.get("status")
    v.update(
        agency_code=data.agency_code,
        ma_tthc=data.ma_tthc,
        channel=data.channel.value,
        received_at=data.received_at,
        due_at=data.due_at,
        resolved_at=data.resolved_at,
        final_status=data.final_status.value,
        report06_class=data.report06_class.value if data.report06_class else None,
        on_time_766=data.on_time_766,
        supplement_requests=data.supplement_requests,
        processing_working_hours=data.processing_working_hours,
        verdict_ruleset=data.ruleset_version,
    )
    # the verdict's service facts are optional (verdicts older than the fields carry none): keep the raw view
    for name in ("submitted_via_dvcqg", "vneid_authenticated", "fee_vnd", "electronic_result"):
        value = getattr(data, name)
        if value is not None:
            v[name] = value
    if data.paid_online is not None:
        v["paid_online"] = data.paid_online.value
    if data.components is not None:
        v["components"] = data.components
    if data.components_digitized is not None:
        v["components_digitized"] = data.components_digitized
    if status is None or status in (DossierStatus.RECEIVED.value, DossierStatus.SUBMITTED.value):
        v["status"] = data.final_status.value


_HANDLERS: dict[type[EventPayload], Callable[[dict[str, Any], Any], None]] = {
    DossierSubmitted: _submitted,
    DossierReceived: _received,
    DossierRefused: _refused,
    FinancialObligationRequested: _fee_requested,
    FeePaid: _fee_paid,
    ResultIssued: _result_issued,
    ResultDelivered: _status(DossierStatus.RESULT_DELIVERED),
    ProcessingStopped: _status(DossierStatus.STOPPED),
    DossierWithdrawn: _status(DossierStatus.WITHDRAWN),
    DossierSyncedToDVCQG: _synced,
    DossierResolved: _resolved,
    DossierBecameOverdue: _overdue,
    ApologyAssessed: _apology,
}


def _has_result(row: DossierRow) -> bool:
    return row.final_status in RESULT_STATUSES if row.resolved_at else row.status in RESULT_STATUSES


def contributions(row: DossierRow) -> tuple[Contribution, ...]:
    """Every counter this dossier adds to, with the day (UTC+7) that decides the period.

    Anchors (DOMAIN §3.3, §5.3): received-side counters (report 06 received, channels, the 766 shares of
    received dossiers) by NgayTiepNhan; outcome counters (report 06 classes, withdrawn / stopped, 766 2.1,
    4.1) by the end time of the verdict; refusal at reception by NgayTuChoi; apology compliance by the end
    time, or by the original due date while the late dossier is still open.
    """
    out: list[Contribution] = []
    add = out.append
    if row.received_at is not None:
        day = _local_day(row.received_at)
        out.extend([_new(Contribution, (c, day, 1.0)) for c in _received_side(row)])
        if row.final_status in RESULT_STATUSES and row.processing_working_hours is not None:
            # F766 2.2: dossiers whose processing started in the period, finished or not in it
            add(Contribution("r06.processing.count", day))
            add(Contribution("r06.processing.hours", day, row.processing_working_hours))
    elif row.refused_at is not None:
        add(Contribution("r06.refused", _local_day(row.refused_at)))
    if row.resolved_at is not None and row.received_at is not None:
        end = _local_day(row.resolved_at)
        out.extend([_new(Contribution, (c, end, 1.0)) for c in _outcome_side(row)])
    if row.apology is not None:
        anchor = row.resolved_at or row.apology_due_at
        if anchor is not None:
            day = _local_day(anchor)
            add(Contribution("apology.late", day))
            for name, met in sorted(row.apology.items()):
                if met:
                    add(Contribution(f"apology.{name}", day))
    return tuple(out)


#: builds a Contribution without the named tuple's Python-level ``__new__`` (tens of thousands per batch)
_new = tuple.__new__
#: Asia/Ho_Chi_Minh has been UTC+7 without daylight saving since 1975: the fixed offset gives the same
#: days as :func:`~services.scoring.domain.activity.local_day` for every date a dossier can carry, cheaper
_VN = timezone(timedelta(hours=7))


def _local_day(instant: datetime) -> date:
    return instant.astimezone(_VN).date()


def _received_side(row: DossierRow) -> Iterable[str]:
    yield "r06.received"
    if row.channel is not None:
        yield f"r06.received.{row.channel}"
    has_result = _has_result(row)
    # 766 3.3 / 4.2: "an electronic result when the TTHC requires a paper result"; without the TTHC
    # catalogue every result is taken as required, so a dossier with a paper-only result fails [I]
    result_ok = (not has_result) or row.electronic_result is True
    if row.channel == "online" and result_ok:
        yield "d766.3_3.online"
    if row.synced_to_dvcqg:
        yield "d766.1_4.synced"
    if row.fee_vnd is not None and row.fee_vnd > 0:
        yield "d766.3_6.fee"
        if row.ma_tthc:
            yield f"d766.3_5b.fee_tthc:{row.ma_tthc}"
        if row.paid_online is not None:
            yield "d766.3_6.paid_online"
            if row.ma_tthc:
                yield f"d766.3_5b.paid_tthc:{row.ma_tthc}"
    if (row.components_digitized or 0) >= 1 and result_ok:
        yield "d766.4_2.digitised"
    if (row.components_reused_data or 0) >= 1:
        yield "d766.4_3.reused"
    if (row.components_from_store or 0) >= 1 or row.result_to_store:
        yield "d766.4_4.store"
    if row.vneid_authenticated:
        yield "d766.4_5b.vneid"


def _outcome_side(row: DossierRow) -> Iterable[str]:
    final = row.final_status
    if row.report06_class is not None and final in RESULT_STATUSES:
        yield f"r06.resolved.{row.report06_class}"
    elif final == DossierStatus.WITHDRAWN.value:
        yield "r06.withdrawn"
    elif final == DossierStatus.STOPPED.value:
        yield "r06.stopped"
    elif final == DossierStatus.NOT_RECEIVED.value:
        yield "r06.refused"
    if row.on_time_766 is not None:
        yield "d766.2_1.resolved"
        if row.on_time_766:
            yield "d766.2_1.on_time"
    if final in RESULT_STATUSES:
        yield "d766.4_1.result"
        if row.electronic_result:
            yield "d766.4_1.e_result"
