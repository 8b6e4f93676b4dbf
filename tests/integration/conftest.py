"""Fixtures for plumbing integration tests: a migrated pool in a fresh database on the real PostgreSQL."""

from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from eventkit import postgres, projection, relay
from eventkit.pg import apply_migrations, create_pool


@pytest_asyncio.fixture
async def pg_pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(fresh_database, "plumbing", min_size=1, max_size=8)
    await apply_migrations(pool, "eventkit.store", postgres.MIGRATIONS)
    await apply_migrations(pool, "eventkit.relay", relay.MIGRATIONS)
    await apply_migrations(pool, "eventkit.projection", projection.MIGRATIONS)
    try:
        yield pool
    finally:
        await pool.close()
