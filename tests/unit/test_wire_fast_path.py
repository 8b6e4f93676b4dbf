"""``read_headers`` (consumers' fast path) accepts exactly what the pydantic ``Attributes`` model accepts,
and reads the same values: the model stays the single source of truth."""

from datetime import UTC, datetime
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.wire import CloudEventHeaders, InvalidRecord, decode_attributes, encode, read_headers
from eventkit.testing import sample_event

BASE = encode(sample_event("dossier:000.31.20.H56-260213-0007", "x", at=datetime(2026, 2, 13, 3, 0, tzinfo=UTC)))[2]
NAMES = [name for name, _ in BASE] + [
    "ce_sequence",
    "ce_correlationid",
    "ce_causationid",
    "ce_legacyunitcode",
    "ce_extra",
]

# values that probe each rule's edges: other UUID spellings, date formats, codes, versions, odd bytes
TRICKY = [
    b"",
    b" ",
    b"1",
    b"0",
    b"01",
    b"001",
    b"00004",
    b"123456",
    b"-1",
    b"1.0",
    b"2.0",
    b"999999999",
    b"1000000000",
    b"vn.cchc.dossier.received",
    b"vn.cchc.Dossier",
    b"vn.cchc.x",
    b"urn:chiso:x",
    b"application/json",
    b"application/json; charset=utf-8",
    b"text/plain",
    b"2026-02-13T10:00:00+07:00",
    b"2026-02-13T10:00:00Z",
    b"2026-02-13T10:00:00.123456Z",
    b"2026-02-13 10:00:00+07:00",
    b"2026-02-13T10:00:00",
    b"2026-02-30T10:00:00Z",
    b"2026-W07-5T10:00:00Z",
    b"2026-02-13T24:00:00Z",
    b"2026-02-13t10:00:00z",
    b"2026-02-13T10:00:00.1234567Z",
    b"89088601-48b3-4cb3-b4fa-6cbd3e8a65ae",
    b"89088601-48B3-4CB3-B4FA-6CBD3E8A65AE",
    b"8908860148b34cb3b4fa6cbd3e8a65ae",
    b"{89088601-48b3-4cb3-b4fa-6cbd3e8a65ae}",
    b"urn:uuid:89088601-48b3-4cb3-b4fa-6cbd3e8a65ae",
    b"\xff\xfe",
    ("s" * 200).encode(),
    ("s" * 201).encode(),
    "Thành phố".encode(),
]


def _judge(headers):
    try:
        return CloudEventHeaders.from_attributes(decode_attributes(headers))
    except InvalidRecord:
        return None


def _fast(headers):
    try:
        return read_headers(headers)
    except InvalidRecord:
        return None


@st.composite
def mutated_headers(draw):
    headers = list(BASE)
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["set", "drop", "add"]))
        name = draw(st.sampled_from(NAMES))
        value = draw(st.one_of(st.sampled_from(TRICKY), st.binary(max_size=40)))
        if action == "drop":
            headers = [(n, v) for n, v in headers if n != name]
        elif action == "set":
            headers = [(n, value if n == name else v) for n, v in headers]
        else:
            headers.append((name, value))
    return headers


@settings(max_examples=3000, deadline=None)
@given(mutated_headers())
def test_fast_path_agrees_with_the_model_on_any_headers(headers) -> None:
    assert _fast(headers) == _judge(headers)


@pytest.mark.parametrize("name", [n for n, _ in BASE])
@pytest.mark.parametrize("value", TRICKY)
def test_fast_path_agrees_on_every_tricky_value_of_every_header(name, value) -> None:
    headers = [(n, value if n == name else v) for n, v in BASE]
    assert _fast(headers) == _judge(headers)


def test_canonical_headers_take_the_fast_path_and_read_the_same_values() -> None:
    fast = read_headers(BASE)
    assert fast == _judge(BASE)
    assert fast.to_attributes() == decode_attributes(BASE)
    assert isinstance(fast.to_attributes().id, UUID)
    assert fast.time == datetime(2026, 2, 13, 3, 0, tzinfo=UTC)


def test_the_legacy_unit_code_travels_and_is_read_by_both_paths() -> None:
    event = sample_event("dossier:x", "x", at=datetime(2025, 3, 3, 3, 0, tzinfo=UTC)).model_copy(
        update={"legacyunitcode": "09619"}
    )
    headers = encode(event)[2]
    assert ("ce_legacyunitcode", b"09619") in headers
    assert read_headers(headers).legacyunitcode == "09619"
    assert decode_attributes(headers).legacyunitcode == "09619"
    bad = [(n, b"9619" if n == "ce_legacyunitcode" else v) for n, v in headers]
    with pytest.raises(InvalidRecord):
        read_headers(bad)
