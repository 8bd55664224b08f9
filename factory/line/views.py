"""Read models for the bench board, the JSON API and the CLI: plain dicts, JSON-ready."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, case
from sqlmodel import Session, col, func, select

from factory.kernel import clock
from factory.kernel.errors import InvalidInput, NotFound
from factory.kernel.lifecycle.states import State
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.device import Device, StorageMedium
from factory.line.bus import LineBus as LineBus  # re-exported: the board's live progress
from factory.line.bus import process_bus as process_bus
from factory.line.device_condition import condition_of as condition_of  # why a device went where it went
from factory.line.models import (
    FINISHED_JOB_STATUSES,
    Bench,
    Job,
    JobLog,
    JobStatus,
    JobStep,
    LineAgent,
    Slot,
    StepStatus,
)
from factory.line.pipeline_rules import Step

# Device states that need a technician wherever the device is (docs/operations.md, "Needs attention").
NEEDS_TECHNICIAN = (State.SANITISE_FAILED.value, State.PROVISION_FAILED.value)
STOPPED_ACTION = "start a new erase round on a bench, or send it for witnessed destruction"
ATTENTION_STATUSES = (JobStatus.FAILED, JobStatus.HELD, JobStatus.INTERRUPTED, JobStatus.ABORTED, JobStatus.CANCELLED)
MAX_LIMIT = 500


def job_view(job: Job, slot_code: str | None = None) -> dict[str, Any]:
    return {
        "id": job.id,
        "slot": slot_code,
        "device_serial": job.device_serial,
        "identification": job.identification,
        "pipeline": job.pipeline,
        "status": job.status,
        "attempt": job.attempt,
        "current_step": job.current_step,
        "progress": job.progress,
        "reason": job.reason,
        "action": job.action,
        "owner": job.owner,
        "requested": job.requested,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "detection_to_start_s": _delta(job.detected_epoch, job.started_epoch),
        "duration_s": _delta(job.started_epoch, job.ended_epoch),
        "work_s": round(job.work_seconds, 4),
    }


def _delta(a: float | None, b: float | None) -> float | None:
    return round(b - a, 4) if a is not None and b is not None else None


def benches_view(session: Session) -> list[dict[str, Any]]:
    now = time.time()
    benches = session.exec(select(Bench).order_by(col(Bench.name))).all()
    agents = {a.name: a for a in session.exec(select(LineAgent)).all()}
    slots = session.exec(select(Slot).order_by(col(Slot.bench_id), col(Slot.position))).all()
    attachments = [s.attachment_id for s in slots if s.attachment_id]
    latest: dict[str, Job] = {}
    if attachments:
        for job in session.exec(select(Job).where(col(Job.attachment_id).in_(attachments)).order_by(col(Job.id))).all():
            latest[job.attachment_id] = job
    devices = {}
    device_ids = [s.device_id for s in slots if s.device_id] + [j.device_id for j in latest.values() if j.device_id]
    if device_ids:
        devices = {d.id: d for d in session.exec(select(Device).where(col(Device.id).in_(device_ids))).all()}
    out = []
    for bench in benches:
        agent = agents.get(bench.agent or "")
        bench_slots = []
        for slot in (s for s in slots if s.bench_id == bench.id):
            job = latest.get(slot.attachment_id or "")
            device = devices.get((job.device_id if job else None) or slot.device_id)
            bench_slots.append(
                {
                    "code": slot.code,
                    "position": slot.position,
                    "port_kind": slot.port_kind,
                    "occupied": slot.attachment_id is not None,
                    "attached_serial": slot.attached_serial,
                    "attached_mac": slot.attached_mac,
                    "attached_at": slot.attached_at,
                    "error": slot.error,
                    "device": _device_brief(device),
                    "job": job_view(job, slot.code) if job else None,
                }
            )
        out.append(
            {
                "name": bench.name,
                "site": bench.site,
                "agent": bench.agent,
                "agent_alive": agent is not None and agent.lease_expires_at > now,
                "max_jobs": bench.max_jobs,
                "running": sum(1 for s in bench_slots if s["job"] and s["job"]["status"] == JobStatus.RUNNING),
                "slots": bench_slots,
            }
        )
    return out


def _device_brief(device: Device | None) -> dict[str, Any] | None:
    if device is None:
        return None
    return {"serial": device.serial, "kind": device.kind, "role": device.role, "state": device.state}


def jobs_view(
    session: Session,
    *,
    status: str | None = None,
    bench: str | None = None,
    device: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    if status is not None and status not in {s.value for s in JobStatus}:
        raise InvalidInput(f"status '{status}' is not one of: {', '.join(s.value for s in JobStatus)}")
    stmt = select(Job, Slot.code).join(Slot, col(Slot.id) == Job.slot_id)
    if status:
        stmt = stmt.where(Job.status == status)
    if bench:
        stmt = stmt.join(Bench, col(Bench.id) == Job.bench_id).where(Bench.name == bench)
    if device:
        stmt = stmt.where(Job.device_serial == device)
    rows = session.exec(stmt.order_by(col(Job.id).desc()).limit(_limit(limit))).all()
    return [job_view(job, code) for job, code in rows]


def job_detail(session: Session, job_id: int) -> dict[str, Any]:
    row = session.exec(select(Job, Slot.code).join(Slot, col(Slot.id) == Job.slot_id).where(Job.id == job_id)).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    job, code = row
    steps = session.exec(select(JobStep).where(JobStep.job_id == job_id).order_by(col(JobStep.position))).all()
    logs = session.exec(select(JobLog).where(JobLog.job_id == job_id).order_by(col(JobLog.id))).all()
    return {
        **job_view(job, code),
        "steps": [
            {
                "position": s.position,
                "kind": s.kind,
                "name": s.name,
                "status": s.status,
                "started_at": s.started_at,
                "ended_at": s.ended_at,
                "outcome": s.outcome,
                "custody_seq": s.custody_seq,
            }
            for s in steps
        ],
        "log": [{"at": entry.at, "level": entry.level, "message": entry.message} for entry in logs],
    }


def attention_view(session: Session, limit: int = 30) -> list[dict[str, Any]]:
    """What a technician must look at: jobs that stopped while their device is still in its slot,
    then devices that stopped wherever they are now (pulled from the slot mid-job, or failed to
    sanitise or provision), newest first. A pulled device's row has ``pulled`` set and offers no
    job action (its slot holds nothing to retry); one that never had a job has ``id`` None."""
    rows = session.exec(
        select(Job, Slot.code)
        .join(Slot, col(Slot.id) == Job.slot_id)
        .where(col(Job.status).in_(ATTENTION_STATUSES), col(Slot.attachment_id) == col(Job.attachment_id))
        .order_by(col(Job.id).desc())
        .limit(_limit(limit))
    ).all()
    out = [{**job_view(job, code), "pulled": False} for job, code in rows]
    listed = {j["device_serial"] for j in out}
    stopped = session.exec(
        select(Device)
        .where(col(Device.state).in_(NEEDS_TECHNICIAN))
        .order_by(col(Device.updated_at).desc())
        .limit(_limit(limit))
    ).all()
    out += [_stopped_device(session, d) for d in stopped if d.serial not in listed]
    return out[: _limit(limit)]


def _stopped_device(session: Session, device: Device) -> dict[str, Any]:
    """A failed device's attention row: its latest job (with its reason and action), or the device alone."""
    row = session.exec(
        select(Job, Slot.code, Slot.attachment_id)
        .join(Slot, col(Slot.id) == Job.slot_id)
        .where(Job.device_id == device.id)
        .order_by(col(Job.id).desc())
    ).first()
    if row is None:
        return {"id": None, "slot": None, "device_serial": device.serial, "status": device.state,
                "reason": f"device is {device.state}", "action": STOPPED_ACTION, "pulled": False}  # fmt: skip
    job, code, attached = row
    return {**job_view(job, code), "pulled": attached != job.attachment_id}


