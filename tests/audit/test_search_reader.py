"""The search's own async PostgreSQL reader (factory/audit/search_reader.py): the same pages as the
engine's read, and a connection lost, a value refused, a request cancelled or no connection free
each handled the way the engine's pool handles them."""

from __future__ import annotations

import asyncio

import orjson
import psycopg
import pytest
from harness.audit_data import sanitised_device
from sqlalchemy.exc import DataError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from factory.audit.views import AsyncSearchReader, CertificateQuery, search_json, search_json_async, search_reader


def _dsn(ctx) -> str:
    return ctx.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _walk(ctx, reader: AsyncSearchReader | None, serial: str) -> list[bytes]:
    """Every page of one device's certificates, two at a time: from the reader, or the engine."""
    pages: list[bytes] = []
    cursor = None

    async def read(query: CertificateQuery) -> bytes:
        assert reader is not None
        return await search_json_async(reader, query)

    while True:
        query = CertificateQuery(device_serial=serial, limit=2, cursor=cursor)
        body = asyncio.run(read(query)) if reader is not None else search_json(ctx, query)
        pages.append(body)
        cursor = orjson.loads(body)["next_cursor"]
        if cursor is None:
            return pages


def test_the_reader_serves_the_engines_pages_byte_for_byte(ctx) -> None:
    _, ids = sanitised_device(ctx, "DEV-R", ("R-M1", "R-M2", "R-M3", "R-M4", "R-M5"), asset_tag="TAG-R")
    reader = search_reader(ctx)
    if ctx.settings.is_sqlite:
        assert reader is None  # a local file: the engine reads it on the loop
        return
    assert reader is not None
    expected = _walk(ctx, None, "DEV-R")
    assert len(expected) == 3  # 2 + 2 + 1 of the five certificates
    assert _walk(ctx, reader, "DEV-R") == expected
    by_tag = CertificateQuery(asset_tag="TAG-R", limit=50)
    assert asyncio.run(search_json_async(reader, by_tag)) == search_json(ctx, by_tag)
    unbounded = CertificateQuery(limit=50)  # may scan: never read on the loop
    with pytest.raises(ValueError, match="index-bounded"):
        asyncio.run(search_json_async(reader, unbounded))
    assert len(ids) == 5


def _pg_only(ctx) -> AsyncSearchReader:
    if ctx.settings.is_sqlite:
        pytest.skip("the async reader is PostgreSQL's")
    capacity = ctx.settings.capacity
    return AsyncSearchReader.for_engine(ctx.engine, capacity.db_pool_size, capacity.db_pool_timeout)


def test_a_connection_the_server_closed_while_idle_is_replaced(ctx) -> None:
    reader = _pg_only(ctx)

    async def scenario() -> list[tuple]:
        first = await reader.rows("SELECT pg_backend_pid()", {})
        with psycopg.connect(_dsn(ctx), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first[0][0],))
        await asyncio.sleep(0.5)  # the idle connection's socket turns readable: closed here
        return [first[0], (await reader.rows("SELECT pg_backend_pid()", {}))[0]]

    before, after = asyncio.run(scenario())
    assert before != after  # a new connection answered, not an error


def test_a_value_the_server_refuses_is_a_data_error_and_the_connection_stays(ctx) -> None:
    reader = _pg_only(ctx)

    async def scenario() -> tuple[int, int]:
        pid = (await reader.rows("SELECT pg_backend_pid()", {}))[0][0]
        with pytest.raises(DataError):
            await reader.rows("SELECT CAST(:n AS int)", {"n": "not a number"})  # refused by the server
        with pytest.raises(DataError):  # refused here: libpq would cut the text at the NUL
            await reader.rows("SELECT CAST(:s AS text)", {"s": "DEV\x00X"})
        return pid, (await reader.rows("SELECT pg_backend_pid()", {}))[0][0]

    before, after = asyncio.run(scenario())
    assert before == after


def test_a_request_cancelled_mid_query_drops_its_connection(ctx) -> None:
    reader = _pg_only(ctx)

    async def scenario() -> tuple[int, int]:
        pid = (await reader.rows("SELECT pg_backend_pid()", {}))[0][0]
        slow = asyncio.create_task(reader.rows("SELECT pg_sleep(5)", {}))
        await asyncio.sleep(0.2)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        return pid, (await reader.rows("SELECT pg_backend_pid()", {}))[0][0]

    before, after = asyncio.run(scenario())
    assert before != after  # the cancelled query's connection was not handed to the next request


def test_no_free_connection_within_the_timeout_is_the_pools_timeout(ctx) -> None:
    if ctx.settings.is_sqlite:
        pytest.skip("the async reader is PostgreSQL's")
    reader = AsyncSearchReader.for_engine(ctx.engine, size=1, timeout=0.2)

    async def scenario() -> list[tuple]:
        busy = asyncio.create_task(reader.rows("SELECT pg_sleep(1)", {}))
        await asyncio.sleep(0.1)
        with pytest.raises(PoolTimeout):
            await reader.rows("SELECT 1", {})
        await busy
        return await reader.rows("SELECT 1", {})

    assert asyncio.run(scenario()) == [(1,)]


def test_searches_by_serial_arriving_together_share_one_select_and_each_get_their_own_page(ctx) -> None:
    reader = _pg_only(ctx)
    sanitised_device(ctx, "DEV-A", ("A-M1", "A-M2", "A-M3"))
    sanitised_device(ctx, "DEV-B", ("B-M1",))
    sanitised_device(ctx, 'DEV-"Q,{x}', ("Q-M1",))  # quotes, commas and braces survive the array literal
    queries = [
        CertificateQuery(device_serial=serial, limit=limit)
        for serial, limit in (
            ("DEV-A", 50),
            ("DEV-B", 50),
            ("DEV-A", 50),
            ("NOPE", 50),
            ("DEV-A", 2),
            ('DEV-"Q,{x}', 50),
        )
    ]
    statements: list[str] = []
    plain_rows = reader.rows

    async def counted_rows(sql: str, params: dict) -> list[tuple]:
        statements.append(sql)
        return await plain_rows(sql, params)

    reader.rows = counted_rows  # type: ignore[method-assign]

    async def together() -> list[bytes]:
        return list(await asyncio.gather(*(search_json_async(reader, q) for q in queries)))

    assert asyncio.run(together()) == [search_json(ctx, q) for q in queries]
    assert len(statements) == 2  # one per page size (50 and 2), not one per request
    pages = [orjson.loads(search_json(ctx, q)) for q in queries]
    assert [len(p["items"]) for p in pages] == [3, 1, 3, 0, 2, 1] and pages[4]["next_cursor"] is not None


def test_batched_keys_reach_the_server_exactly(ctx) -> None:
    reader = _pg_only(ctx)
    keys = ["a\\b", 'q"uote', "c,o{m}ma", " space ", "NULL", ""]
    sql = "SELECT k, CAST(:limit AS int) FROM unnest(CAST(:keys AS text[])) AS k"

    async def together() -> list[list[tuple]]:
        return list(await asyncio.gather(*(reader.batched(sql, key, 7, key_column=0) for key in keys)))

    assert asyncio.run(together()) == [[(key, 7)] for key in keys]
