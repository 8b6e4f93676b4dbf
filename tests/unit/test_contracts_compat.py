"""The backward-compatibility checker on small schemas, and the upcaster mechanism on a throwaway registry."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from contracts import wire
from contracts.base import EventPayload, Record
from contracts.catalog import ALL_EVENT_TYPES
from contracts.compat import incompatibilities
from contracts.envelope import make_envelope
from contracts.registry import Registry, UnknownEventType
from contracts.schemagen import schema_for

# --- pairs of models (old -> new) ----------------------------------------------------------------------


class Base(Record):
    amount: int = Field(description="amount")
    note: str = Field(description="note")


class NoteRemoved(Record):
    amount: int = Field(description="amount")


class AmountRetyped(Record):
    amount: str = Field(description="amount")
    note: str = Field(description="note")


class AmountWidened(Record):
    amount: float = Field(description="amount")
    note: str = Field(description="note")


class AmountNullable(Record):
    amount: int | None = Field(description="amount")
    note: str = Field(description="note")


class NewRequired(Record):
    amount: int = Field(description="amount")
    note: str = Field(description="note")
    channel: str = Field(description="channel")


class NewOptional(Record):
    amount: int = Field(description="amount")
    note: str = Field(description="note")
    channel: str | None = Field(default=None, description="channel")


class Redescribed(Record):
    """A docstring that was not there."""

    amount: int = Field(description="the amount, in VND", examples=[5000], title="Số tiền")
    note: str = Field(description="a note")


class OptionalNote(Record):
    amount: int = Field(description="amount")
    note: str | None = Field(default=None, description="note")


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class FewerColours(StrEnum):
    RED = "red"
    GREEN = "green"


class MoreColours(StrEnum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"
    YELLOW = "yellow"


class Painted(Record):
    colour: Colour = Field(description="colour")


class PaintedFewer(Record):
    colour: FewerColours = Field(description="colour")


class PaintedMore(Record):
    colour: MoreColours = Field(description="colour")


class Kind(Record):
    kind: Literal["a"] = Field(description="kind")


class OtherKind(Record):
    kind: Literal["b"] = Field(description="kind")


class Inner(Record):
    x: int = Field(description="x")
    y: int = Field(description="y")


class InnerRetyped(Record):
    x: str = Field(description="x")
    y: int = Field(description="y")


class InnerShrunk(Record):
    x: int = Field(description="x")


class Outer(Record):
    inner: Inner = Field(description="inner")
    items: tuple[Inner, ...] = Field(description="items")


class OuterInnerRetyped(Record):
    inner: InnerRetyped = Field(description="inner")
    items: tuple[Inner, ...] = Field(description="items")


class OuterItemsShrunk(Record):
    inner: Inner = Field(description="inner")
    items: tuple[InnerShrunk, ...] = Field(description="items")


class Numbers(Record):
    values: tuple[int, ...] = Field(description="values")


class Texts(Record):
    values: tuple[str, ...] = Field(description="values")


class Either(Record):
    value: int | str = Field(description="value")


class OnlyInt(Record):
    value: int = Field(description="value")


class EitherOrList(Record):
    value: int | str | tuple[str, ...] = Field(description="value")


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")
    amount: int = Field(description="amount")


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: int = Field(description="amount")


class Code(Record):
    code: str = Field(max_length=20, description="code")
    count: int = Field(ge=0, description="count")


class CodeShorter(Record):
    code: str = Field(max_length=10, description="code")
    count: int = Field(ge=0, description="count")


class CodeLonger(Record):
    code: str = Field(max_length=40, description="code")
    count: int = Field(description="count")


class CodePatterned(Record):
    code: str = Field(max_length=20, pattern=r"^\d\.\d{6}$", description="code")
    count: int = Field(ge=0, description="count")


class CountPositive(Record):
    code: str = Field(max_length=20, description="code")
    count: int = Field(gt=0, description="count")


class Tree(Record):
    label: str = Field(description="label")
    children: tuple[Tree, ...] = Field(default=(), description="children")


class TreeRetyped(Record):
    label: int = Field(description="label")
    children: tuple[TreeRetyped, ...] = Field(default=(), description="children")


def schema(model: type[BaseModel]) -> dict[str, Any]:
    # through a JSON round trip, exactly as a committed file is read back
    return json.loads(json.dumps(model.model_json_schema(mode="validation")))


INCOMPATIBLE = [
    pytest.param(Base, NoteRemoved, "$.note: property removed", id="removed-field"),
    pytest.param(Base, AmountRetyped, "$.amount: type changed from integer to string", id="retyped-field"),
    pytest.param(Base, NewRequired, "$.channel: new required property", id="new-required-field"),
    pytest.param(OptionalNote, Base, "$.note: became required (was optional)", id="optional-to-required"),
    pytest.param(AmountNullable, Base, "$.amount: null is no longer accepted", id="null-arm-removed"),
    pytest.param(Painted, PaintedFewer, "$.colour: enum value(s) removed: 'blue'", id="enum-value-removed"),
    pytest.param(Kind, OtherKind, "$.kind: const changed from 'a' to 'b'", id="const-changed"),
    pytest.param(Outer, OuterInnerRetyped, "$.inner.x: type changed from integer to string", id="nested-retype"),
    pytest.param(Outer, OuterItemsShrunk, "$.items[*].y: property removed", id="nested-in-array-removed"),
    pytest.param(Numbers, Texts, "$.values[*]: type changed from integer to string", id="array-items-retyped"),
    pytest.param(Either, OnlyInt, "$.value: string is no longer accepted", id="union-arm-removed"),
    pytest.param(Open, Closed, "$: additionalProperties tightened", id="additional-properties-tightened"),
    pytest.param(Code, CodeShorter, "$.code: maxLength lowered from 20 to 10", id="max-length-lowered"),
    pytest.param(Code, CodePatterned, "$.code: pattern changed", id="pattern-added"),
    pytest.param(Code, CountPositive, "$.count: lower bound raised", id="minimum-made-exclusive"),
    pytest.param(Tree, TreeRetyped, "$.label: type changed from string to integer", id="recursive-retype"),
]

COMPATIBLE = [
    pytest.param(Base, Base, id="identical"),
    pytest.param(Base, NewOptional, id="new-optional-field"),
    pytest.param(Base, Redescribed, id="description-title-examples-changed"),
    pytest.param(Base, OptionalNote, id="required-to-optional"),
    pytest.param(Base, AmountWidened, id="integer-widened-to-number"),
    pytest.param(Base, AmountNullable, id="made-nullable"),
    pytest.param(Painted, PaintedMore, id="enum-value-added"),
    pytest.param(OnlyInt, Either, id="union-arm-added"),
    pytest.param(Either, EitherOrList, id="another-union-arm-added"),
    pytest.param(Closed, Open, id="additional-properties-loosened"),
    pytest.param(Code, CodeLonger, id="constraints-loosened"),
    pytest.param(Tree, Tree, id="recursive-identical"),
]


@pytest.mark.parametrize(("old", "new", "expected"), INCOMPATIBLE)
def test_incompatible_change_is_reported_with_its_path(
    old: type[BaseModel], new: type[BaseModel], expected: str
) -> None:
    reasons = incompatibilities(schema(old), schema(new))
    assert any(reason.startswith(expected) for reason in reasons), reasons


@pytest.mark.parametrize(("old", "new"), COMPATIBLE)
def test_compatible_change_is_accepted(old: type[BaseModel], new: type[BaseModel]) -> None:
    assert incompatibilities(schema(old), schema(new)) == []


@pytest.mark.parametrize("cls", ALL_EVENT_TYPES, ids=lambda cls: cls.event_type)
def test_every_event_schema_is_compatible_with_itself(cls: type[EventPayload]) -> None:
    assert incompatibilities(schema_for(cls), schema_for(cls)) == []


def test_references_resolve_against_each_schema_s_own_definitions() -> None:
    old = {
        "$id": "urn:chiso:schema:vn.cchc.test.thing_happened:v1",
        "$defs": {"Amount": {"type": "integer"}},
        "type": "object",
        "properties": {"amount": {"$ref": "urn:chiso:schema:vn.cchc.test.thing_happened:v1#/$defs/Amount"}},
    }
    new = {
        "$defs": {"Amount": {"type": "string"}},
        "type": "object",
        "properties": {"amount": {"$ref": "#/$defs/Amount"}},
    }
    assert incompatibilities(old, new) == ["$.amount: type changed from integer to string"]


def test_an_unknown_keyword_is_treated_as_a_risk() -> None:
    old = {"type": "object", "properties": {"a": {"type": "string"}}}
    new = {"type": "object", "properties": {"a": {"type": "string", "not": {"const": "x"}}}}
    assert incompatibilities(old, new) == ["$.a: keyword 'not' added or changed"]


# --- upcasters -----------------------------------------------------------------------------------------

THING = "vn.cchc.test.thing_happened"


class ThingHappenedV1(EventPayload):
    """The old shape: ``amount`` without a currency in its name."""

    event_type = THING
    schema_version = 1
    producer = "tests"
    topic = "vn.cchc.tests.events"

    amount: int = Field(description="amount")


class ThingHappened(EventPayload):
    """The current shape: the field was renamed, an incompatible change, hence v2."""

    event_type = THING
    schema_version = 2
    producer = "tests"
    topic = "vn.cchc.tests.events"

    amount_vnd: int = Field(ge=0, description="amount in VND")
    note: str | None = Field(default=None, description="note")


class ThingHappenedV3(EventPayload):
    """A later version whose registry lacks the v1 -> v2 step."""

    event_type = THING
    schema_version = 3
    producer = "tests"
    topic = "vn.cchc.tests.events"

    amount_vnd: int = Field(description="amount in VND")


def thing_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    upgraded = {key: value for key, value in data.items() if key != "amount"}
    upgraded["amount_vnd"] = data["amount"]
    return upgraded


def test_the_rename_that_needs_the_upcaster_is_incompatible() -> None:
    reasons = incompatibilities(schema_for(ThingHappenedV1), schema_for(ThingHappened))
    assert "$.amount: property removed" in reasons
    assert "$.amount_vnd: new required property" in reasons


def test_old_data_is_upcast_and_validated_into_the_current_class() -> None:
    registry = Registry([ThingHappened], {(THING, 1): thing_v1_to_v2})
    assert registry.has_upcaster(THING, 1)
    parsed = registry.parse(THING, 1, b'{"amount": 5000}')
    assert parsed == ThingHappened(amount_vnd=5000)
    assert registry.parse(THING, 2, b'{"amount_vnd": 7000, "note": "x"}') == ThingHappened(amount_vnd=7000, note="x")


def test_upcast_data_is_still_validated() -> None:
    registry = Registry([ThingHappened], {(THING, 1): thing_v1_to_v2})
    with pytest.raises(ValueError, match="amount_vnd"):
        registry.parse(THING, 1, b'{"amount": -1}')


def test_an_old_record_on_the_wire_decodes_to_the_current_class() -> None:
    registry = Registry([ThingHappened], {(THING, 1): thing_v1_to_v2})
    old = make_envelope(
        ThingHappenedV1(amount=5000),
        id=uuid.UUID(int=1),
        source="urn:chiso:tests",
        subject="thing-1",
        time=datetime(2026, 1, 5, 8, 0, tzinfo=UTC),
        unitcode="00004",
        provincecode="01",
    )
    decoded = wire.decode(*wire.encode(old), registry)
    assert decoded.data == ThingHappened(amount_vnd=5000)
    assert decoded.schemaversion == 1  # the attributes still say what was on the wire


def test_a_missing_upcaster_makes_old_data_unreadable() -> None:
    registry = Registry([ThingHappenedV3], {(THING, 2): lambda data: data})
    with pytest.raises(UnknownEventType, match=f"no upcaster from {THING} v1"):
        registry.parse(THING, 1, b'{"amount": 5000}')


def test_data_newer_than_the_reader_is_refused() -> None:
    registry = Registry([ThingHappened], {(THING, 1): thing_v1_to_v2})
    with pytest.raises(UnknownEventType, match="newer than this reader"):
        registry.parse(THING, 3, b'{"amount_vnd": 1}')


def test_an_upcaster_for_the_current_version_is_refused() -> None:
    with pytest.raises(ValueError, match="upcaster for unknown or current version"):
        Registry([ThingHappened], {(THING, 2): thing_v1_to_v2})


@pytest.mark.parametrize("value", [b"{not json", b'{"other": 1}', b"[1, 2]"], ids=["bad-json", "no-field", "array"])
def test_a_broken_old_version_record_is_an_invalid_record(value: bytes) -> None:
    registry = Registry([ThingHappened], {(THING, 1): thing_v1_to_v2})
    old = make_envelope(
        ThingHappenedV1(amount=5000),
        id=uuid.UUID(int=2),
        source="urn:chiso:tests",
        subject="thing-2",
        time=datetime(2026, 1, 5, 8, 0, tzinfo=UTC),
        unitcode="00004",
        provincecode="01",
    )
    key, _, headers = wire.encode(old)
    with pytest.raises(wire.InvalidRecord):
        wire.decode(key, value, headers, registry)
