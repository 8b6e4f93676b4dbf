"""The payload models obey the contract rules, their examples are valid, and they survive the Kafka codec."""

from __future__ import annotations

import json
import re
import typing
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import contracts
from contracts import dossiers, plans, scoring, surveys, topics, wire
from contracts.base import EventPayload, Record
from contracts.catalog import ALL_EVENT_TYPES
from contracts.envelope import Attributes, Envelope, make_envelope
from contracts.registry import default_registry

EXAMPLES = Path(contracts.__file__).parent / "examples"
REGISTRY = default_registry()
TOPIC_OF_PRODUCER = {
    "dossiers": topics.DOSSIERS_EVENTS,
    "surveys": topics.SURVEYS_EVENTS,
    "plans": topics.PLANS_EVENTS,
    "scoring": topics.SCORING_INDICATORS,
}
EVENT_TYPE_PATTERN = Attributes.model_json_schema()["properties"]["type"]["pattern"]
ICT = timezone(timedelta(hours=7))

by_type = pytest.mark.parametrize("cls", ALL_EVENT_TYPES, ids=lambda cls: cls.event_type)


def example_of(cls: type[EventPayload]) -> EventPayload:
    raw = (EXAMPLES / cls.event_type / f"v{cls.schema_version}.json").read_bytes()
    return REGISTRY.parse(cls.event_type, cls.schema_version, raw)


def envelope_of(payload: EventPayload) -> Envelope:
    return make_envelope(
        payload,
        id=uuid.uuid5(uuid.NAMESPACE_URL, payload.event_type),
        source=f"urn:chiso:{payload.producer}",
        subject=f"example-stream-{payload.event_type}",
        time=datetime(2026, 2, 27, 9, 15, tzinfo=ICT),
        unitcode="00004",
        provincecode="01",
        sequence=3,
        correlationid="req-7f3a",
        causationid="msg-91c2",
    )


def nested_models(annotation: object) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from nested_models(arg)


def all_models(cls: type[BaseModel]) -> list[type[BaseModel]]:
    """``cls`` and every model reachable through its fields."""
    found: list[type[BaseModel]] = []
    pending = [cls]
    while pending:
        model = pending.pop()
        if model in found:
            continue
        found.append(model)
        for field in model.model_fields.values():
            pending.extend(nested_models(field.annotation))
    return found


# --- shape rules ---------------------------------------------------------------------------------------


def test_catalog_holds_every_module_event_exactly_once():
    modules = (dossiers, surveys, plans, scoring)
    assert tuple(cls for module in modules for cls in module.EVENTS) == ALL_EVENT_TYPES
    assert len(set(ALL_EVENT_TYPES)) == len(ALL_EVENT_TYPES)
    for module in modules:
        assert set(module.EVENTS) <= {getattr(module, name) for name in module.__all__}


def test_event_types_are_unique_and_valid_cloudevents_types():
    names = [cls.event_type for cls in ALL_EVENT_TYPES]
    assert len(names) == len(set(names))
    for name in names:
        assert re.fullmatch(EVENT_TYPE_PATTERN, name), name


@by_type
def test_payload_class_is_a_closed_frozen_self_describing_fact(cls: type[EventPayload]):
    assert issubclass(cls, EventPayload)
    assert cls.model_config.get("frozen") is True
    assert cls.model_config.get("extra") == "forbid"
    assert cls.event_type.startswith("vn.cchc.")
    assert isinstance(cls.schema_version, int)
    assert cls.schema_version >= 1
    assert cls.topic == TOPIC_OF_PRODUCER[cls.producer]
    assert not cls.__name__.endswith("Event")
    assert cls.__doc__, "the class docstring becomes the schema description"


@by_type
def test_every_field_is_described_including_nested_records(cls: type[EventPayload]):
    for model in all_models(cls):
        assert issubclass(model, Record), f"{model.__name__} must derive from contracts.base.Record"
        assert model.model_config.get("frozen") is True
        assert model.model_config.get("extra") == "forbid"
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


@by_type
def test_payload_carries_no_unit_code_and_no_citizen_identity(cls: type[EventPayload]):
    for model in all_models(cls):
        names = set(model.model_fields)
        if model is not plans.InspectedUnit:  # the inspected body is the object of the fact, not its unit
            assert not names & {"unit_code", "unitcode", "province_code", "provincecode"}
        assert not names & {"applicant_name", "citizen_name", "id_number", "cccd", "cmnd", "phone", "email"}


def test_applicant_reference_must_be_a_pseudonym_not_an_identity_number():
    data = json.loads((EXAMPLES / "vn.cchc.dossier.submitted" / "v1.json").read_text(encoding="utf-8"))
    data["applicant_ref"] = "001203004567"  # a 12-digit citizen identity number
    with pytest.raises(ValueError, match="applicant_ref"):
        dossiers.DossierSubmitted.model_validate(data)


