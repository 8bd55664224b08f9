"""The bench line's JSON API: benches, jobs, devices, technician actions and the live stream.

Callers authenticate with a bearer token (tools) or with the web session cookie (the board page
in a browser, where EventSource cannot send headers). A cookie-authenticated POST must carry the
session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import ANY, Caller, ContextDep, SessionDep, UnitOfWorkRoute, Via, caller
from api.params import RowId as JobId
from factory.identity.models import Role
from factory.kernel import limits
from factory.kernel.context import AppContext
from factory.kernel.db.engine import Session, read_scope
from factory.line import service as line_service
from factory.line.views import LineBus, benches_view, board_snapshot, devices_view, job_detail, jobs_view, process_bus

router = APIRouter(tags=["line"], route_class=UnitOfWorkRoute)

SSE_POLL_SECONDS = 1.0  # re-read the database at least this often (agents may run elsewhere)
SSE_KEEPALIVE_SECONDS = 15.0
SSE_TICK = 0.25  # progress ticks reach the board at most this often

# The board page calls these from a browser with its session cookie (EventSource sends no headers).
LineUser = Annotated[Caller, Depends(caller(ANY, via=Via.BEARER_OR_COOKIE))]
LineTechnician = Annotated[Caller, Depends(caller(Role.TECHNICIAN, via=Via.BEARER_OR_COOKIE))]
Limit = Annotated[int, Query(ge=1, le=limits.PAGE)]


@router.get("/api/benches")
def list_benches(session: SessionDep, _user: LineUser) -> list[dict[str, Any]]:
    """Benches with their slots, the device in each and its current job."""
    return benches_view(session)


@router.get("/api/board")
def board(request: Request, session: SessionDep, _user: LineUser) -> dict[str, Any]:
    """Everything the board shows: benches and slots, jobs needing attention, counts."""
    bus: LineBus | None = getattr(request.app.state, "line_bus", None) or process_bus()
    return board_snapshot(session, bus.live_progress() if bus is not None else None)


@router.get("/api/jobs")
def list_jobs(
    session: SessionDep,
    _user: LineUser,
    status: str | None = None,
    bench: str | None = None,
    device: str | None = None,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    return jobs_view(session, status=status, bench=bench, device=device, limit=limit)


@router.get("/api/jobs/{job_id}")
def show_job(job_id: JobId, session: SessionDep, _user: LineUser) -> dict[str, Any]:
    """One job with its steps (start, end, outcome) and log lines."""
    return job_detail(session, job_id)


@router.post("/api/jobs/{job_id}/cancel")
def cancel_job(job_id: JobId, session: SessionDep, user: LineTechnician) -> dict[str, Any]:
    line_service.request_stop(session, job_id, kind=line_service.StopKind.CANCEL, actor=user.name)
    session.flush()
    return job_detail(session, job_id)


@router.post("/api/jobs/{job_id}/abort")
def abort_job(job_id: JobId, session: SessionDep, user: LineTechnician) -> dict[str, Any]:
    line_service.request_stop(session, job_id, kind=line_service.StopKind.ABORT, actor=user.name)
    session.flush()
    return job_detail(session, job_id)


@router.post("/api/jobs/{job_id}/retry", status_code=201)
def retry_job(job_id: JobId, session: SessionDep, user: LineTechnician) -> dict[str, Any]:
    job = line_service.retry_job(session, job_id, actor=user.name)
    session.flush()
    return job_detail(session, job.id or 0)


@router.get("/api/devices")
def list_devices(
    session: SessionDep,
    _user: LineUser,
    state: str | None = None,
    serial_prefix: Annotated[str | None, Query(max_length=limits.SEARCH_TERM)] = None,
    limit: Limit = 100,
    offset: Annotated[int, Query(ge=0, le=limits.ROW_ID)] = 0,
) -> list[dict[str, Any]]:
    """Devices, newest first (one device with its history: GET /api/devices/{serial})."""
    return devices_view(session, state=state, serial_prefix=serial_prefix, limit=limit, offset=offset)


@router.get("/api/board/events")
async def board_events(request: Request, ctx: ContextDep, _user: LineUser) -> StreamingResponse:
    """Server-sent events: a ``board`` event with the full snapshot whenever it changes."""
    bus: LineBus | None = getattr(request.app.state, "line_bus", None) or process_bus()
    feed: BoardFeed | None = getattr(request.app.state, "board_feed", None)
    if feed is None:
        feed = request.app.state.board_feed = BoardFeed()
    return StreamingResponse(
        _stream(request, ctx, bus, feed),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _snapshot_text(ctx: AppContext, bus: LineBus | None) -> str:
    live = bus.live_progress() if bus is not None else None
    # A read-only unit (a WAL snapshot on SQLite): the board never queues behind writers.
    with read_scope(ctx.engine) as conn, Session(bind=conn) as session:
        return json.dumps(board_snapshot(session, live), separators=(",", ":"), sort_keys=True)


class BoardFeed:
    """The board snapshot shared by every open stream of one app.

    Fifty boards open at once must not starve other requests: the streams share one snapshot,
    re-read at most every ``SSE_TICK`` seconds (or when the bus moves), on one thread of their own
    rather than the shared pool, and so hold at most one database connection between them.
    """

    def __init__(self) -> None:
        self._lock = anyio.Lock()
        self._thread = CapacityLimiter(1)
        self._text = ""
        self._read_at = float("-inf")
        self._version = -1

    async def snapshot(self, ctx: AppContext, bus: LineBus | None) -> str:
        async with self._lock:
            version = bus.version if bus is not None else 0
            if time.monotonic() - self._read_at >= SSE_TICK or version != self._version:
                self._text = await to_thread.run_sync(_snapshot_text, ctx, bus, limiter=self._thread)
                self._read_at, self._version = time.monotonic(), version
            return self._text


async def _next_tick(bus: LineBus | None, version: int) -> tuple[int, float]:
    """Wait until the bus moves (checked each tick, no thread) or the poll interval passes."""
    waited = 0.0
    while True:
        await asyncio.sleep(SSE_TICK)
        waited += SSE_TICK
        current = bus.version if bus is not None else 0
        if current != version or waited >= SSE_POLL_SECONDS:
            return current, waited


async def _stream(request: Request, ctx: AppContext, bus: LineBus | None, feed: BoardFeed) -> AsyncIterator[str]:
    last = ""
    version = bus.version if bus else 0
    idle = 0.0
    yield "retry: 2000\n\n"
    while not await request.is_disconnected():
        text = await feed.snapshot(ctx, bus)
        if text != last:
            last, idle = text, 0.0
            yield f"event: board\ndata: {text}\n\n"
        elif idle >= SSE_KEEPALIVE_SECONDS:
            idle = 0.0
            yield ": keep-alive\n\n"
        version, waited = await _next_tick(bus, version)
        idle += waited
