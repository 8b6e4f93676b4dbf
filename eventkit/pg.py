"""PostgreSQL plumbing: one pool per service, each service in its own schema, and forward-only migrations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from asyncpg.pool import PoolConnectionProxy

__all__ = ["Connection", "Migration", "apply_migrations", "create_pool", "quote_ident"]

#: a connection, whether taken from a pool or opened directly
Connection = asyncpg.Connection | PoolConnectionProxy

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Migration:
    """One forward-only schema change, identified by a name that never changes once released."""

    name: str
    sql: str


def quote_ident(name: str) -> str:
    """A schema or table name we generate ourselves; refuse anything that would need quoting."""
    if not _IDENT.match(name):
        msg = f"invalid SQL identifier {name!r}"
        raise ValueError(msg)
    return name


async def create_pool(url: str, schema: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections work in ``schema`` (created if missing): services never share tables."""
    quote_ident(schema)
    conn = await asyncpg.connect(url)
    try:
        # IF NOT EXISTS is not safe against a concurrent creator (two processes of a service starting on a
        # fresh database: one of them fails on the catalog's unique index): the same lock as the migrations
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('chiso.migrations'))")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": f"chiso-{schema}"},
    )
    if pool is None:  # pragma: no cover - asyncpg returns None only when not awaited
        msg = "could not create the connection pool"
        raise RuntimeError(msg)
    return pool


async def apply_migrations(pool: asyncpg.Pool, component: str, migrations: Sequence[Migration]) -> list[str]:
    """Apply the not-yet-applied ``migrations`` of ``component`` in order; returns the names applied.

    A transaction-scoped advisory lock serialises concurrent starters (two replicas booting at once).
    """
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('chiso.migrations'))")
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   component text NOT NULL,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (component, name))"""
        )
        done = {
            r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations WHERE component = $1", component)
        }
        for migration in migrations:
            if migration.name in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (component, name) VALUES ($1, $2)", component, migration.name
            )
            applied.append(migration.name)
    return applied
