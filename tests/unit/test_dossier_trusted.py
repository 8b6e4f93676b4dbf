"""The verdicts built without validation (services.dossiers.domain.trusted) are what validation gives.

For any values — valid, at the limits, or not valid at all — ``build(cls, **values)`` must return the same
instance as ``cls(**values)`` (same field values and types, same fields set, same JSON) or raise the same
``ValidationError``. The value strategies are derived from the contracts' own field definitions, not from
the tables under test.
"""

from __future__ import annotations

import math
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, ValidationError
from pydantic.fields import FieldInfo

from contracts.base import EventPayload
from contracts.dossiers import (
    ApologyAssessed,
    Channel,
    DossierBecameOverdue,
    DossierResolved,
    DossierStatus,
    OnlinePaymentPlatform,
    TimelinessClass,
)
from eventkit.worktime import VN_TZ
from services.dossiers.domain.trusted import FIELDS, build

VERDICTS = (DossierResolved, DossierBecameOverdue, ApologyAssessed)

#: values of the wrong kind or out of range for some field, and values at the edges of others
JUNK: list[Any] = [
    None,
    "",
    "x",
    "x" * 200,
    "x" * 201,
    "1.001776",
    "1.001776\n",
    "\n1.001776",
    "1.00177",
    "1.0017766",
    "1,001776",
    "\u0661.\u0660\u0660\u0661\u0667\u0667\u0666",  # Arabic-Indic digits: \d matches them
    "1.00\uff11776",  # a full-width digit
    "².001776",
    0,
    1,
    -1,
    2**63,
    0.0,
    -0.0,
    -1e-9,
    1.5,
    math.nan,
    math.inf,
    True,
    False,
    datetime(2026, 3, 2, 8, 0),  # naive
    datetime(2026, 3, 2, 8, 0, tzinfo=VN_TZ),
    datetime(2026, 3, 2, 1, 0, tzinfo=UTC),
    "2026-03-02T08:00:00+07:00",
    "received",
    "direct",
    "late",
    "dvcqg",
    "nope",
    Channel.ONLINE,
    DossierStatus.PROCESSED,
    TimelinessClass.EARLY,
    OnlinePaymentPlatform.LOCAL_GATEWAY,
    b"x",
    [],
]


def _kinds(info: FieldInfo) -> tuple[Any, bool]:
    annotation = info.annotation
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not NoneType]
        assert len(args) == 1
        return args[0], True
    return annotation, False


def _valid(info: FieldInfo) -> st.SearchStrategy[Any]:
    base, optional = _kinds(info)
    limits = {type(m).__name__: m for m in info.metadata}
    if base is str:
        pattern = next((getattr(m, "pattern", None) for m in info.metadata if getattr(m, "pattern", None)), None)
        if pattern is not None:
            strategy: st.SearchStrategy[Any] = st.from_regex(pattern, fullmatch=True)
        else:
            low = limits["MinLen"].min_length if "MinLen" in limits else 0
            high = limits["MaxLen"].max_length if "MaxLen" in limits else 300
            strategy = st.text(min_size=max(0, low - 1), max_size=high + 1)
    elif base is AwareDatetime:
        zones = st.sampled_from([UTC, VN_TZ, timezone(timedelta(hours=-3, minutes=-30))])
        strategy = st.datetimes(timezones=st.one_of(st.none(), zones))
    elif base is bool:
        strategy = st.booleans()
    elif base is int:
        strategy = st.integers(-2, 10**12)
    elif base is float:
        strategy = st.floats(allow_nan=True, allow_infinity=True)
    elif isinstance(base, type) and issubclass(base, Enum):
        members = list(base)
        strategy = st.sampled_from([*members, *(m.value for m in members)])
    else:  # pragma: no cover - a new kind of field: this test must learn it
        pytest.fail(f"no strategy for {info.annotation}")
    return st.one_of(strategy, st.none()) if optional else strategy


