"""``GET /provinces/{code}/communes`` answered below the framework when its question is already known.

Why: a dashboard wall asks the same few province tables over and over; once a query string has been checked
by the FastAPI route (404/422 there, never remembered), the answer is the rendered JSON bytes of the table
cache (``IndicatorQueries.table_json``: never older than 1 s). Starlette's routing and response machinery
then cost most of the request's CPU (bench/scoring.py: ≈ 0.28 ms of server CPU per request for the table
and for a trivial FastAPI endpoint alike), which at 100 concurrent clients is what the p99 waits on. So
:class:`TableLane`, an ASGI middleware, answers a known question straight from the cache; anything else —
a first or bad query string, another path, another method — goes to the app unchanged, and the route stays
what ``/openapi.json`` documents.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from services.scoring.indicator_api import IndicatorQueries

__all__ = ["TableLane"]

_PREFIX, _SUFFIX = "/provinces/", "/communes"


class TableLane:
    """ASGI middleware: known province-table questions from the cache of rendered tables."""

    def __init__(self, app: ASGIApp, queries: Callable[[], IndicatorQueries | None]) -> None:
        self.app = app
        self._queries = queries  # None until the service has started (the queries need its pool)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            queries = self._queries()
            if queries is not None and path.startswith(_PREFIX) and path.endswith(_SUFFIX):
                key = queries.checked_table(path[len(_PREFIX) : -len(_SUFFIX)], scope["query_string"])
                if key is not None:
                    body = await queries.table_json(key)
                    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)
