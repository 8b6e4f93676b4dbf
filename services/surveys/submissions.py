"""``POST /v1/responses`` served below the framework: raw body in, status and JSON bytes out.

Why: on the 2 cores this service shares with PostgreSQL and Kafka, FastAPI's request cycle (its middleware
layers, dependency solving, the body read into a dict by ``json`` and then validated into the request model,
the response serialised again) cost more CPU per submission than everything the service itself does
(bench/surveys.py: ~0.3 ms of 0.45 ms for a trivial endpoint). So this one route is taken before the
framework (by :class:`LaneApp`, the service's app; :class:`SubmissionLane` does the same as an ASGI
middleware): the body is parsed and validated once, in pydantic-core, into the same
:class:`ResponseRequest` model the OpenAPI document declares; the answer is written as bytes. Everything
else goes to the FastAPI app unchanged.

The FastAPI operation of the route stays declared (``services.surveys.api``): it is what ``/openapi.json``
documents, and it answers through the same :meth:`SubmissionEndpoint.respond`, so both paths give the same
answers (tests/unit/test_surveys_submissions.py checks it). Errors keep FastAPI's shapes: an envelope that
does not match the request model is a 422 with ``detail`` = [{type, loc, msg, input}] (``loc`` starting
with ``body`` or ``header``; pydantic words some messages differently for JSON input), a refused submission
a 4xx with ``detail`` = [{field, value, rule}].
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import pydantic_core
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.surveys import SurveyChannel
from services.surveys.committer import GroupCommitter, Unavailable
from services.surveys.domain import Violation
from services.surveys.intake import Outcome, Submission
from services.surveys.ratelimit import DeviceRateLimiter
from services.surveys.tokens import LinkClaims, LinkSigner

__all__ = [
    "DEVICE_PATTERN",
    "MAX_BODY_BYTES",
    "PATH",
    "LaneApp",
    "Reply",
    "ResponseAccepted",
    "ResponseRequest",
    "SubmissionEndpoint",
    "SubmissionLane",
    "serve_submission",
]

PATH = "/v1/responses"
DEVICE_PATTERN = r"^[A-Za-z0-9_.:-]{1,100}$"
#: a full questionnaire is about 1 kB; far more is not a submission (413, read no further)
MAX_BODY_BYTES = 256 * 1024
#: channels whose responses come from a link (the dossier holder) and never from a device
_LINK_CHANNELS = frozenset({SurveyChannel.QR, SurveyChannel.SMS, SurveyChannel.ONLINE})


class ResponseRequest(BaseModel):
    """A completed questionnaire (answers are checked against the instrument version, not here)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str | None = Field(
        default=None, max_length=1024, description="The QR/SMS link token; binds the response to a dossier"
    )
    unitcode: str | None = Field(
        default=None, max_length=10, description="Commune code; required without a token (the token carries it)"
    )
    instrument_id: str | None = Field(
        default=None, max_length=100, description="Questionnaire id; default with a token: the link's instrument"
    )
    instrument_version: str | None = Field(
        default=None, max_length=100, description="Questionnaire version; default: the version in force today"
    )
    survey_id: str | None = Field(default=None, max_length=200, description="Survey round (campaign)")
    channel: SurveyChannel | None = Field(
        default=None, description="How it was administered; with a token: the link's channel"
    )
    ma_tthc: str | None = Field(default=None, max_length=20, description="MaTTHC of the procedure used")
    policy_group: str | None = Field(default=None, max_length=200, description="Policy group, for policy surveys")
    weight: float | None = Field(default=None, description="Design weight, when the instrument has one")
    respondent: dict[str, Any] = Field(description="Profile bands: type, age_band, sex, ethnicity (if asked)")
    answers: dict[str, Any] = Field(description="Item id -> value: a scale point, an option code or a list of them")


class ResponseAccepted(BaseModel):
    """The stored response."""

    status: str = Field(description="accepted (stored now) or duplicate (this Idempotency-Key was stored before)")
    response_id: str = Field(description="Id of the response (the event's stream)")
    event_id: str | None = Field(default=None, description="Id of the response event (when stored now)")


# the header constraints the OpenAPI operation declares, checked with the same pydantic rules
_DEVICE_HEADER: TypeAdapter[str] = TypeAdapter(Annotated[str, Field(pattern=DEVICE_PATTERN)])
_KEY_HEADER: TypeAdapter[str] = TypeAdapter(Annotated[str, Field(min_length=1, max_length=200)])


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, extra headers, JSON body."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


