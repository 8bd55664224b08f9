"""The search's own PostgreSQL reader for the event loop: a few autocommit connections, one
prepared SELECT per request, driven through libpq directly (psycopg's ``pq`` layer).

Why not the engine's pool: a search by serial is one indexed SELECT, and the API route is async.
Run on the engine's (blocking) connection it either stalls the event loop for the whole round
trip, so concurrent requests queue behind each other's database waits, or it pays a hop through
the shared thread pool, which costs more than the query. Here the route awaits the database
like any other I/O, and the loop serves other requests meanwhile.

Why libpq directly: psycopg's async cursor costs about twice the CPU of the query it sends
(adaptation layers, generators, and registering the socket with the event loop for every wait,
then removing it). Here each connection's socket stays registered for its life, a statement is
prepared once per connection, parameters go as text and results come back as text read by
column type: about a third of the cursor's cost, on the audit API's hottest read.

The connections are the search's alone and read-only (fixed SELECTs from
``factory/audit/search.py``, autocommit, ``default_transaction_read_only``). At most ``size`` are
open; a request finding none free waits up to ``timeout`` seconds and then gets the pool's own
timeout (a 503 to retry, as with the engine). Errors are raised as SQLAlchemy's exception types,
as ``select_rows`` raises them, so the API answers them as it answers any other database error.
A connection is closed, never reused, when it failed or a request was cancelled mid-query; an
idle connection whose socket turns readable is read at once: the server closing it (nothing is
owed to an idle connection) closes it here too, before any request picks it. A reader belongs to one event loop: used
from another (a second test client on the same context), it drops its connections and starts
afresh.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import errors, pq
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from factory.kernel.context import AppContext

# The placeholder syntax of SQLAlchemy's text() (as select_rows takes it): ``:name``, not ``::cast``.
_NAMED = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")
_INTEGER_TYPES = frozenset({20, 21, 23})  # int8, int2, int4 (pg_type OIDs)
_Row = tuple[Any, ...]


@dataclass(frozen=True)
class _Statement:
    """A SELECT as libpq takes it: positional placeholders and the names bound to them in order."""

    name: bytes
    sql: bytes
    params: tuple[str, ...]


_names = itertools.count(1)


@lru_cache(maxsize=256)
def _statement(sql: str) -> _Statement:
    names: list[str] = []

    def positional(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = _NAMED.sub(positional, sql)
    # A fresh name each time: a text evicted from the cache and seen again must not reuse a name
    # that some connection prepared for another text.
    return _Statement(f"df_search_{next(_names)}".encode(), text.encode(), tuple(names))


def _text(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text format.

    :raises psycopg.DataError: a NUL character, which text cannot hold (libpq would cut the value
        there and search for another serial), as psycopg's own adapter refuses it.
    """
    if value is None:
        return None
    data = (value if isinstance(value, str) else str(value)).encode()
    if b"\x00" in data:
        raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    return data


def _array_text(keys: dict[str, Any]) -> str:
    """The keys as a PostgreSQL text-array literal: each quoted, quotes and backslashes escaped."""
    quoted = (key.replace("\\", "\\\\").replace('"', '\\"') for key in keys)
    return "{" + ",".join(f'"{key}"' for key in quoted) + "}"


