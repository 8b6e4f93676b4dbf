"""The response domain (decide/evolve), link tokens, the per-device limit, the form page, and properties:
no input crashes the validator or the decision."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.surveys import SurveyChannel, SurveyResponseSubmitted
from services.surveys.catalog import load_catalog
from services.surveys.domain import (
    Refusal,
    ResponseState,
    SubmitResponse,
    Valid,
    Violation,
    decide,
    evolve,
    response_id_for_dossier,
    response_id_for_submission,
    validate_answers,
)
from services.surveys.domain.response import RESPONSE_NAMESPACE
from services.surveys.form import render_form
from services.surveys.ratelimit import DeviceRateLimiter
from services.surveys.tokens import LinkClaims, LinkSigner
from tests.unit.test_surveys_instruments import CITIZEN, CITIZEN_ANSWERS, PROFILE, SIPAS_2023, SIPAS_2023_ANSWERS

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 10:00 in Việt Nam
CATALOG = load_catalog()


def command(**changes: Any) -> SubmitResponse:
    assert SIPAS_2023 is not None
    values: dict[str, Any] = {
        "response_id": response_id_for_dossier("000.00.01.H26-260302-0001"),
        "instrument": SIPAS_2023,
        "channel": SurveyChannel.QR,
        "submitted_at": NOW - timedelta(minutes=5),
        "province_code": "01",
        "answers": SIPAS_2023_ANSWERS,
        "respondent": PROFILE,
        "linked_dossier_id": "000.00.01.H26-260302-0001",
        "ma_tthc": "1.001776",
    }
    values.update(changes)
    return SubmitResponse(**values)


def test_a_valid_submission_becomes_one_normalised_response_event() -> None:
    decided = decide(ResponseState(), command(), NOW)
    assert not isinstance(decided, Refusal), decided
    [event] = decided
    assert isinstance(event, SurveyResponseSubmitted)
    assert event.instrument_id == "sipas-service"
    assert event.instrument_version == "QĐ1001-2023"
    assert event.survey_id == "sipas-service:2026"  # the yearly round when the sender names none
    assert event.linked_dossier_id == "000.00.01.H26-260302-0001"
    assert event.respondent.model_dump(exclude_none=True) == PROFILE
    assert len(event.answers) == len(SIPAS_2023_ANSWERS)


def test_a_second_response_for_a_dossier_is_refused_not_overwritten() -> None:
    [first] = decide(ResponseState(), command(), NOW)  # type: ignore[misc]
    state = evolve(ResponseState(), first)
    refusal = decide(state, command(channel=SurveyChannel.SMS, answers={**SIPAS_2023_ANSWERS}), NOW)
    assert isinstance(refusal, Refusal)
    assert refusal.conflict
    [violation] = refusal.violations
    assert violation.field == "linked_dossier_id"
    assert "already has a response" in violation.rule
    assert "refused, not overwritten" in violation.rule
    assert state.submitted == first  # the stored response is untouched


def test_timing_rules_future_and_effective_period() -> None:
    refusal = decide(ResponseState(), command(submitted_at=NOW + timedelta(hours=1)), NOW)
    assert isinstance(refusal, Refusal)
    assert [v.rule for v in refusal.violations] == ["in the future"]
    old = decide(ResponseState(), command(submitted_at=datetime(2022, 5, 1, tzinfo=UTC)), NOW)
    assert isinstance(old, Refusal)
    assert old.violations[0].rule == "sipas-service@QĐ1001-2023 is in force 2023-12-11 .. -"
    # a device clock a few minutes ahead is tolerated
    assert not isinstance(decide(ResponseState(), command(submitted_at=NOW + timedelta(minutes=3)), NOW), Refusal)


def test_a_province_instrument_is_refused_in_another_province() -> None:
    assert SIPAS_2023 is not None
    own = SIPAS_2023.model_copy(update={"provinces": ("48",)})
    refusal = decide(ResponseState(), command(instrument=own), NOW)
    assert isinstance(refusal, Refusal)
    assert refusal.violations[0].field == "unitcode"


def test_refusal_reason_lists_every_violation() -> None:
    refusal = decide(ResponseState(), command(answers={"nope": 1}, respondent={}), NOW)
    assert isinstance(refusal, Refusal)
    assert not refusal.conflict
    fields = {v.field for v in refusal.violations}
    assert {"answers.nope", "answers.access.waiting_area_sufficient", "respondent.type", "respondent.sex"} <= fields
    assert "answers.nope: 1: no such item" in refusal.reason


def test_contract_limits_the_checks_do_not_know_become_violations() -> None:
    refusal = decide(ResponseState(), command(survey_id="x" * 300), NOW)
    assert isinstance(refusal, Refusal)
    assert refusal.violations[0].field == "survey_id"


# --- link tokens ------------------------------------------------------------------------------------------

SIGNER = LinkSigner(b"unit-test-key-0123456789")
CLAIMS = LinkClaims(
    dossier_id="000.00.01.H26-260302-0001", unit_code="00004", channel="qr", expires_at=NOW + timedelta(days=14)
)


def test_a_token_round_trips_and_expires() -> None:
    token = SIGNER.issue(CLAIMS)
    assert re.fullmatch(r"v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}", token)
    assert SIGNER.verify(token, NOW) == CLAIMS
    assert SIGNER.verify(token, NOW + timedelta(days=15)) == f"the link expired at {CLAIMS.expires_at.isoformat()}"


def test_a_token_altered_or_signed_with_another_key_is_refused() -> None:
    token = SIGNER.issue(CLAIMS)
    prefix, body, tag = token.split(".")
    other = LinkSigner(b"another-key-0123456789").issue(CLAIMS)
    assert "signature does not match" in str(SIGNER.verify(other, NOW))
    forged = SIGNER.issue(CLAIMS._replace(dossier_id="someone-else")).split(".")[1]
    assert "signature does not match" in str(SIGNER.verify(f"{prefix}.{forged}.{tag}", NOW))
    assert SIGNER.verify("garbage", NOW) == "not a survey link token"
    assert SIGNER.verify(f"v2.{body}.{tag}", NOW) == "unknown link token version 'v2'"
    with pytest.raises(ValueError, match="at least 16 bytes"):
        LinkSigner(b"short")


@given(st.text(max_size=300))
@settings(max_examples=300)
def test_no_string_crashes_the_token_check(text: str) -> None:
    assert isinstance(SIGNER.verify(text, NOW), str)


@given(key=st.binary(min_size=16, max_size=200), message=st.binary(max_size=400))
@settings(max_examples=300)
def test_the_signers_mac_is_hmac_sha256(key: bytes, message: bytes) -> None:
    assert LinkSigner(key).mac(message) == hmac.new(key, message, hashlib.sha256).digest()


def _verify_as_before(token: str, now: datetime) -> LinkClaims | str:
    """The token check as first written (hmac module, json.loads): the reference for the faster one."""
    prefix, encoded, tag = token.split(".")
    signed = f"{prefix}.{encoded}"
    expected = base64.urlsafe_b64encode(
        hmac.new(b"unit-test-key-0123456789", signed.encode("ascii"), hashlib.sha256).digest()[:16]
    )
    if not hmac.compare_digest(expected.rstrip(b"=").decode(), tag):
        return "the link token's signature does not match (altered, or signed with another key)"
    try:
        body = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        claims = LinkClaims(
            dossier_id=_claim_text(body["d"]),
            unit_code=_claim_text(body["u"]),
            channel=_claim_text(body["c"]),
            expires_at=datetime.fromtimestamp(int(body["x"]), UTC),
            instrument_id=None if body.get("i") is None else _claim_text(body["i"]),
            ma_tthc=None if body.get("m") is None else _claim_text(body["m"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error, OverflowError, OSError):
        return "the link token's claims cannot be read"
    if claims.expires_at <= now:
        return f"the link expired at {claims.expires_at.isoformat()}"
    return claims


def _claim_text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError
    return value


CLAIM_VALUES = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
CLAIM_BODIES = st.one_of(
    # well-formed claims with odd values, as json.dumps writes them (NaN, Infinity, huge integers included)
    st.fixed_dictionaries(
        {"d": CLAIM_VALUES, "u": CLAIM_VALUES, "c": CLAIM_VALUES, "x": CLAIM_VALUES},
        optional={"i": CLAIM_VALUES, "m": CLAIM_VALUES, "zz": CLAIM_VALUES},
    ).map(lambda body: json.dumps(body).encode()),
    st.builds(
        lambda d, x: json.dumps({"d": d, "u": "00004", "c": "qr", "x": x}).encode(),
        st.text(min_size=1, max_size=8),
        st.integers(min_value=0, max_value=2**40),
    ),
    st.sampled_from([b'{"d":"\\ud800","u":"1","c":"qr","x":1900000000}', b'{"d":"a","d":"b","u":"1","c":"q","x":2e9}']),
    st.binary(max_size=60),  # not JSON at all, or another encoding
)


@given(body=CLAIM_BODIES)
@settings(max_examples=600)
def test_the_token_check_judges_every_signed_body_as_before(body: bytes) -> None:
    encoded = base64.urlsafe_b64encode(body).rstrip(b"=").decode()
    signed = f"v1.{encoded}"
    token = f"{signed}.{SIGNER._tag(signed)}"
    assert SIGNER.verify(token, NOW) == _verify_as_before(token, NOW)


# --- rate limit -------------------------------------------------------------------------------------------


def test_a_device_gets_its_burst_then_waits_for_the_rate() -> None:
    now = [0.0]
    limiter = DeviceRateLimiter(per_minute=2, burst=3, clock=lambda: now[0])
    assert [limiter.acquire("kiosk-1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("kiosk-1") == pytest.approx(30.0)
    assert limiter.acquire("kiosk-2") == 0.0  # per device
    now[0] = 30.0
    assert limiter.acquire("kiosk-1") == 0.0
    assert limiter.acquire("kiosk-1") == pytest.approx(30.0)


# --- form page --------------------------------------------------------------------------------------------


def test_the_form_page_is_vietnamese_html_with_every_non_policy_item() -> None:
    assert SIPAS_2023 is not None
    page = render_form(SIPAS_2023, "v1.abc.def")
    assert page.startswith('<!DOCTYPE html><html lang="vi">')
    assert 'name="viewport"' in page
    assert "Gửi đánh giá" in page
    for item in SIPAS_2023.items():
        assert (f'data-item="{item.id}"' in page) is (not item.needs_policy_group)
    config = json.loads(page.split("var CONFIG=")[1].split(";</script>")[0])
    assert config["token"] == "v1.abc.def"
    assert config["instrument_version"] == "QĐ1001-2023"


def test_the_form_page_cannot_be_broken_out_of_by_a_token() -> None:
    assert CITIZEN is not None
    page = render_form(CITIZEN, "</script><script>alert(1)</script>")
    assert "</script><script>alert(1)" not in page


# --- properties -------------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=30,
)
ITEM_IDS = st.sampled_from([i.id for i in CATALOG.all()[0].items() + CATALOG.all()[2].items()]) | st.text(max_size=10)
ANSWERS = st.dictionaries(ITEM_IDS, JSON, max_size=12) | st.lists(
    st.fixed_dictionaries({"item_id": ITEM_IDS | JSON, "value": JSON}) | JSON, max_size=8
)
PROFILES = (
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["citizen", "organisation", "x"]) | JSON,
            "age_band": st.sampled_from(["18-29", "60+", "60-70"]) | JSON,
            "sex": st.sampled_from(["male", "female"]) | JSON,
            "ethnicity": st.sampled_from(["Kinh", "Khác"]) | JSON,
        },
    )
    | JSON
)


@given(
    instrument=st.sampled_from(CATALOG.all()),
    answers=ANSWERS | JSON,
    respondent=PROFILES,
    policy_group=JSON,
    ma_tthc=JSON,
    weight=JSON,
)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_no_input_crashes_the_validator(instrument, answers, respondent, policy_group, ma_tthc, weight) -> None:
    result = validate_answers(instrument, answers, respondent, policy_group, ma_tthc, weight)
    if isinstance(result, Valid):
        assert {a.item_id for a in result.answers} <= {i.id for i in instrument.items()}
        assert {i.id for i in instrument.items() if i.required} <= {a.item_id for a in result.answers}
    else:
        assert result
        assert all(isinstance(v, Violation) and v.rule for v in result)


@given(answers=ANSWERS | JSON, respondent=PROFILES, survey_id=st.none() | st.text(max_size=250))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_no_input_crashes_the_decision(answers, respondent, survey_id) -> None:
    decided = decide(ResponseState(), command(answers=answers, respondent=respondent, survey_id=survey_id), NOW)
    assert isinstance(decided, Refusal) or isinstance(decided[0], SurveyResponseSubmitted)


@given(st.dictionaries(st.sampled_from(list(CITIZEN_ANSWERS)), st.just(None)))
def test_null_answers_count_as_unanswered(nulls) -> None:
    assert CITIZEN is not None
    result = validate_answers(CITIZEN, {**CITIZEN_ANSWERS, **nulls}, PROFILE)
    required_nulled = [k for k in nulls if next(i for i in CITIZEN.items() if i.id == k).required]
    assert isinstance(result, Valid) is (not required_nulled)


@given(st.text(max_size=60), st.text(max_size=60))
def test_response_ids_are_uuid5_of_the_dossier_or_the_submission(dossier: str, source: str) -> None:
    # computed without the UUID object on the hot path: must stay exactly the uuid5 ids stored so far
    assert response_id_for_dossier(dossier) == str(uuid.uuid5(RESPONSE_NAMESPACE, f"dossier|{dossier}"))
    assert response_id_for_submission(source, dossier) == str(
        uuid.uuid5(RESPONSE_NAMESPACE, f"submission|{source}|{dossier}")
    )
