"""The bench line's JSON API: benches, jobs, devices, technician actions and the live stream.

Callers authenticate with a bearer token (tools) or with the web session cookie (the board page
in a browser, where EventSource cannot send headers). A cookie-authenticated POST must carry the
session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import ANY, Caller, ContextDep, SessionDep, Via, caller
from factory.identity.models import Role
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line import service as line_service
from factory.line.views import LineBus, benches_view, board_snapshot, devices_view, job_detail, jobs_view, process_bus

router = APIRouter(tags=["line"])

SSE_POLL_SECONDS = 1.0  # re-read the database at least this often (agents may run elsewhere)
SSE_KEEPALIVE_SECONDS = 15.0

# The board page calls these from a browser with its session cookie (EventSource sends no headers).
LineUser = Annotated[Caller, Depends(caller(ANY, via=Via.BEARER_OR_COOKIE))]
LineTechnician = Annotated[Caller, Depends(caller(Role.TECHNICIAN, via=Via.BEARER_OR_COOKIE))]
JobId = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=500)]


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
    serial_prefix: Annotated[str | None, Query(max_length=128)] = None,
    limit: Limit = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Devices, newest first (one device with its history: GET /api/devices/{serial})."""
    return devices_view(session, state=state, serial_prefix=serial_prefix, limit=limit, offset=offset)


@router.get("/api/board/events")
async def board_events(request: Request, ctx: ContextDep, _user: LineUser) -> StreamingResponse:
    """Server-sent events: a ``board`` event with the full snapshot whenever it changes."""
    bus: LineBus | None = getattr(request.app.state, "line_bus", None) or process_bus()
    return StreamingResponse(
        _stream(request, ctx, bus),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _snapshot_text(ctx: AppContext, bus: LineBus | None) -> str:
    live = bus.live_progress() if bus is not None else None
    with session_scope(ctx.engine) as session:
        return json.dumps(board_snapshot(session, live), separators=(",", ":"), sort_keys=True)


async def _stream(request: Request, ctx: AppContext, bus: LineBus | None) -> AsyncIterator[str]:
    last = ""
    version = bus.version if bus else 0
    idle = 0.0
    yield "retry: 2000\n\n"
    while not await request.is_disconnected():
        text = await to_thread.run_sync(_snapshot_text, ctx, bus)
        if text != last:
            last, idle = text, 0.0
            yield f"event: board\ndata: {text}\n\n"
        elif idle >= SSE_KEEPALIVE_SECONDS:
            idle = 0.0
            yield ": keep-alive\n\n"
        if bus is not None:
            # Wake on the in-process bus (progress ticks), but at most ~4 times a second.
            version = await to_thread.run_sync(bus.wait, version, SSE_POLL_SECONDS)
            await asyncio.sleep(0.25)
            idle += 0.25
        else:
            await asyncio.sleep(SSE_POLL_SECONDS)
            idle += SSE_POLL_SECONDS
