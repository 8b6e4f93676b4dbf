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

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from services.surveys.catalog import InstrumentCatalog
from services.surveys.domain import Violation, local_day, response_id_for_dossier
from services.surveys.form import render_form, render_message
from services.surveys.submissions import (
    DEVICE_PATTERN,
    PATH,
    ResponseAccepted,
    ResponseRequest,
    SubmissionEndpoint,
    problem,
)
from services.surveys.tokens import LinkSigner

__all__ = ["api_router"]


def api_router(
    *,
    pool: asyncpg.Pool,
    endpoint: SubmissionEndpoint,
    catalog: InstrumentCatalog,
    signer: LinkSigner,
    clock: Callable[[], datetime],
    link_instrument: str,
) -> APIRouter:
    """The service's public API (OpenAPI at /openapi.json) and the form page."""
    router = APIRouter(tags=["surveys"])

    @router.post(
        PATH,
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
        raw: Request,
        request: ResponseRequest,
        x_device_id: Annotated[
            str | None, Header(pattern=DEVICE_PATTERN, description="Kiosk/tablet id; required without a link token")
        ] = None,
        idempotency_key: Annotated[
            str | None, Header(min_length=1, max_length=200, description="Same key on retries: stored once")
        ] = None,
    ) -> Response:
        """Submit one completed questionnaire."""
        # the service serves this route with services.surveys.submissions.SubmissionLane (below the
        # framework); this operation documents it and answers the same way when reached directly
        del request  # validated by FastAPI already; the endpoint reads the body itself, as in the lane
        reply = await endpoint.respond(await raw.body(), raw.headers.get("content-type"), x_device_id, idempotency_key)
        return Response(reply.body, reply.status, dict(reply.headers), media_type="application/json")

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
    ) -> Response:
        """One instrument version in full (elements, items, scales, profile bands, confidence tags)."""
        found = catalog.get(instrument_id, version)
        if found is None:
            known = [i.version for i in catalog.versions(instrument_id)]
            reply = problem(404, [Violation("version", version, f"no such version (versions: {known or 'none'})")])
            return Response(reply.body, reply.status, media_type="application/json")
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
