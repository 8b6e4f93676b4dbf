"""The dashboards' HTTP query API over the read models."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ActivityRow", "query_router"]

UnitCode = Annotated[
    str, Path(pattern=r"^(\d{2}|\d{3}|\d{5})$", description="Administrative unit code (commune or province)")
]


class ActivityRow(BaseModel):
    """Events of one type at one unit on one day."""

    model_config = ConfigDict(frozen=True)

    unitcode: str = Field(description="Administrative unit code")
    day: date = Field(description="Vietnamese calendar day (UTC+7)")
    event_type: str = Field(description="CloudEvents type")
    events: int = Field(description="How many events")


def query_router(pool: asyncpg.Pool) -> APIRouter:
    """Routes reading the scoring read models."""
    router = APIRouter(prefix="/units", tags=["indicators"])

    @router.get("/{unitcode}/activity", summary="Events per type and day for a unit (a province sums its units)")
    async def activity(
        unitcode: UnitCode,
        since: Annotated[date | None, Query(alias="from", description="First day (inclusive)")] = None,
        until: Annotated[date | None, Query(alias="to", description="Last day (inclusive)")] = None,
    ) -> list[ActivityRow]:
        column = "provincecode" if len(unitcode) == 2 else "unitcode"
        rows = await pool.fetch(
            f"""SELECT $1::text AS unitcode, day, event_type, sum(events)::bigint AS events
                FROM unit_activity
                WHERE {column} = $1 AND ($2::date IS NULL OR day >= $2) AND ($3::date IS NULL OR day <= $3)
                GROUP BY day, event_type ORDER BY day, event_type""",
            unitcode,
            since,
            until,
        )
        return [ActivityRow(**dict(r)) for r in rows]

    return router
