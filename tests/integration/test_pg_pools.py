"""Pools of several processes of a service starting at once on a fresh database (e.g. SURVEYS_ROLES or
SCORING_ROLES split in two): each creates the service's schema if missing, and none fails for the other."""

import asyncio
import uuid

import asyncpg
import pytest

from eventkit.pg import create_pool

pytestmark = pytest.mark.integration


async def test_concurrent_starters_create_one_schema_without_failing(database_url: str) -> None:
    for _ in range(5):  # the race is a matter of timing: several rounds, each on a new schema
        schema = f"race_{uuid.uuid4().hex[:8]}"
        pools = await asyncio.gather(*(create_pool(database_url, schema, min_size=1, max_size=1) for _ in range(8)))
        try:
            conn = await asyncpg.connect(database_url)
            try:
                found = await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema)
                assert found == 1
                await conn.execute(f"DROP SCHEMA {schema}")
            finally:
                await conn.close()
        finally:
            await asyncio.gather(*(p.close() for p in pools))
