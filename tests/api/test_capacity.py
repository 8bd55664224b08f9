"""Graceful degradation (issue 16): one thread per unit of work, a bounded queue, fast 503s.

The collapse this guards against: a sync route's session held SQLite's write lock (or a pooled
PostgreSQL connection) while its response waited for a second trip through the shared thread
pool, whose threads were all taken by requests waiting for that lock or connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import pkgutil

import anyio.to_thread
import httpx
import pytest
from starlette.types import Receive, Scope, Send

import api.routes
from api.app import create_app
from api.deps import UnitOfWorkRoute, get_session
from api.middleware import AdmissionGate
from factory.kernel.capacity import Capacity, load_capacity
from factory.kernel.context import AppContext

WRITES = 12


def _device(i: int) -> dict[str, object]:
    return {"serial": f"CAP-{i}", "kind": "laptop", "media": [{"media_type": "nvme", "serial": f"CAP-{i}-N"}]}


def test_every_route_with_a_session_ends_its_unit_of_work_on_its_own_thread() -> None:
    checked = []
    for info in pkgutil.iter_modules(api.routes.__path__):
        router = getattr(importlib.import_module(f"api.routes.{info.name}"), "router", None)
        for route in getattr(router, "routes", ()):
            if any(dep.call is get_session for dep in getattr(route, "dependant", None).dependencies):
                checked.append(route.path)
                assert isinstance(route, UnitOfWorkRoute), f"{route.path}: make its router with UnitOfWorkRoute"
    assert "/api/devices" in checked and "/api/jobs/{job_id}/cancel" in checked


def test_writes_beyond_the_thread_pool_and_the_connection_pool_all_succeed(ctx, tokens) -> None:
    """Two worker threads and one database connection for twelve writers at once: before the fix
    the first holder's response waited for a thread held by a writer waiting for its lock."""
    small = dataclasses.replace(
        ctx.settings, capacity=Capacity(api_concurrency=WRITES, db_pool_size=1, db_max_overflow=0, db_pool_timeout=30)
    )
    app = create_app(AppContext(small))
    headers = {"Authorization": f"Bearer {tokens['technician']}"}

    async def main() -> list[int]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 2
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120) as http:
            answers = await asyncio.gather(
                *(http.post("/api/devices", json=_device(i), headers=headers) for i in range(WRITES))
            )
            verify = await http.get("/api/ledger/verify", headers={"Authorization": f"Bearer {tokens['auditor']}"})
        assert verify.json()["ok"] is True and verify.json()["entries"] == WRITES
        return [r.status_code for r in answers]

    try:
        assert asyncio.run(main()) == [201] * WRITES
    finally:
        app.state.context.engine.dispose()


class _Held:
    """An inner app that holds each request until released, so the gate's state is known."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered.set()
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def _two_requests(capacity: Capacity, release_first: bool) -> tuple[httpx.Response, httpx.Response]:
    inner = _Held()
    gate = AdmissionGate(inner, capacity)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url="http://test") as http:
        first = asyncio.create_task(http.get("/api/x"))
        await inner.entered.wait()
        second = asyncio.create_task(http.get("/api/y"))
        if release_first:
            while not gate.waiting:  # the second request is queued
                await asyncio.sleep(0)
            inner.release.set()
        else:
            await asyncio.wait({second})
            inner.release.set()
        return await first, await second


def test_a_full_queue_is_refused_at_once_with_retry_after() -> None:
    first, second = asyncio.run(_two_requests(Capacity(api_concurrency=1, api_queue=0), release_first=False))
    assert first.status_code == 200
    assert second.status_code == 503 and second.headers["Retry-After"] == "1"
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["error"] == "overloaded" and second.json()["status"] == 503


def test_a_queued_request_is_served_when_a_slot_frees_and_refused_when_its_wait_runs_out() -> None:
    first, second = asyncio.run(_two_requests(Capacity(api_concurrency=1, api_queue=5), release_first=True))
    assert (first.status_code, second.status_code) == (200, 200)
    capacity = Capacity(api_concurrency=1, api_queue=5, api_queue_seconds=0)
    first, second = asyncio.run(_two_requests(capacity, release_first=False))
    assert (first.status_code, second.status_code) == (200, 503)


def test_capacity_comes_from_the_environment_and_bad_values_are_refused() -> None:
    assert load_capacity({}) == Capacity()
    env = {"FACTORY_API_CONCURRENCY": "8", "FACTORY_DB_POOL_SIZE": "4", "FACTORY_DB_MAX_OVERFLOW": "6"}
    capacity = load_capacity(env)
    assert capacity.api_concurrency == 8 and capacity.pool_args()["pool_size"] == 4
    for name, value, needle in (
        ("FACTORY_API_QUEUE", "lots", "whole number"),
        ("FACTORY_API_CONCURRENCY", "0", "from 1 to 1000"),
        ("FACTORY_API_QUEUE_SECONDS", "nan", "from 0 to 60"),
        ("FACTORY_DB_POOL_TIMEOUT", "1e9", "from 1 to 60"),
    ):
        with pytest.raises(ValueError, match=needle):
            load_capacity({name: value})
    with pytest.raises(ValueError, match="must be at least"):
        load_capacity({"FACTORY_API_CONCURRENCY": "100"})
