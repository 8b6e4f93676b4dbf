"""``POST /v1/responses`` below the framework: the ASGI lane answers exactly as the documented FastAPI
operation does (same statuses, bodies and headers, envelope errors in FastAPI's shape), and the validator's
fast paths (answers valid as sent, shared answer values) judge exactly as the full checks."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from contracts.surveys import Answer, SurveyResponseSubmitted
from services.surveys.api import api_router
from services.surveys.catalog import load_catalog
from services.surveys.committer import Unavailable
from services.surveys.domain import ResponseState, Valid, Violation, decide, validate_answers
from services.surveys.domain.instrument import ItemKind
from services.surveys.domain.validation import _multi_value
from services.surveys.intake import Outcome, Submission
from services.surveys.ratelimit import DeviceRateLimiter
from services.surveys.submissions import LaneApp, SubmissionEndpoint, SubmissionLane
from services.surveys.tokens import LinkClaims, LinkSigner
from tests.unit.test_surveys_domain import command
from tests.unit.test_surveys_instruments import PROFILE, SIPAS_2023, SIPAS_2023_ANSWERS

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
SIGNER = LinkSigner(b"unit-test-link-key-0123456789")


class _Committer:
    """Stands in for the group commit: answers by the submission's dossier (no database in unit tests)."""

    def __init__(self) -> None:
        self.submitted: list[Submission] = []

    async def submit(self, submission: Submission) -> Outcome:
        self.submitted.append(submission)
        dossier = submission.linked_dossier_id or ""
        if dossier.endswith("down"):
            msg = "the service is starting or stopping"
            raise Unavailable(msg)
        if dossier.endswith("again"):
            return Outcome("duplicate", "response-1")
        return Outcome("accepted", "response-1")


def _apps(*, front: bool = False) -> tuple[Any, FastAPI]:
    """(the lane, the documented FastAPI operation alone); ``front``: the lane as the service serves it
    (:class:`LaneApp`, ahead of FastAPI's request cycle), else as an ASGI middleware."""
    endpoint = SubmissionEndpoint(
        committer=_Committer(),  # type: ignore[arg-type]  # the committer's one method
        signer=SIGNER,
        limiter=DeviceRateLimiter(60, 100, lambda: 0.0),
        clock=lambda: NOW,
        link_instrument="sipas-service",
    )
    plain, served = FastAPI(), LaneApp(endpoint=lambda: endpoint)
    for app in (plain, served):
        app.include_router(
            api_router(
                pool=None,  # type: ignore[arg-type]  # only the form page reads the database
                endpoint=endpoint,
                catalog=load_catalog(),
                signer=SIGNER,
                clock=lambda: NOW,
                link_instrument="sipas-service",
            )
        )
    return (served if front else SubmissionLane(plain, lambda: endpoint)), plain


def _token(dossier: str, *, expires: datetime = NOW + timedelta(days=1)) -> str:
    return SIGNER.issue(LinkClaims(dossier, "00004", "qr", expires, None, "1.001776"))


def _full(**changes: Any) -> dict[str, Any]:
    return {"token": _token("D-1"), "answers": SIPAS_2023_ANSWERS, "respondent": PROFILE, **changes}


CASES: list[tuple[str, Any, dict[str, str]]] = [
    ("stored", _full(), {}),
    ("stored again (Idempotency-Key)", _full(token=_token("D-again")), {"Idempotency-Key": "k-1"}),
    ("database down", _full(token=_token("D-down")), {}),
    ("not JSON", b"{not json", {}),
    ("empty body", b"", {}),
    ("a JSON list", [1, 2], {}),
    ("unknown field", _full(comment="xin cam on"), {}),
    ("wrong type", _full(answers=["a"]), {}),
    ("too long", _full(unitcode="0" * 11), {}),
    ("bad channel", _full(channel="fax"), {}),
    ("bad device header", {"answers": {}, "respondent": {}}, {"X-Device-Id": "kiosk 1!"}),
    ("empty idempotency key", _full(), {"Idempotency-Key": ""}),
    ("no token, no device", {"answers": {}, "respondent": {}}, {}),
    ("device without unit", {"answers": {}, "respondent": {}, "channel": "kiosk"}, {"X-Device-Id": "kiosk-1"}),
    (
        "device with a link channel",
        {"unitcode": "00004", "instrument_id": "x", "channel": "qr", "answers": {}, "respondent": {}},
        {"X-Device-Id": "kiosk-1"},
    ),
    ("altered token", _full(token=_token("D-1")[:-2] + "AA"), {}),
    ("expired token", _full(token=_token("D-1", expires=NOW - timedelta(seconds=1))), {}),
    ("token for another unit", _full(unitcode="00007"), {}),
]


def _comparable(answer: Any) -> Any:
    """The answer as compared: request validation errors by location (pydantic words a message differently
    when it validates JSON than when it validates the dict FastAPI decoded first); the rest in full."""
    detail = answer.get("detail") if isinstance(answer, dict) else None
    if isinstance(detail, list) and detail and "loc" in detail[0]:
        return sorted(tuple(e["loc"]) for e in detail)
    return answer