class SubmissionEndpoint:
    """What ``POST /v1/responses`` does, whichever way the request reached it."""

    def __init__(
        self,
        *,
        committer: GroupCommitter,
        signer: LinkSigner,
        limiter: DeviceRateLimiter,
        clock: Callable[[], datetime],
        link_instrument: str,
    ) -> None:
        self._committer = committer
        self._signer = signer
        self._limiter = limiter
        self._clock = clock
        self._link_instrument = link_instrument

    async def respond(self, body: bytes, content_type: str | None, device: str | None, key: str | None) -> Reply:
        """The answer to one submission: 201/200 stored, 4xx refused with the reasons, 503 retry."""
        request = _parse(body, content_type)
        if isinstance(request, Reply):
            return request
        errors = _header_errors(device, key)
        if errors:
            return Reply(422, _detail(errors))
        if request.token is not None:
            built = _from_link(request, self._signer.verify(request.token, self._clock()), self._link_instrument, key)
        else:
            built = _from_device(request, device, self._limiter, key)
        if isinstance(built, Reply):
            return built
        try:
            outcome = await self._committer.submit(built)
        except Unavailable as exc:
            return Reply(503, pydantic_core.to_json({"detail": str(exc)}), (("retry-after", "1"),))
        return _answer(outcome)


class SubmissionLane:
    """ASGI middleware: ``POST /v1/responses`` to :class:`SubmissionEndpoint`, everything else to ``app``.

    ``endpoint`` is asked per request: the endpoint exists once the service's lifespan has opened the
    database; before that (and after) the request goes to the app, whose route answers 503.
    """

    def __init__(self, app: ASGIApp, endpoint: Callable[[], SubmissionEndpoint | None]) -> None:
        self.app = app
        self._endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = _lane_endpoint(scope, self._endpoint)
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        await serve_submission(endpoint, scope, receive, send)


class LaneApp(FastAPI):
    """The service's FastAPI app with :class:`SubmissionLane`'s route served in front of it.

    As a middleware the lane still sat behind FastAPI's own request cycle (its telemetry checks, the body
    limit, the error middleware, each wrapping ``send``): ~10 % of the service's CPU per submission. Here
    ``POST /v1/responses`` is taken before any of it; everything else, and the route itself until the
    endpoint exists, is FastAPI's as before. Nothing in that stack applies to the lane: it reads the body
    with its own limit and never raises for what a client sends.
    """

    def __init__(self, *, endpoint: Callable[[], SubmissionEndpoint | None], **fastapi: Any) -> None:
        super().__init__(**fastapi)
        self._lane_endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = _lane_endpoint(scope, self._lane_endpoint)
        if endpoint is None:
            await super().__call__(scope, receive, send)
            return
        await serve_submission(endpoint, scope, receive, send)


def _lane_endpoint(scope: Scope, endpoint: Callable[[], SubmissionEndpoint | None]) -> SubmissionEndpoint | None:
    """The endpoint when ``scope`` is a ``POST /v1/responses`` the lane can serve now."""
    if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
        return None
    return endpoint()


async def serve_submission(endpoint: SubmissionEndpoint, scope: Scope, receive: Receive, send: Send) -> None:
    """One ``POST /v1/responses`` as an ASGI exchange: body in, the endpoint's reply out."""
    body = await _read_body(receive)
    if body is None:  # the client went away
        return
    device = key = content_type = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"x-device-id":
            device = value.decode("latin-1")
        elif name == b"idempotency-key":
            key = value.decode("latin-1")
    reply = (
        Reply(413, pydantic_core.to_json({"detail": f"a submission is at most {MAX_BODY_BYTES} bytes"}))
        if isinstance(body, int)
        else await endpoint.respond(body, content_type, device, key)
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(reply.body)).encode()),
        *((name.encode(), value.encode()) for name, value in reply.headers),
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


async def _read_body(receive: Receive) -> bytes | int | None:
    """The request body; its size once past :data:`MAX_BODY_BYTES`; ``None`` when the client disconnected."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return size
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _parse(body: bytes, content_type: str | None) -> ResponseRequest | Reply:
    """The request model from the body, in one pydantic-core pass; failures reported as FastAPI reports them.

    As FastAPI (strict content type): the body is JSON only when the content type says so; otherwise, or
    when it is not JSON, the answer names the same error FastAPI's request validation would.
    """
    if not body:
        return Reply(422, _detail([{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]))
    if not _is_json(content_type):
        return _validated(body.decode("utf-8", "replace"))
    try:
        return ResponseRequest.model_validate_json(body)
    except ValidationError as exc:
        if not any(error["type"] == "json_invalid" for error in exc.errors()):
            return Reply(422, _detail(_errors(exc, "body")))
    # not JSON to pydantic-core: FastAPI decodes with the json module, whose verdict and position it reports
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        error = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        position = exc.pos if isinstance(exc, json.JSONDecodeError) else exc.start
        return Reply(
            422,
            _detail(
                [
                    {
                        "type": "json_invalid",
                        "loc": ["body", position],
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": error},
                    }
                ]
            ),
        )
    return _validated(parsed)


def _validated(value: Any) -> ResponseRequest | Reply:
    try:
        return ResponseRequest.model_validate(value)
    except ValidationError as exc:
        return Reply(422, _detail(_errors(exc, "body")))


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _detail(errors: list[dict[str, Any]]) -> bytes:
    return pydantic_core.to_json({"detail": errors})


def _errors(exc: ValidationError, where: str, name: str | None = None) -> list[dict[str, Any]]:
    """pydantic's errors as FastAPI reports a request validation error (``loc`` starts with where)."""
    prefix: tuple[str, ...] = (where,) if name is None else (where, name)
    out = []
    for error in exc.errors(include_url=False)[:20]:
        item: dict[str, Any] = {
            "type": error["type"],
            "loc": [*prefix, *error["loc"]],
            "msg": error["msg"],
            "input": _jsonable(error.get("input")),
        }
        if "ctx" in error:
            item["ctx"] = {k: _jsonable(v) for k, v in error["ctx"].items()}
        out.append(item)
    return out


