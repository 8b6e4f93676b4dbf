"""The dossiers intake's fast paths give exactly what the straightforward code gave (ids, pseudonyms)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.dossiers.ids import CANONICAL_NAMESPACE, canonical_event_id, uuid5
from services.dossiers.privacy import Pseudonymizer


def reference_canonical_id(source: str, event_id: uuid.UUID | str) -> uuid.UUID:
    """The canonical id as first written: parse every 36-character id that is a UUID, stdlib uuid5."""
    if isinstance(event_id, str) and len(event_id) == 36:
        with contextlib.suppress(ValueError):
            event_id = uuid.UUID(event_id)
    return uuid.uuid5(CANONICAL_NAMESPACE, f"{source}|{event_id}")


@settings(max_examples=2000)
@given(namespace=st.uuids(), name=st.text())
def test_uuid5_equals_the_stdlib_in_every_bit(namespace: uuid.UUID, name: str) -> None:
    fast = uuid5(namespace, name)
    slow = uuid.uuid5(namespace, name)
    assert fast == slow
    assert fast.int == slow.int
    assert str(fast) == str(slow)
    assert hash(fast) == hash(slow)
    assert fast.version == 5
    assert fast.variant == uuid.RFC_4122
    assert {fast: 1}[slow] == 1


def _spellings(value: uuid.UUID) -> list[str]:
    text = str(value)
    return [text, text.upper(), text[:8].upper() + text[8:], text.replace("-", "")]


@settings(max_examples=1000)
@given(source=st.text(min_size=1, max_size=40), value=st.uuids())
def test_canonical_ids_of_any_spelling_of_a_uuid_equal_the_reference(source: str, value: uuid.UUID) -> None:
    for spelling in _spellings(value):
        assert canonical_event_id(source, spelling) == reference_canonical_id(source, spelling)
    assert canonical_event_id(source, value) == reference_canonical_id(source, value)
    # every spelling of one UUID that is 36 characters long is the same fact
    assert canonical_event_id(source, str(value).upper()) == canonical_event_id(source, value)


@settings(max_examples=1000)
@given(source=st.text(min_size=1, max_size=40), event_id=st.text(max_size=60))
def test_canonical_ids_of_text_ids_equal_the_reference(source: str, event_id: str) -> None:
    assert canonical_event_id(source, event_id) == reference_canonical_id(source, event_id)


@pytest.mark.parametrize(
    "event_id",
    [
        "D-1:received",
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
        "gggggggg-gggg-gggg-gggg-gggggggggggg",  # 36 characters, not a UUID: taken as it is
        "{12345678-1234-5678-1234-567812345678}",
        "12345678-1234-5678-1234-5678123456781",
        "12345678123456781234567812345678abcd",
        "",
    ],
)
def test_canonical_ids_of_table_cases_equal_the_reference(event_id: str) -> None:
    assert canonical_event_id("//motcua.x", event_id) == reference_canonical_id("//motcua.x", event_id)


@settings(max_examples=300)
@given(secret=st.binary(min_size=16, max_size=64), raw=st.binary(min_size=1, max_size=32))
def test_the_pseudonym_is_the_hmac_of_the_digest(secret: bytes, raw: bytes) -> None:
    digest = hashlib.sha256(raw).hexdigest()
    assert Pseudonymizer(secret).rekey(digest) == hmac.new(secret, digest.encode(), hashlib.sha256).hexdigest()


# --- the re-keyed copy of a received fact ---------------------------------------------------------------


def _submitted_and_received() -> list:
    from bench.dvcqg_gen import write_jsonl  # noqa: PLC0415
    from contracts.dossiers import DossierReceived, DossierSubmitted  # noqa: PLC0415
    from eventkit.worktime import WorkingCalendar  # noqa: PLC0415
    from services.dossiers.dvcqg import iter_records, map_sync_body  # noqa: PLC0415

    calendar = WorkingCalendar.load()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(Path(tmp) / "export.jsonl", 300, seed=3)
        payloads = [
            fact.payload
            for _, record in iter_records(path)
            for fact in map_sync_body(record, source="t", default_unit=None, due_at_of=calendar.due_at)  # type: ignore[arg-type]
            if type(fact.payload) in (DossierSubmitted, DossierReceived)
        ]
    assert len(payloads) > 300
    return payloads


def test_the_rekeyed_copy_equals_pydantics_model_copy() -> None:
    from services.dossiers.intake import _with_applicant_ref  # noqa: PLC0415

    for payload in _submitted_and_received():
        ref = hashlib.sha256(payload.applicant_ref.encode()).hexdigest()
        fast = _with_applicant_ref(payload, ref)
        slow = payload.model_copy(update={"applicant_ref": ref})
        assert type(fast) is type(slow)
        assert fast == slow
        assert fast.__dict__ == slow.__dict__
        assert fast.model_fields_set == slow.model_fields_set
        assert fast.__pydantic_extra__ == slow.__pydantic_extra__
        assert fast.__pydantic_private__ == slow.__pydantic_private__
        assert fast.model_dump_json() == slow.model_dump_json()
        assert fast.applicant_ref == ref
        assert payload.applicant_ref != ref  # the original is untouched
        with pytest.raises(ValidationError):
            fast.applicant_ref = "x"  # frozen, as the copy pydantic makes
