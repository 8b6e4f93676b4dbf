"""HTTP API of the surveys service: kiosks, surveyors' tablets, web forms and the QR/SMS form page.

- ``POST /v1/responses`` — one completed questionnaire. Either a link ``token`` (QR on the receipt, SMS
  after the result: binds the response to the dossier, its unit and channel; at most one response per
  dossier) or an ``X-Device-Id`` header (kiosk, tablet: rate-limited per device, 429 with Retry-After).
  Optional ``Idempotency-Key``: a retried request is answered 200 with the response it stored first.
- ``GET /v1/instruments`` and ``GET /v1/instruments/{instrument_id}/versions/{version}`` — the
  questionnaires, for forms that render themselves.
- ``GET /s/{token}`` — the public form page of a link (Vietnamese, plain HTML).

Bad input is a 4xx whose ``detail`` lists (field, value, rule); the service answers 5xx only when it
cannot store anything (503: the database is unreachable), never for what a client sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Header, Path
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts.surveys import SurveyChannel
from services.surveys.catalog import InstrumentCatalog
from services.surveys.committer import GroupCommitter, Unavailable
from services.surveys.domain import Violation, local_day, response_id_for_dossier
from services.surveys.form import render_form, render_message
from services.surveys.intake import Outcome, Submission
from services.surveys.ratelimit import DeviceRateLimiter
from services.surveys.tokens import LinkClaims, LinkSigner

__all__ = ["api_router"]

_DEVICE = r"^[A-Za-z0-9_.:-]{1,100}$"
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


def _problem(status: int, violations: list[Violation] | tuple[Violation, ...], **headers: str) -> JSONResponse:
    detail = [{"field": v.field, "value": _jsonable(v.value), "rule": v.rule} for v in violations]
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value[:20]]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in list(value.items())[:20]}
    return str(value)


def api_router(
    *,
    pool: asyncpg.Pool,
    committer: GroupCommitter,
    catalog: InstrumentCatalog,
    signer: LinkSigner,
    limiter: DeviceRateLimiter,
    clock: Callable[[], datetime],
    link_instrument: str,
) -> APIRouter:
    """The service's public API (OpenAPI at /openapi.json) and the form page."""
    router = APIRouter(tags=["surveys"])

    @router.post(
        "/v1/responses",
        response_model=ResponseAccepted,
        status_code=201,
        responses={
            200: {"description": "Already stored under this Idempotency-Key (nothing changed)"},
            401: {"description": "The link token is invalid or expired"},
            409: {"description": "The dossier already has a response (refused, not overwritten)"},
            422: {"description": "Answers or profile invalid for the instrument version, unknown unit, ..."},
            429: {"description": "This device sent too many submissions; see Retry-After"},
            503: {"description": "Nothing stored (database unavailable); retry"},
        },
    )
    async def post_response(
        request: ResponseRequest,
        x_device_id: Annotated[
            str | None, Header(pattern=_DEVICE, description="Kiosk/tablet id; required without a link token")
        ] = None,
        idempotency_key: Annotated[
            str | None, Header(min_length=1, max_length=200, description="Same key on retries: stored once")
        ] = None,
    ) -> JSONResponse:
        """Submit one completed questionnaire."""
        now = clock()
        if request.token is not None:
            built = _from_link(request, signer.verify(request.token, now), link_instrument, idempotency_key)
        else:
            built = _from_device(request, x_device_id, limiter, idempotency_key)
        if isinstance(built, JSONResponse):
            return built
        try:
            outcome = await committer.submit(built)
        except Unavailable as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})
        return _answer(outcome)

    @router.get("/v1/instruments")
    async def list_instruments() -> list[dict[str, Any]]:
        """Every instrument version: id, version, title, status, effective period, what results are called."""
        return [
            {
                "id": i.id,
                "version": i.version,
                "title": i.title,
                "method": i.method,
                "results_label": i.results_label,
                "status": i.status,
                "effective_from": i.effective_from.isoformat(),
                "effective_to": None if i.effective_to is None else i.effective_to.isoformat(),
                "provinces": list(i.provinces),
                "items": len(i.items()),
            }
            for i in catalog.all()
        ]

    @router.get(
        "/v1/instruments/{instrument_id}/versions/{version}",
        responses={404: {"description": "No such instrument version"}},
    )
    async def get_instrument(
        instrument_id: Annotated[str, Path(max_length=100)], version: Annotated[str, Path(max_length=100)]
    ) -> JSONResponse:
        """One instrument version in full (elements, items, scales, profile bands, confidence tags)."""
        found = catalog.get(instrument_id, version)
        if found is None:
            known = [i.version for i in catalog.versions(instrument_id)]
            return _problem(404, [Violation("version", version, f"no such version (versions: {known or 'none'})")])
        return JSONResponse(found.model_dump(mode="json"))

    @router.get(
        "/s/{token}",
        response_class=HTMLResponse,
        responses={401: {"description": "Invalid or expired link"}, 404: {"description": "No instrument in force"}},
    )
    async def form_page(token: Annotated[str, Path(max_length=1024)]) -> HTMLResponse:
        """The public form page of a QR/SMS link (Vietnamese, works on a phone); posts to POST /v1/responses."""
        now = clock()
        claims = signer.verify(token, now)
        if isinstance(claims, str):
            expired = "expired" in claims
            message = (
                "Đường dẫn khảo sát đã hết hạn." if expired else "Đường dẫn khảo sát không hợp lệ."
            ) + " Ông/Bà có thể góp ý trực tiếp tại Bộ phận Một cửa."
            return HTMLResponse(render_message("Không mở được phiếu khảo sát", message), status_code=401)
        instrument = catalog.in_force(claims.instrument_id or link_instrument, local_day(now))
        if instrument is None:
            return HTMLResponse(
                render_message("Không có phiếu khảo sát", "Hiện chưa có phiếu khảo sát đang áp dụng."), status_code=404
            )
        answered = await pool.fetchval(
            "SELECT 1 FROM es_streams WHERE stream_id = $1", response_id_for_dossier(claims.dossier_id)
        )
        if answered:
            return HTMLResponse(
                render_message("Hồ sơ đã được đánh giá", "Hồ sơ này đã được đánh giá. Cảm ơn Ông/Bà!"), status_code=200
            )
        return HTMLResponse(render_form(instrument, token))

    return router