def _header_errors(device: str | None, key: str | None) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    for adapter, name, value in ((_DEVICE_HEADER, "x-device-id", device), (_KEY_HEADER, "idempotency-key", key)):
        if value is not None:
            try:
                adapter.validate_python(value)
            except ValidationError as exc:
                errors += _errors(exc, "header", name)
    return errors


def problem(status: int, violations: Sequence[Violation], *headers: tuple[str, str]) -> Reply:
    """A refusal: ``detail`` lists (field, value, rule)."""
    detail = [{"field": v.field, "value": _jsonable(v.value), "rule": v.rule} for v in violations]
    return Reply(status, pydantic_core.to_json({"detail": detail}), headers)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value[:20]]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in list(value.items())[:20]}
    return str(value)


def _from_link(
    request: ResponseRequest, claims: LinkClaims | str, link_instrument: str, key: str | None
) -> Submission | Reply:
    if isinstance(claims, str):
        return problem(401, [Violation("token", "(not shown)", claims)])
    problems = []
    if request.unitcode is not None and request.unitcode != claims.unit_code:
        problems.append(Violation("unitcode", request.unitcode, f"the link is for unit {claims.unit_code}"))
    if request.channel is not None and request.channel.value != claims.channel:
        problems.append(Violation("channel", request.channel.value, f"the link is a {claims.channel} link"))
    if request.ma_tthc is not None and claims.ma_tthc is not None and request.ma_tthc != claims.ma_tthc:
        problems.append(Violation("ma_tthc", request.ma_tthc, f"the link is for procedure {claims.ma_tthc}"))
    if problems:
        return problem(422, problems)
    return Submission(
        source=f"link:{claims.dossier_id}",
        submission_id=key or str(uuid.uuid4()),
        unit_code=claims.unit_code,
        instrument_id=request.instrument_id or claims.instrument_id or link_instrument,
        instrument_version=request.instrument_version,
        channel=claims.channel,
        answers=request.answers,
        respondent=request.respondent,
        survey_id=request.survey_id,
        ma_tthc=request.ma_tthc or claims.ma_tthc,
        policy_group=request.policy_group,
        weight=request.weight,
        linked_dossier_id=claims.dossier_id,
    )


def _from_device(
    request: ResponseRequest, device: str | None, limiter: DeviceRateLimiter, key: str | None
) -> Submission | Reply:
    if device is None:
        rule = "a submission without a link token must come from a device: send the X-Device-Id header"
        return problem(422, [Violation("X-Device-Id", None, rule)])
    problems = []
    if request.unitcode is None:
        problems.append(Violation("unitcode", None, "required without a link token"))
    if request.instrument_id is None:
        problems.append(Violation("instrument_id", None, "required without a link token"))
    if request.channel is None:
        problems.append(Violation("channel", None, "required without a link token (kiosk, face_to_face, ...)"))
    elif request.channel in _LINK_CHANNELS:
        rule = f"{request.channel.value} responses come through a link token (they are about the holder's dossier)"
        problems.append(Violation("channel", request.channel.value, rule))
    if problems:
        return problem(422, problems)
    wait = limiter.acquire(device)
    if wait > 0:
        rule = f"too many submissions from this device; retry in {wait:.0f} s"
        return problem(429, [Violation("X-Device-Id", device, rule)], ("retry-after", str(max(1, round(wait)))))
    assert request.channel is not None
    return Submission(
        source=f"device:{device}",
        submission_id=key or str(uuid.uuid4()),
        unit_code=request.unitcode,
        instrument_id=request.instrument_id,
        instrument_version=request.instrument_version,
        channel=request.channel.value,
        answers=request.answers,
        respondent=request.respondent,
        survey_id=request.survey_id,
        ma_tthc=request.ma_tthc,
        policy_group=request.policy_group,
        weight=request.weight,
    )


def _answer(outcome: Outcome) -> Reply:
    if outcome.status == "rejected":
        return problem(409 if outcome.conflict else 422, outcome.violations)
    assert outcome.response_id is not None
    body = pydantic_core.to_json(
        {
            "status": outcome.status,
            "response_id": outcome.response_id,
            "event_id": None if outcome.event_id is None else str(outcome.event_id),
        }
    )
    if outcome.status == "duplicate":
        return Reply(200, body, (("idempotent-replayed", "true"),))
    return Reply(201, body)