def test_channel_and_status_map_to_dvcqg_codes():
    assert [c.dvcqg_code for c in dossiers.Channel] == [1, 2, 3]
    assert dossiers.Channel.from_dvcqg(None) is dossiers.Channel.DIRECT
    assert dossiers.Channel.from_dvcqg(3) is dossiers.Channel.POSTAL
    assert [s.dvcqg_code for s in dossiers.DossierStatus] == list(range(1, 11))
    assert dossiers.DossierStatus.from_dvcqg(9) is dossiers.DossierStatus.PROCESSED
    with pytest.raises(ValueError, match="KenhThucHien"):
        dossiers.Channel.from_dvcqg(4)


def test_survey_answer_values_are_a_disjoint_union():
    answer = surveys.Answer.model_validate_json
    assert answer('{"item_id": "a", "value": 4}').value == 4
    assert answer('{"item_id": "a", "value": "4"}').value == "4"
    assert answer('{"item_id": "a", "value": ["x", "y"]}').value == ("x", "y")
    for bad in ("true", "4.5", "[]", '""', "[1]", "null"):
        with pytest.raises(ValueError, match="value"):
            answer(f'{{"item_id": "a", "value": {bad}}}')


def test_indicator_value_is_either_a_number_or_a_reason():
    data = json.loads((EXAMPLES / "vn.cchc.indicator.updated" / "v1.json").read_text(encoding="utf-8"))
    with pytest.raises(ValueError, match="exactly one of value and na_reason"):
        scoring.IndicatorUpdated.model_validate({**data, "value": None})
    not_applicable = scoring.IndicatorUpdated.model_validate(
        {**data, "value": None, "numerator": 0, "denominator": 0, "na_reason": "empty_denominator"}
    )
    assert not_applicable.na_reason is scoring.NaReason.EMPTY_DENOMINATOR


@by_type
def test_payloads_are_immutable_and_hashable(cls: type[EventPayload]):
    payload = example_of(cls)
    hash(payload)
    first_field = next(iter(cls.model_fields))
    with pytest.raises(ValueError, match="frozen"):
        setattr(payload, first_field, None)


# --- examples ------------------------------------------------------------------------------------------


def test_every_event_type_has_an_example_and_every_example_a_type():
    folders = {p.name for p in EXAMPLES.iterdir() if p.is_dir()}
    assert folders == {cls.event_type for cls in ALL_EVENT_TYPES}


@by_type
def test_example_validates_and_round_trips_through_json(cls: type[EventPayload]):
    payload = example_of(cls)
    assert type(payload) is cls
    assert cls.model_validate_json(payload.model_dump_json()) == payload


@by_type
def test_example_rejects_unknown_fields(cls: type[EventPayload]):
    data = example_of(cls).model_dump(mode="json")
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        cls.model_validate({**data, "surprise": 1})


# --- Kafka codec ---------------------------------------------------------------------------------------


@by_type
def test_envelope_round_trips_through_the_kafka_codec(cls: type[EventPayload]):
    envelope = envelope_of(example_of(cls))
    key, value, headers = wire.encode(envelope)
    decoded = wire.decode(key, value, headers, REGISTRY)
    assert decoded == envelope
    assert type(decoded.data) is cls
    assert key == envelope.subject.encode()


def _record(event_type: str = "vn.cchc.dossier.received") -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return wire.encode(envelope_of(example_of(REGISTRY.latest(event_type))))


def _with_header(headers: list[tuple[str, bytes]], name: str, value: bytes | None) -> list[tuple[str, bytes]]:
    kept = [(n, v) for n, v in headers if n != name]
    return kept if value is None else [*kept, (name, value)]


def test_decode_rejects_a_value_that_is_not_json():
    key, _, headers = _record()
    with pytest.raises(wire.InvalidRecord, match="invalid data") as caught:
        wire.decode(key, b"{not json", headers, REGISTRY)
    assert "vn.cchc.dossier.received v1" in caught.value.reason


def test_decode_rejects_data_that_breaks_the_schema_and_names_the_field():
    key, value, headers = _record()
    data = json.loads(value)
    del data["due_at"]
    with pytest.raises(wire.InvalidRecord, match="due_at"):
        wire.decode(key, json.dumps(data).encode(), headers, REGISTRY)


def test_decode_rejects_an_unknown_event_type():
    key, value, headers = _record()
    headers = _with_header(headers, "ce_type", b"vn.cchc.dossier.teleported")
    with pytest.raises(wire.InvalidRecord, match=re.escape("unknown event type 'vn.cchc.dossier.teleported'")):
        wire.decode(key, value, headers, REGISTRY)