def devices_view(
    session: Session, *, state: str | None = None, serial_prefix: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    if state is not None and state not in {s.value for s in State}:
        raise InvalidInput(f"state '{state}' is not one of: {', '.join(s.value for s in State)}")
    stmt = select(Device)
    if state:
        stmt = stmt.where(Device.state == state)
    if serial_prefix:
        stmt = stmt.where(col(Device.serial).startswith(serial_prefix, autoescape=True))  # % and _ are literal
    rows = session.exec(stmt.order_by(col(Device.id).desc()).offset(max(0, offset)).limit(_limit(limit))).all()
    return [
        {
            "serial": d.serial,
            "asset_tag": d.asset_tag,
            "kind": d.kind,
            "role": d.role,
            "make": d.make,
            "model": d.model,
            "state": d.state,
            "custodian": d.custodian,
            "location": d.location,
            "updated_at": d.updated_at,
        }
        for d in rows
    ]


def counts_view(session: Session) -> dict[str, Any]:
    by_status = dict(session.exec(select(Job.status, func.count()).group_by(Job.status)).all())  # type: ignore[call-overload]
    by_state = dict(session.exec(select(Device.state, func.count()).group_by(Device.state)).all())  # type: ignore[call-overload]
    return {"jobs": by_status, "devices": by_state}


def board_snapshot(session: Session, live: dict[int, tuple[str, float]] | None = None) -> dict[str, Any]:
    """The board; ``live`` overlays in-process progress ticks on running jobs."""
    benches = benches_view(session)
    for bench in benches if live else ():
        for slot in bench["slots"]:
            job = slot["job"]
            if job and job["status"] == JobStatus.RUNNING and job["id"] in live:
                job["current_step"], job["progress"] = live[job["id"]][0], round(live[job["id"]][1], 3)
    return {
        "benches": benches,
        "attention": attention_view(session),
        "counts": counts_view(session),
        "notices": notices_view(session),
    }


def notices_view(session: Session, limit: int = 20) -> list[dict[str, str]]:
    """Every agent's latest notices (unmapped ports, failing switches, bad events), newest first."""
    out: list[dict[str, str]] = []
    for name, text in session.exec(select(LineAgent.name, LineAgent.notices)).all():  # type: ignore[call-overload]
        try:
            items = orjson.loads(text or "[]")
        except orjson.JSONDecodeError:
            items = []
        out += [
            {"agent": name, "at": str(n.get("at", "")), "message": str(n.get("message", ""))}
            for n in items
            if isinstance(n, dict)
        ]
    out.sort(key=lambda n: n["at"], reverse=True)
    return out[:limit]


def _limit(limit: int) -> int:
    if limit < 1:
        raise InvalidInput("limit must be 1 or more")
    return min(limit, MAX_LIMIT)


# ---------------------------------------------------------------- factory metrics (read at scrape time)

# Bench jobs run from seconds (simulated disks) to hours (large HDD overwrites).
JOB_DURATION_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
THROUGHPUT_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class JobDurations:
    """Finished jobs of one pipeline and final status: count, total seconds and, per bucket of
    JOB_DURATION_BUCKETS, how many took at most that long (cumulative, as Prometheus wants)."""

    pipeline: str
    status: str
    count: int
    total_seconds: float
    cumulative: tuple[int, ...]


@dataclass(frozen=True)
class WipeThroughput:
    """Successful bench-line sanitise steps: device media capacity over the step's wall-clock
    time, all-time and over the steps that ended within THROUGHPUT_WINDOW."""

    total_bytes: float
    total_seconds: float
    recent_bytes: float
    recent_seconds: float

    @property
    def recent_rate(self) -> float:
        return self.recent_bytes / self.recent_seconds if self.recent_seconds > 0 else 0.0


@dataclass(frozen=True)
class FactoryMetrics:
    devices_by_state: dict[str, int]  # every lifecycle state, 0 when no device is in it
    job_durations: list[JobDurations]
    media_certified: int
    certified_bytes: int
    line_wipes: WipeThroughput


def factory_metrics(engine: Engine, now: datetime | None = None) -> FactoryMetrics:
    """Everything ``/metrics`` reports, computed from the database (no in-process counters).
    A plain session, not a unit of work: a scrape only reads, so it never takes the write lock."""
    with Session(engine) as session:
        certified = session.exec(
            select(func.count(), func.coalesce(func.sum(StorageMedium.capacity_bytes), 0))
            .select_from(Certificate)
            .join(StorageMedium, col(StorageMedium.id) == col(Certificate.medium_id))
        ).one()
        return FactoryMetrics(
            devices_by_state=_devices_by_state(session),
            job_durations=_job_durations(session),
            media_certified=int(certified[0]),
            certified_bytes=int(certified[1]),
            line_wipes=_line_wipes(session, now or clock.now()),
        )


def _devices_by_state(session: Session) -> dict[str, int]:
    counts = {state.value: 0 for state in State}
    for state, n in session.exec(select(Device.state, func.count()).group_by(Device.state)).all():
        if state is not None:
            counts[state] = n
    return counts


def _job_durations(session: Session) -> list[JobDurations]:
    duration = col(Job.ended_epoch) - col(Job.started_epoch)
    bucket_counts = [func.sum(case((duration <= le, 1), else_=0)) for le in JOB_DURATION_BUCKETS]
    rows = session.exec(
        select(Job.pipeline, Job.status, func.count(), func.sum(duration), *bucket_counts)  # type: ignore[call-overload]
        .where(
            col(Job.started_epoch).is_not(None),
            col(Job.ended_epoch).is_not(None),
            col(Job.status).in_(sorted(FINISHED_JOB_STATUSES)),
        )
        .group_by(Job.pipeline, Job.status)
    ).all()
    return [
        JobDurations(pipeline, status, count, float(total or 0.0), tuple(int(n or 0) for n in cumulative))
        for pipeline, status, count, total, *cumulative in rows
    ]


def _line_wipes(session: Session, now: datetime) -> WipeThroughput:
    capacity = (
        select(StorageMedium.device_id, func.sum(StorageMedium.capacity_bytes).label("bytes"))
        .group_by(StorageMedium.device_id)
        .subquery()
    )
    rows = session.exec(
        select(JobStep.started_at, JobStep.ended_at, capacity.c.bytes)
        .select_from(JobStep)
        .join(Job, col(Job.id) == col(JobStep.job_id))
        .join(capacity, capacity.c.device_id == col(Job.device_id))
        .where(
            JobStep.kind == Step.SANITISE.value,
            JobStep.status == StepStatus.SUCCEEDED.value,
            col(JobStep.started_at).is_not(None),
            col(JobStep.ended_at).is_not(None),
        )
    ).all()
    recent_from = clock.format_utc(now - THROUGHPUT_WINDOW)
    total_bytes = total_seconds = recent_bytes = recent_seconds = 0.0
    for started, ended, size in rows:
        seconds = max((clock.parse_utc(ended) - clock.parse_utc(started)).total_seconds(), 0.0)
        total_bytes += float(size or 0)
        total_seconds += seconds
        if ended >= recent_from:
            recent_bytes += float(size or 0)
            recent_seconds += seconds
    return WipeThroughput(total_bytes, total_seconds, recent_bytes, recent_seconds)