@pytest.mark.parametrize("front", [False, True], ids=["middleware", "service app"])
@pytest.mark.parametrize(("name", "body", "headers"), CASES, ids=[c[0] for c in CASES])
def test_the_lane_answers_as_the_documented_operation(
    name: str, body: Any, headers: dict[str, str], *, front: bool
) -> None:
    lane, plain = _apps(front=front)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def call(app: Any) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.post(
                "/v1/responses", content=content, headers={"Content-Type": "application/json", **headers}
            )

    fast, documented = asyncio.run(call(lane)), asyncio.run(call(plain))
    assert fast.status_code == documented.status_code, name
    assert _comparable(fast.json()) == _comparable(documented.json()), name
    for header in ("retry-after", "idempotent-replayed", "content-type"):
        assert fast.headers.get(header) == documented.headers.get(header), (name, header)
    assert fast.status_code < 500 or fast.status_code == 503


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_not_declared_json_is_refused_as_fastapi_refuses_it(content_type: str | None) -> None:
    lane, plain = _apps()
    headers = {} if content_type is None else {"Content-Type": content_type}

    async def call(app: Any) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.post("/v1/responses", content=json.dumps(_full()).encode(), headers=headers)

    fast, documented = asyncio.run(call(lane)), asyncio.run(call(plain))
    assert fast.status_code == documented.status_code == 422
    assert [e["loc"] for e in fast.json()["detail"]] == [e["loc"] for e in documented.json()["detail"]] == [["body"]]


@pytest.mark.parametrize("front", [False, True], ids=["middleware", "service app"])
def test_the_lane_leaves_every_other_request_to_the_app(*, front: bool) -> None:
    lane, _ = _apps(front=front)

    async def call() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=lane), base_url="http://test") as client:
            return await client.get("/v1/instruments"), await client.get("/v1/responses")

    instruments, wrong_method = asyncio.run(call())
    assert instruments.status_code == 200
    assert {i["id"] for i in instruments.json()} >= {"sipas-service"}
    assert wrong_method.status_code == 405


def test_envelope_errors_keep_fastapi_shape() -> None:
    lane, _ = _apps()

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=lane), base_url="http://test") as client:
            return await client.post("/v1/responses", json=_full(comment="x"), headers={"X-Device-Id": "a b"})

    answer = asyncio.run(call())
    assert answer.status_code == 422
    locations = [error["loc"] for error in answer.json()["detail"]]
    assert ["body", "comment"] in locations


def test_a_valid_submission_gives_the_event_a_full_validation_gives() -> None:
    # the shared answer values and the set-membership fast path must build exactly the validated event
    decided = decide(ResponseState(), command(), NOW)
    assert not isinstance(decided, tuple) or len(decided) == 1
    assert isinstance(decided, tuple)
    [event] = decided
    assert SurveyResponseSubmitted.model_validate_json(event.model_dump_json()) == event
    fresh = TypeAdapter(tuple[Answer, ...]).validate_python([a.model_dump() for a in event.answers])
    assert fresh == event.answers


@given(
    item=st.sampled_from([i for i in SIPAS_2023.items() if i.scale is not None and not i.needs_policy_group]),
    value=st.one_of(st.booleans(), st.integers(-3, 9), st.floats(0, 6), st.text(max_size=3)),
)
@settings(max_examples=200, deadline=None)
def test_a_scale_answer_is_accepted_exactly_when_it_is_a_point(item: Any, value: Any) -> None:
    # seen answers are cached by (item, type, value): true must stay refused once 1 was accepted, 4.0 once 4
    assert item.scale is not None
    points = SIPAS_2023.scales[item.scale].points
    for first in (1, 4, value):
        validate_answers(SIPAS_2023, {**SIPAS_2023_ANSWERS, item.id: first}, PROFILE)
    result = validate_answers(SIPAS_2023, {**SIPAS_2023_ANSWERS, item.id: value}, PROFILE)
    expected = type(value) is int and value in points
    assert isinstance(result, Valid) == expected, (item.id, value, result)
    if isinstance(result, Valid):
        [answer] = [a for a in result.answers if a.item_id == item.id]
        assert type(answer.value) is int
        assert answer.value == value


def test_the_service_app_leaves_the_route_to_fastapi_until_the_endpoint_exists() -> None:
    """Before the lifespan opened the database (and after), FastAPI answers the route (here: no routes yet)."""
    app = LaneApp(endpoint=lambda: None)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.post("/v1/responses", json=_full())

    assert asyncio.run(call()).status_code == 404


MULTI = [i for i in SIPAS_2023.items() if i.kind is ItemKind.MULTI_CHOICE]


@given(
    item=st.sampled_from(MULTI),
    value=st.lists(st.one_of(st.sampled_from(["staff_attitude", "shorter_processing_time", "x"]), st.integers(0, 2))),
)
@settings(max_examples=300, deadline=None)
def test_a_selection_remembered_valid_judges_as_the_full_check(item: Any, value: list[Any]) -> None:
    # valid selections are remembered per item as sent: a second submission must be judged exactly as the first,
    # and as the full check of the selection alone judges it
    options = sorted(item.options or {})
    judged = [validate_answers(SIPAS_2023, {**SIPAS_2023_ANSWERS, item.id: list(value)}, PROFILE) for _ in range(2)]
    assert judged[0] == judged[1]
    full = _multi_value(item, list(value))
    assert isinstance(judged[0], Valid) == (not isinstance(full, Violation)), (value, options, judged[0])
    if isinstance(judged[0], Valid):
        [answer] = [a for a in judged[0].answers if a.item_id == item.id]
        assert answer.value == full
