"""The verdicts (derived facts) built without pydantic's validation when their values plainly pass it.

Every dossier that ends gets a ``DossierResolved`` (23 fields) and often an ``ApologyAssessed``: validating
them cost ≈ 18 µs each on the intake's hot path, and ``model_construct`` is slower still (pydantic 2.13).
Their values come from the domain's own arithmetic over facts that were validated on the way in, so they
nearly always pass. :func:`build` checks each value with a *conservative* test (exact type, range, length:
a sufficient condition for pydantic to accept it and return it unchanged, or the enum member a text value
names) and then fills the instance as validation would; when any value fails its test, it calls the model
(full validation: the same object, or the same ``ValidationError``). So the result is always what
``cls(**values)`` gives — ``tests/unit/test_dossier_trusted.py`` checks it on generated values, valid and
not, and that the field tables below match the contracts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

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

__all__ = ["FIELDS", "build"]

_M = TypeVar("_M", bound=EventPayload)

#: a value's test failed: validate instead
_NO: Any = object()

_ASCII_DIGITS = frozenset("0123456789")


def _id(v: Any) -> Any:
    """``_Id``: text of 1..200 characters."""
    return v if type(v) is str and 0 < len(v) <= 200 else _NO


def _ma_tthc(v: Any) -> Any:
    """``MaTTHC`` (``^\\d\\.\\d{6}$``): checked as eight ASCII characters ``d.dddddd``."""
    if type(v) is str and len(v) == 8 and v[1] == "." and v[0] in _ASCII_DIGITS:
        tail = v[2:]
        if tail.isascii() and tail.isdigit():
            return v
    return _NO


def _aware(v: Any) -> Any:
    """``AwareDatetime``: a plain datetime with a UTC offset."""
    return v if type(v) is datetime and v.utcoffset() is not None else _NO


def _bool(v: Any) -> Any:
    return v if type(v) is bool else _NO


def _count(v: Any) -> Any:
    """``int`` with ``ge=0`` (a bool is not taken for an int here)."""
    return v if type(v) is int and v >= 0 else _NO


def _hours(v: Any) -> Any:
    """``float`` with ``ge=0``, finite (an int would be converted by validation: validated instead)."""
    return v if type(v) is float and v >= 0.0 and math.isfinite(v) else _NO


def _enum(cls: type[Enum]) -> Callable[[Any], Any]:
    members = cls._value2member_map_

    def check(v: Any) -> Any:
        # a member, or the plain text of a member's value (lax validation gives the member for it)
        if type(v) is cls:
            return v
        if type(v) is str:
            return members.get(v, _NO)
        return _NO

    return check


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def optional(v: Any) -> Any:
        return None if v is None else check(v)

    return optional


#: the test of each field of each verdict, in the contract's field order (a test compares them)
FIELDS: Mapping[type[EventPayload], Mapping[str, Callable[[Any], Any]]] = {
    DossierResolved: {
        "dossier_id": _id,
        "agency_code": _id,
        "actor_id": _optional(lambda v: v if type(v) is str else _NO),
        "ma_tthc": _ma_tthc,
        "channel": _enum(Channel),
        "received_at": _aware,
        "due_at": _aware,
        "resolved_at": _aware,
        "final_status": _enum(DossierStatus),
        "report06_class": _optional(_enum(TimelinessClass)),
        "on_time_766": _bool,
        "supplement_working_hours": _hours,
        "supplement_requests": _count,
        "processing_working_hours": _hours,
        "ruleset_version": _id,
        "submitted_via_dvcqg": _optional(_bool),
        "vneid_authenticated": _optional(_bool),
        "fee_vnd": _optional(_count),
        "paid_online": _optional(_enum(OnlinePaymentPlatform)),
        "components": _optional(_count),
        "components_digitized": _optional(_count),
        "components_reused": _optional(_count),
        "electronic_result": _optional(_bool),
    },
    DossierBecameOverdue: {
        "dossier_id": _id,
        "agency_code": _id,
        "actor_id": _optional(lambda v: v if type(v) is str else _NO),
        "ma_tthc": _ma_tthc,
        "due_at": _aware,
        "detected_at": _aware,
        "status": _enum(DossierStatus),
        "ruleset_version": _id,
    },
    ApologyAssessed: {
        "dossier_id": _id,
        "agency_code": _id,
        "actor_id": _optional(lambda v: v if type(v) is str else _NO),
        "original_due_at": _aware,
        "resolved_at": _optional(_aware),
        "apologies_issued": _count,
        "issued": _bool,
        "before_original_due": _bool,
        "at_least_one_working_day_before": _bool,
        "single_reschedule": _bool,
        "result_by_rescheduled_due": _bool,
        "assessed_at": _aware,
        "ruleset_version": _id,
    },
}

#: (name, test, default or _NO if required) per field, per class
_PLAN: dict[type[EventPayload], tuple[tuple[str, Callable[[Any], Any], Any], ...]] = {
    cls: tuple(
        (name, check, _NO if cls.model_fields[name].is_required() else cls.model_fields[name].default)
        for name, check in checks.items()
    )
    for cls, checks in FIELDS.items()
}

_new = object.__new__
_setattr = object.__setattr__


def build(cls: type[_M], **values: Any) -> _M:
    """``cls(**values)`` — the same instance, or the same ``ValidationError`` — for one of :data:`FIELDS`."""
    data: dict[str, Any] = {}
    given = 0
    for name, check, default in _PLAN[cls]:
        if name in values:
            value = check(values[name])
            if value is _NO:
                return cls(**values)
            data[name] = value
            given += 1
        elif default is _NO:
            return cls(**values)  # a required value is missing: validation says which
        else:
            data[name] = default
    if given != len(values):
        return cls(**values)  # an unknown field (the contracts forbid extras): validation refuses it
    instance = _new(cls)
    # what validation sets on a model without extras or private attributes (the contracts have neither)
    _setattr(instance, "__dict__", data)
    _setattr(instance, "__pydantic_extra__", None)
    _setattr(instance, "__pydantic_fields_set__", set(values))
    _setattr(instance, "__pydantic_private__", None)
    return instance