def _from_link(
    request: ResponseRequest, claims: LinkClaims | str, link_instrument: str, key: str | None
) -> Submission | JSONResponse:
    if isinstance(claims, str):
        return _problem(401, [Violation("token", "(not shown)", claims)])
    problems = []
    if request.unitcode is not None and request.unitcode != claims.unit_code:
        problems.append(Violation("unitcode", request.unitcode, f"the link is for unit {claims.unit_code}"))
    if request.channel is not None and request.channel.value != claims.channel:
        problems.append(Violation("channel", request.channel.value, f"the link is a {claims.channel} link"))
    if request.ma_tthc is not None and claims.ma_tthc is not None and request.ma_tthc != claims.ma_tthc:
        problems.append(Violation("ma_tthc", request.ma_tthc, f"the link is for procedure {claims.ma_tthc}"))
    if problems:
        return _problem(422, problems)
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
) -> Submission | JSONResponse:
    if device is None:
        rule = "a submission without a link token must come from a device: send the X-Device-Id header"
        return _problem(422, [Violation("X-Device-Id", None, rule)])
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
        return _problem(422, problems)
    wait = limiter.acquire(device)
    if wait > 0:
        rule = f"too many submissions from this device; retry in {wait:.0f} s"
        return _problem(429, [Violation("X-Device-Id", device, rule)], **{"Retry-After": str(max(1, round(wait)))})
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


def _answer(outcome: Outcome) -> JSONResponse:
    if outcome.status == "rejected":
        return _problem(409 if outcome.conflict else 422, outcome.violations)
    assert outcome.response_id is not None
    body = ResponseAccepted(
        status=outcome.status,
        response_id=outcome.response_id,
        event_id=None if outcome.event is None else str(outcome.event.id),
    ).model_dump(mode="json")
    if outcome.status == "duplicate":
        return JSONResponse(body, status_code=200, headers={"Idempotent-Replayed": "true"})
    return JSONResponse(body, status_code=201)