class _Link:
    """One connection: its libpq handle, the statements it has prepared, and the future its
    socket's reader (registered once, for the connection's life) completes."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], loop: asyncio.AbstractEventLoop) -> None:
        self.conn = conn  # owns the handle
        self.pgconn = conn.pgconn
        self.loop = loop
        self.fd = self.pgconn.socket
        self.prepared: set[bytes] = set()
        self.waiter: asyncio.Future[None] | None = None
        self.alive = True
        loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
            return
        # Idle: a late wake-up for data a query already read, or the server closing the
        # connection (nothing is owed to it). Reading settles which, without blocking.
        try:
            self.pgconn.consume_input()
        except psycopg.OperationalError:
            self.close()
            return
        if self.pgconn.status != pq.ConnStatus.OK:
            self.close()

    def close(self) -> None:
        if self.alive:
            self.alive = False
            try:
                self.loop.remove_reader(self.fd)
            except (RuntimeError, ValueError, OSError):  # its loop is closed already
                pass
            self.pgconn.finish()

    async def rows(self, statement: _Statement, values: list[bytes | None]) -> list[_Row]:
        if statement.name not in self.prepared:
            self.pgconn.send_prepare(statement.name, statement.sql)
            _checked(await self._result(), pq.ExecStatus.COMMAND_OK)
            self.prepared.add(statement.name)
        self.pgconn.send_query_prepared(statement.name, values)
        result = _checked(await self._result(), pq.ExecStatus.TUPLES_OK)
        convert = [int if result.ftype(c) in _INTEGER_TYPES else bytes.decode for c in range(result.nfields)]
        get = result.get_value
        return [
            tuple(None if (v := get(r, c)) is None else f(v) for c, f in enumerate(convert))  # type: ignore[operator]
            for r in range(result.ntuples)
        ]

    async def _result(self) -> pq.abc.PGresult | None:
        """The last result of the command sent, once the server is ready for the next one."""
        pgconn = self.pgconn
        while pgconn.flush():  # rare: the command did not fit the socket's buffer at once
            await self._wait(writable=True)
        last = None
        # No read before the first wait: the answer to a command just sent is never there yet,
        # and the read would be a system call that finds nothing (a twentieth of the search's
        # CPU). is_busy only parses what was read; the socket turning readable says when to read.
        while True:
            if pgconn.is_busy():
                await self._wait()
                pgconn.consume_input()
                continue
            result = pgconn.get_result()
            if result is None:
                return last
            last = result

    async def _wait(self, writable: bool = False) -> None:
        waiter = self.loop.create_future()
        if writable:
            self.loop.add_writer(self.fd, waiter.set_result, None)
        self.waiter = waiter
        try:
            await waiter
        finally:
            self.waiter = None
            if writable:
                self.loop.remove_writer(self.fd)


def _checked(result: pq.abc.PGresult | None, wanted: pq.ExecStatus) -> pq.abc.PGresult:
    if result is None:
        raise psycopg.OperationalError("the server sent no result")
    if result.status != wanted:
        raise errors.error_from_result(result)
    return result


class AsyncSearchReader:
    def __init__(self, conninfo: str, size: int, timeout: float) -> None:
        self.conninfo = conninfo
        self.size = size
        self.timeout = timeout
        self._idle: list[_Link] = []
        self._slots = asyncio.Semaphore(size)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batches: dict[tuple[str, int], dict[str, list[asyncio.Future[list[_Row]]]]] = {}
        self._running: set[asyncio.Task[None]] = set()  # batches in flight (the loop keeps weak references)

    @classmethod
    def for_engine(cls, engine: Engine, size: int, timeout: float) -> AsyncSearchReader:
        url = engine.url.set(drivername="postgresql")
        return cls(url.render_as_string(hide_password=False), size, timeout)

    async def rows(self, sql: str, params: Mapping[str, Any]) -> list[_Row]:
        """Rows of a fixed SELECT written with ``:name`` placeholders (as ``select_rows`` takes).

        :raises DBAPIError: the database refused it or the connection failed (SQLAlchemy's types).
        :raises PoolTimeout: no connection free within the pool timeout.
        """
        statement = _statement(sql)
        try:
            values = [_text(params[name]) for name in statement.params]
        except psycopg.DataError as exc:
            raise DBAPIError.instance(statement.sql.decode(), dict(params), exc, psycopg.Error) from exc
        await self._take_slot()
        try:
            link = self._idle_link() or await self._connect()
            try:
                rows = await link.rows(statement, values)
            except psycopg.Error as exc:
                lost = link.pgconn.status != pq.ConnStatus.OK
                if lost or link.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                    link.close()
                else:
                    self._idle.append(link)  # the server refused the values; the connection is fine
                raise DBAPIError.instance(
                    statement.sql.decode(), dict(params), exc, psycopg.Error, connection_invalidated=lost
                ) from exc
            except BaseException:  # cancelled mid-query: the connection's state is unknown
                link.close()
                raise
            self._idle.append(link)
            return rows
        finally:
            self._slots.release()

    async def batched(self, sql: str, key: str, limit: int, key_column: int) -> list[_Row]:
        """The rows for ``key`` of a SELECT over an array of keys (``:keys``, with ``:limit``):
        requests for the same statement that arrive in the same turn of the event loop share one
        round trip, each getting the rows whose ``key_column`` equals its key. Under concurrent
        load the per-request database cost shrinks with the batch; alone it is one SELECT as usual.

        :raises DBAPIError: as ``rows``, for every request of the batch.
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._rebind(loop)
        batch = self._batches.get((sql, limit))
        if batch is None:
            batch = self._batches[(sql, limit)] = {}
            loop.call_soon(self._send_batch, sql, limit, key_column)
        waiter: asyncio.Future[list[_Row]] = loop.create_future()
        batch.setdefault(key, []).append(waiter)
        return await waiter

    def _send_batch(self, sql: str, limit: int, key_column: int) -> None:
        batch = self._batches.pop((sql, limit))
        task = asyncio.get_running_loop().create_task(self._run_batch(sql, limit, key_column, batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run_batch(
        self, sql: str, limit: int, key_column: int, batch: dict[str, list[asyncio.Future[list[_Row]]]]
    ) -> None:
        try:
            rows = await self.rows(sql, {"keys": _array_text(batch), "limit": limit})
        except BaseException as exc:  # every request of the batch gets the failure (a cancel included)
            for waiters in batch.values():
                for waiter in waiters:
                    if waiter.done():
                        continue
                    if isinstance(exc, Exception):
                        waiter.set_exception(exc)
                    else:
                        waiter.cancel()
            return
        found: dict[str, list[_Row]] = {}
        for row in rows:
            found.setdefault(row[key_column], []).append(row)
        for key, waiters in batch.items():
            for waiter in waiters:
                if not waiter.done():  # a request cancelled meanwhile needs nothing
                    waiter.set_result(found.get(key, []))

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

    def _idle_link(self) -> _Link | None:
        """The most recently used idle connection still open (LIFO keeps a few connections warm)."""
        while self._idle:
            link = self._idle.pop()
            if link.alive:
                return link
        return None

    async def _connect(self) -> _Link:
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, options="-c default_transaction_read_only=on"
            )
        except psycopg.Error as exc:
            raise DBAPIError.instance("connect", {}, exc, psycopg.Error, connection_invalidated=True) from exc
        return _Link(conn, asyncio.get_running_loop())

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        for link in self._idle:  # made on another loop, which may be gone
            link.close()
        self._idle = []
        self._slots = asyncio.Semaphore(self.size)
        self._batches = {}  # a batch the old loop never sent would hold its requests' followers
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
