"""The search's own PostgreSQL reader for the event loop: a few autocommit psycopg
``AsyncConnection`` s, one prepared SELECT per request.

Why not the engine's pool: a search by serial is one indexed SELECT, and the API route is async.
Run on the engine's (blocking) connection it either stalls the event loop for the whole round
trip, so concurrent requests queue behind each other's database waits, or it pays a hop through
the shared thread pool, which costs more than the query. Here the route awaits the database
like any other I/O, and the loop serves other requests meanwhile.

The connections are the search's alone and read-only in practice (fixed SELECTs from
``factory/audit/search.py``, autocommit, ``default_transaction_read_only``); statements are
prepared on first use per connection. At most ``size`` are open; a request finding none free
waits up to ``timeout`` seconds and then gets the pool's own timeout (a 503 to retry, as with
the engine). Errors are raised as SQLAlchemy's exception types, as ``select_rows`` raises them,
so the API answers them as it answers any other database error, and a connection that failed is
closed rather than reused. A reader belongs to one event loop: used from another (a second test
client on the same context), it drops its connections and starts afresh.
"""

from __future__ import annotations

import asyncio
import re
import select
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from factory.kernel.context import AppContext

# The placeholder syntax of SQLAlchemy's text() (as select_rows takes it): ``:name``, not ``::cast``.
_NAMED = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


@lru_cache(maxsize=64)
def _pyformat(sql: str) -> str:
    """``:name`` placeholders as psycopg's ``%(name)s`` (literal ``%`` doubled)."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


class AsyncSearchReader:
    def __init__(self, conninfo: str, size: int, timeout: float) -> None:
        self.conninfo = conninfo
        self.size = size
        self.timeout = timeout
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def for_engine(cls, engine: Engine, size: int, timeout: float) -> AsyncSearchReader:
        url = engine.url.set(drivername="postgresql")
        return cls(url.render_as_string(hide_password=False), size, timeout)

    async def rows(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Rows of a fixed SELECT written with ``:name`` placeholders (as ``select_rows`` takes)."""
        statement = _pyformat(sql)
        await self._take_slot()
        try:
            conn = self._idle_connection() or await self._connect()
            try:
                cursor = conn.cursor()
                await cursor.execute(statement, params, prepare=True)
                rows = await cursor.fetchall()
            except psycopg.Error as exc:
                await conn.close()
                lost = isinstance(exc, psycopg.OperationalError)
                raise DBAPIError.instance(
                    statement, dict(params), exc, psycopg.Error, connection_invalidated=lost
                ) from exc
            except BaseException:  # cancelled mid-query: the connection's state is unknown
                await conn.close()
                raise
            self._idle.append(conn)
            return rows
        finally:
            self._slots.release()

    async def _take_slot(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._rebind(loop)
        if not self._slots.locked():
            await self._slots.acquire()  # free: returns at once, no task for a timeout
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), self.timeout)
        except TimeoutError:
            raise PoolTimeout(f"no search connection free within {self.timeout:g} s") from None

    def _idle_connection(self) -> psycopg.AsyncConnection[Any] | None:
        """The most recently used idle connection that is still alive (as the engine's checkout
        tells: nothing is owed to an idle connection, so a readable socket is the server's goodbye)."""
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and not conn.broken:
                poller = select.poll()
                poller.register(conn.pgconn.socket, select.POLLIN)
                if not poller.poll(0):
                    return conn
            conn.pgconn.finish()
        return None

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, options="-c default_transaction_read_only=on"
        )

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        for conn in self._idle:  # made on another loop, which may be gone: closed without it
            conn.pgconn.finish()
        self._idle = []
        self._slots = asyncio.Semaphore(self.size)
        self._loop = loop


def search_reader(ctx: AppContext) -> AsyncSearchReader | None:
    """The context's async search reader on PostgreSQL; None on SQLite (a local file read costs
    less than any hop, so the search reads it through the engine, on the loop)."""
    if ctx.settings.is_sqlite:
        return None
    capacity = ctx.settings.capacity
    return ctx.shared(
        AsyncSearchReader,
        lambda c: AsyncSearchReader.for_engine(c.engine, capacity.db_pool_size, capacity.db_pool_timeout),
    )