def test_decode_rejects_a_version_newer_than_the_reader():
    key, value, headers = _record()
    headers = _with_header(headers, "ce_schemaversion", b"2")
    with pytest.raises(wire.InvalidRecord, match="newer than this reader"):
        wire.decode(key, value, headers, REGISTRY)


def test_decode_rejects_a_key_that_is_not_the_stream_id():
    _, value, headers = _record()
    with pytest.raises(wire.InvalidRecord, match="record key"):
        wire.decode(b"another-dossier", value, headers, REGISTRY)


@pytest.mark.parametrize("headers", [None, []], ids=["none", "empty"])
def test_decode_rejects_a_record_without_headers(headers: list[tuple[str, bytes]] | None):
    key, value, _ = _record()
    with pytest.raises(wire.InvalidRecord, match="invalid CloudEvents headers"):
        wire.decode(key, value, headers, REGISTRY)


@pytest.mark.parametrize("missing", ["ce_id", "ce_type", "ce_time", "ce_unitcode", "ce_dataschema"])
def test_decode_rejects_a_record_missing_a_required_header_and_names_it(missing: str):
    key, value, headers = _record()
    with pytest.raises(wire.InvalidRecord, match=missing.removeprefix("ce_")):
        wire.decode(key, value, _with_header(headers, missing, None), REGISTRY)


@pytest.mark.parametrize("content_type", [b"application/xml", b"application/cloudevents+json", b"text/plain"])
def test_decode_rejects_a_wrong_content_type(content_type: bytes):
    key, value, headers = _record()
    with pytest.raises(wire.InvalidRecord, match="unsupported content-type"):
        wire.decode(key, value, _with_header(headers, "content-type", content_type), REGISTRY)


def test_decode_rejects_a_dataschema_that_does_not_match_the_type():
    key, value, headers = _record()
    headers = _with_header(headers, "ce_dataschema", b"urn:chiso:schema:vn.cchc.dossier.refused:v1")
    with pytest.raises(wire.InvalidRecord, match="ce_dataschema"):
        wire.decode(key, value, headers, REGISTRY)


# --- property: nothing but InvalidRecord escapes decode -------------------------------------------------

_HEADER_NAMES = ["content-type", *(f"ce_{name}" for name in Attributes.model_fields), "ce_futureext"]
_RECORDS = {cls.event_type: wire.encode(envelope_of(example_of(cls))) for cls in ALL_EVENT_TYPES}
_header_names = st.one_of(st.sampled_from(_HEADER_NAMES), st.text(max_size=16))
_header_values = st.one_of(
    st.binary(max_size=48),
    st.text(max_size=48).map(str.encode),
    st.sampled_from([b"1", b"0", b"-1", b"99", b"", b"vn.cchc.dossier.received", b"2026-02-27T09:15:00"]),
)


@st.composite
def _mutated_records(draw: st.DrawFn) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """A valid record of some type with a few headers dropped, replaced or added, and maybe a new key/value."""
    key, value, headers = _RECORDS[draw(st.sampled_from(sorted(_RECORDS)))]
    headers = list(headers)
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["drop", "replace", "add"]))
        if action == "add" or not headers:
            headers.append((draw(_header_names), draw(_header_values)))
            continue
        index = draw(st.integers(0, len(headers) - 1))
        if action == "drop":
            headers.pop(index)
        else:
            headers[index] = (headers[index][0], draw(_header_values))
    other_value = _RECORDS[draw(st.sampled_from(sorted(_RECORDS)))][1]
    new_value = draw(st.one_of(st.just(value), st.just(other_value), st.none(), st.binary(max_size=120)))
    new_key = draw(st.one_of(st.just(key), st.none(), st.binary(max_size=24)))
    return new_key, new_value, headers


_random_records = st.tuples(
    st.one_of(st.none(), st.binary(max_size=24)),
    st.one_of(st.none(), st.binary(max_size=120)),
    st.one_of(st.none(), st.lists(st.tuples(_header_names, _header_values), max_size=14)),
)


@settings(max_examples=400, deadline=None)
@given(_random_records | _mutated_records())
def test_decode_raises_nothing_but_invalid_record(
    record: tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None],
):
    key, value, headers = record
    reason = None
    try:
        envelope = wire.decode(key, value, headers, REGISTRY)
    except wire.InvalidRecord as exc:
        reason = exc.reason
    else:
        assert isinstance(envelope.data, EventPayload)
        assert envelope.type == envelope.data.event_type
    assert reason is None or reason  # a rejection always says why (it becomes the dead-letter reason)