@st.composite
def values_of(draw: st.DrawFn, cls: type[EventPayload]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        roll = draw(st.integers(0, 19))
        if roll == 0:
            continue  # missing (a default, or a refusal)
        out[name] = draw(st.sampled_from(JUNK)) if roll == 1 else draw(_valid(info))
    if draw(st.integers(0, 29)) == 0:
        out["unexpected"] = 1
    return out


def _same(fast: EventPayload, slow: EventPayload) -> None:
    assert type(fast) is type(slow)
    assert fast == slow
    assert list(fast.__dict__) == list(slow.__dict__)
    for name, value in slow.__dict__.items():
        mine = fast.__dict__[name]
        assert type(mine) is type(value), name
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(mine)
        else:
            assert mine == value, name
        if isinstance(value, datetime):
            assert mine.tzinfo == value.tzinfo, name
            assert mine.isoformat() == value.isoformat(), name
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.__pydantic_extra__ == slow.__pydantic_extra__
    assert fast.__pydantic_private__ == slow.__pydantic_private__
    assert fast.model_dump_json() == slow.model_dump_json()
    assert hash(fast) == hash(slow)
    with pytest.raises(ValidationError):
        fast.dossier_id = "changed"  # type: ignore[attr-defined] # frozen, as the validated one


def _compare(cls: type[EventPayload], values: dict[str, Any]) -> None:
    try:
        slow = cls(**values)
    except ValidationError as refused:
        expected = refused.errors()
    else:
        _same(build(cls, **values), slow)
        return
    with pytest.raises(ValidationError) as fast_refused:
        build(cls, **values)
    assert fast_refused.value.errors() == expected


def test_the_field_tables_are_the_contracts_fields_in_order() -> None:
    for cls in VERDICTS:
        assert list(FIELDS[cls]) == list(cls.model_fields)
        # nothing validation would add beyond the fields' own checks
        assert not cls.__pydantic_decorators__.model_validators
        assert not cls.__pydantic_decorators__.field_validators
        assert cls.model_config.get("extra") == "forbid"
        assert cls.__private_attributes__ == {}


@pytest.mark.parametrize("cls", VERDICTS, ids=lambda c: c.__name__)
@settings(max_examples=1500, deadline=None)
@given(data=st.data())
def test_build_is_validation_for_any_values(cls: type[EventPayload], data: st.DataObject) -> None:
    _compare(cls, data.draw(values_of(cls)))


@pytest.mark.parametrize("cls", VERDICTS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("junk", JUNK, ids=repr)
def test_build_is_validation_with_each_edge_value_in_each_field(cls: type[EventPayload], junk: Any) -> None:
    good = _VALID[cls]
    _compare(cls, good)
    for name in cls.model_fields:
        _compare(cls, {**good, name: junk})
        _compare(cls, {k: v for k, v in good.items() if k != name})


_T = datetime(2026, 3, 2, 8, 0, tzinfo=VN_TZ)
_VALID: dict[type[EventPayload], dict[str, Any]] = {
    DossierResolved: {
        "dossier_id": "000.31.20.H56-260302-0001",
        "agency_code": "000.31.20.H56",
        "ma_tthc": "1.001776",
        "channel": Channel.DIRECT,
        "received_at": _T,
        "due_at": _T + timedelta(days=3),
        "resolved_at": _T + timedelta(days=1),
        "final_status": DossierStatus.PROCESSED,
        "report06_class": TimelinessClass.EARLY,
        "on_time_766": True,
        "supplement_working_hours": 0.0,
        "supplement_requests": 0,
        "processing_working_hours": 9.5,
        "ruleset_version": "nd61-2018@1+cal:vn-2026",
        "submitted_via_dvcqg": None,
        "vneid_authenticated": None,
        "fee_vnd": 0,
        "paid_online": "dvcqg",
        "components": 2,
        "components_digitized": 1,
        "components_reused": 0,
        "electronic_result": False,
    },
    DossierBecameOverdue: {
        "dossier_id": "d-1",
        "agency_code": "a",
        "ma_tthc": "2.000635",
        "due_at": _T,
        "detected_at": _T + timedelta(hours=5),
        "status": DossierStatus.PROCESSING,
        "ruleset_version": "nd118-2025@1/01+cal:vn-2026",
    },
    ApologyAssessed: {
        "dossier_id": "d-1",
        "agency_code": "a",
        "original_due_at": _T,
        "resolved_at": None,
        "apologies_issued": 1,
        "issued": True,
        "before_original_due": True,
        "at_least_one_working_day_before": False,
        "single_reschedule": True,
        "result_by_rescheduled_due": False,
        "assessed_at": _T,
        "ruleset_version": "x",
    },
}


def test_the_verdicts_of_generated_dossiers_are_those_validation_gives() -> None:
    """Through the real domain: every verdict judged on a month of generated dossiers, rebuilt by validation
    from its own given values, is the same object."""
    from bench.dossiers import _settings  # noqa: PLC0415
    from bench.dvcqg_gen import write_jsonl  # noqa: PLC0415
    from eventkit.worktime import WorkingCalendar  # noqa: PLC0415
    from services.dossiers.compose import build_intake  # noqa: PLC0415
    from services.dossiers.dvcqg import iter_records, map_sync_body  # noqa: PLC0415

    calendar = WorkingCalendar.load()
    intake = build_intake(_settings("unused"), store=None)  # type: ignore[arg-type] # judged only, not stored
    seen: set[type] = set()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(Path(tmp) / "export.jsonl", 400, seed=5)
        streams: dict[str, Any] = {}
        ids: set[Any] = set()
        for _, record in iter_records(path):
            group = map_sync_body(record, source="t", default_unit=None, due_at_of=calendar.due_at)  # type: ignore[arg-type]
            prepared = intake._prepare(group)
            assert not isinstance(prepared, str)
            outcome = intake._judge_group(prepared, streams, ids, datetime.now(UTC) + timedelta(days=400))
            for event in outcome.events:
                if type(event.data) in FIELDS:
                    seen.add(type(event.data))
                    given = {k: getattr(event.data, k) for k in event.data.model_fields_set}
                    _same(event.data, type(event.data)(**given))
    assert seen == set(VERDICTS)
