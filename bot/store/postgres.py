"""The feedback store on PostgreSQL (psycopg 3): a small async connection pool shared by the bot's tasks,
so several replicas behind one load balancer share decisions, ratings and handled events.

A connection can die under us (a server restart, a failover, a proxy's idle timeout): each operation is
retried once on a fresh connection, which is safe because every operation is one idempotent statement
(see ``base.CLAIM`` for the one that needs care)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import cache
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.store.base import Store, StoreUnavailable
from bot.store.migrations import MIGRATIONS, SCHEMA_MIGRATIONS

T = TypeVar("T")
log = logging.getLogger(__name__)

POOL_MAX = 10
CONNECT_TIMEOUT = 10.0  # seconds to get a connection before an operation fails
# pg_advisory_xact_lock key that serialises migrations across processes ("oncall" in ASCII).
MIGRATION_LOCK = 0x6F6E63616C6C


@cache
def _dialect(sql: str) -> str:
    """The shared statements' ``?`` placeholders as psycopg's ``%s`` (none of them holds a literal ? or %)."""
    return sql.replace("?", "%s")


class PostgresStore(Store):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=POOL_MAX,
            open=False,
            timeout=CONNECT_TIMEOUT,
            kwargs={"autocommit": True},  # every statement its own transaction; migrations open one
            name="oncall-store",
        )

    async def _open(self) -> None:
        try:
            await self._pool.open(wait=True, timeout=CONNECT_TIMEOUT)
            await self._with_connection(_migrate)
        except BaseException:
            await self._pool.close()
            raise

    async def close(self) -> None:
        await self._pool.close()

    async def _with_connection(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``work`` on a pooled connection, once more on another if the first one is lost; then
        StoreUnavailable (the server is down or restarting: the caller retries later)."""
        try:
            async with self._pool.connection() as conn:
                return await work(conn)
        except PoolTimeout as err:  # no connection within CONNECT_TIMEOUT: the server is down
            raise StoreUnavailable(f"PostgreSQL: {err}") from err
        except psycopg.OperationalError as err:
            log.warning("PostgreSQL connection lost (%s); retrying once", str(err).strip())
            await self._pool.check()  # drop the pool's other dead connections, not just this one
        try:
            async with self._pool.connection() as conn:
                return await work(conn)
        except psycopg.OperationalError as err:  # PoolTimeout included
            raise StoreUnavailable(f"PostgreSQL: {str(err).strip()}") from err

    async def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async def run(conn: psycopg.AsyncConnection[Any]) -> int:
            return (await conn.execute(_dialect(sql), params)).rowcount

        return await self._with_connection(run)

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async def run(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
            return await (await conn.execute(_dialect(sql), params)).fetchall()

        return await self._with_connection(run)


async def _migrate(conn: psycopg.AsyncConnection[Any]) -> None:
    """Apply the missing migrations in one transaction, under an advisory lock: a second process opening
    the same database waits for the first, then finds them applied."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute(SCHEMA_MIGRATIONS)
        cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        applied = (await cur.fetchone() or (0,))[0]
        for version, statements in enumerate(MIGRATIONS[applied:], start=applied + 1):
            for statement in statements:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_migrations VALUES (%s, %s)", (version, time.time()))
