"""Jobs: creation from a slot's occupant, claiming, leases, finishing, and technician actions.

Claiming is safe with several agents on one PostgreSQL database: queued rows are taken with
``SELECT ... FOR UPDATE SKIP LOCKED`` (a row another transaction holds is passed over, not
waited on), and the per-bench / per-site limits are counted under a transaction-scoped advisory
lock so two agents cannot both take the last free place. On SQLite, ``BEGIN IMMEDIATE``
serialises the whole claim.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson
from sqlalchemy import bindparam, event, func, insert, or_, text, update
from sqlmodel import Session, col, select

from factory.kernel.clock import utc_now
from factory.kernel.errors import Conflict, InvalidInput, NotFound
from factory.kernel.lifecycle.states import Event, State
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device
from factory.line.identify import identify
from factory.line.models import (
    ACTIVE_JOB_STATUSES,
    RETRYABLE_JOB_STATUSES,
    Bench,
    Job,
    JobLog,
    JobStatus,
    JobStep,
    LineAgent,
    Slot,
    StepStatus,
)
from factory.line.pipeline_rules import Plan, Step, choose_plan
from factory.line.slots import locked

CLAIM_LOCK_KEY = 0x6C696E65  # "line": advisory lock serialising claims across agents
IN_PROGRESS = (State.SANITISING.value, State.PROVISIONING.value)


class LostOwnership(Exception):
    """This agent no longer owns the job (reconciled elsewhere, or cancelled outright)."""


_PENDING_LOGS = "factory_line_job_logs"
_LOG = JobLog.__table__  # type: ignore[attr-defined]


def log(session: Session, job_id: int, message: str, level: str = "info", at: str | None = None) -> None:
    """Add a line to a job's log. Lines are inserted together, in order, at the session's next
    flush or commit (one statement, not one INSERT ... RETURNING per line); a rollback drops them
    with everything else. The job row exists already: its id is known."""
    row = {"job_id": job_id, "at": at or utc_now(), "level": level, "message": message}
    session.info.setdefault(_PENDING_LOGS, []).append(row)


@event.listens_for(Session, "before_flush")
def _insert_pending_logs_on_flush(session: Session, _context: object, _instances: object) -> None:
    _insert_pending_logs(session)


@event.listens_for(Session, "before_commit")
def _insert_pending_logs(session: Session) -> None:
    rows = session.info.pop(_PENDING_LOGS, None)
    if rows:
        session.connection().execute(insert(_LOG), rows)


@event.listens_for(Session, "after_rollback")
def _drop_pending_logs(session: Session) -> None:
    session.info.pop(_PENDING_LOGS, None)


def step_names(plan: Plan, provision_name: str) -> list[tuple[Step, str]]:
    return [(s, provision_name if s is Step.PROVISION else s.value) for s in plan.steps]


def create_job(
    session: Session,
    slot: Slot,
    *,
    provision_name: str,
    detected_epoch: float | None,
    attempt: int = 1,
    note: str | None = None,
) -> Job:
    """Identify the slot's occupant, choose its pipeline and queue (or hold) a job for it."""
    if slot.attachment_id is None:
        raise Conflict(f"slot {slot.code} is empty")
    ident = identify(session, slot.attached_serial)
    device = ident.device
    plan = choose_plan(ident, kind=device.kind if device else slot.default_kind, role=device.role if device else None)
    now = utc_now()
    held = plan.hold_reason is not None
    job = Job(
        device_id=device.id if device else None,
        slot_id=slot.id or 0,
        bench_id=slot.bench_id,
        attachment_id=slot.attachment_id,
        device_serial=device.serial if device else (slot.attached_serial or ""),
        identification=ident.identity.value,
        pipeline=plan.name,
        destination=plan.destination.value,
        profile=plan.profile,
        status=JobStatus.HELD if held else JobStatus.QUEUED,
        attempt=attempt,
        reason=plan.hold_reason,
        action=plan.action,
        detected_epoch=detected_epoch,
        ended_epoch=time.time() if held else None,
        created_at=now,
        ended_at=now if held else None,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    steps = [
        {"job_id": job.id, "position": position, "kind": kind.value, "name": name, "status": StepStatus.PENDING.value}
        for position, (kind, name) in enumerate(step_names(plan, provision_name), start=1)
    ]
    if steps:
        session.execute(insert(JobStep), steps)  # one statement for all of them
    slot.device_id = device.id if device else None
    session.add(slot)
    job_id = job.id or 0
    log(session, job_id, f"detected {slot.attached_serial or '(no serial)'} in {slot.code}: {ident.detail}")
    if note:
        log(session, job_id, note)
    log(session, job_id, f"held: {plan.hold_reason}" if held else f"pipeline '{plan.name}' (attempt {attempt})")
    return job


def active_job_for_slot(session: Session, slot_id: int) -> Job | None:
    stmt = select(Job).where(Job.slot_id == slot_id, col(Job.status).in_(ACTIVE_JOB_STATUSES))
    return session.exec(locked(session, stmt)).first()  # type: ignore[call-overload, no-any-return]


def jobs_for_attachment(session: Session, attachment_id: str) -> Sequence[Job]:
    return session.exec(select(Job).where(Job.attachment_id == attachment_id).order_by(col(Job.id))).all()


def claim_jobs(
    session: Session,
    *,
    agent: str,
    run_id: str,
    bench_ids: Sequence[int],
    site: str,
    site_limit: int,
    limit: int,
    lease_seconds: float,
) -> list[int]:
    """Take up to ``limit`` queued jobs on our benches, within the bench and site limits."""
    if limit <= 0 or not bench_ids:
        return []
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CLAIM_LOCK_KEY})
    running = dict(
        session.exec(  # type: ignore[call-overload]
            select(Job.bench_id, func.count())
            .join(Bench, col(Bench.id) == Job.bench_id)
            .where(Job.status == JobStatus.RUNNING, Bench.site == site)
            .group_by(Job.bench_id)
        ).all()
    )
    site_running = sum(running.values())
    limits = dict(session.exec(select(Bench.id, Bench.max_jobs).where(col(Bench.id).in_(bench_ids))).all())  # type: ignore[call-overload]
    stmt = (
        select(Job)
        .where(Job.status == JobStatus.QUEUED, col(Job.bench_id).in_(bench_ids))
        .order_by(col(Job.id))
        .limit(limit + sum(limits.values()))
    )
    if postgres:
        stmt = stmt.with_for_update(skip_locked=True)
    now, stamp = time.time(), utc_now()
    claimed: list[int] = []
    for job in session.exec(stmt.execution_options(populate_existing=True)).all():
        if len(claimed) >= limit or site_running >= site_limit:
            break
        if running.get(job.bench_id, 0) >= limits.get(job.bench_id, 0):
            continue
        job.status, job.owner, job.owner_run = JobStatus.RUNNING, agent, run_id
        job.lease_expires_at, job.started_epoch, job.started_at, job.updated_at = now + lease_seconds, now, stamp, stamp
        session.add(job)
        running[job.bench_id] = running.get(job.bench_id, 0) + 1
        site_running += 1
        claimed.append(job.id or 0)
    session.flush()
    for job_id in claimed:
        log(session, job_id, f"started by {agent}")
    return claimed


def ensure_owned(session: Session, job_id: int, run_id: str) -> Job:
    job = session.exec(locked(session, select(Job).where(Job.id == job_id))).first()  # type: ignore[call-overload]
    if job is None or job.owner_run != run_id or job.status != JobStatus.RUNNING:
        raise LostOwnership(f"job {job_id} is no longer run by this agent")
    return job  # type: ignore[no-any-return]


_JOB = Job.__table__  # type: ignore[attr-defined]
_PROGRESS_UPDATE = (
    update(_JOB)
    .where(
        _JOB.c.id == bindparam("b_id"),
        _JOB.c.owner_run == bindparam("b_run"),
        _JOB.c.status == JobStatus.RUNNING.value,
        or_(_JOB.c.current_step == bindparam("b_step"), _JOB.c.current_step.like(bindparam("b_like"), escape="/")),
    )
    .values(current_step=bindparam("b_shown"), progress=bindparam("b_progress"), updated_at=bindparam("b_stamp"))
)


def _like_prefix(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def renew_leases(
    session: Session,
    *,
    agent: str,
    run_id: str,
    lease_seconds: float,
    progress: dict[int, tuple[str, str, float]] | None = None,
    notices: list[dict[str, str]] | None = None,
) -> dict[int, tuple[str, str]]:
    """Extend our agent and job leases and record erase progress; return {job id: (requested
    action, by whom)} to act on.

    ``progress`` is {job id: (step, step as shown, fraction)}. It is written only while the job is
    still in that step, so a late copy never overwrites the next step on the board.
    Raises ``LostOwnership`` if another process now runs under our agent name.
    """
    now = time.time()
    me = session.exec(locked(session, select(LineAgent).where(LineAgent.name == agent))).first()  # type: ignore[call-overload]
    if me is None or me.run_id != run_id:
        raise LostOwnership(f"agent '{agent}' was taken over by another process")
    me.lease_expires_at = now + lease_seconds
    if notices is not None:  # only when they changed since the last heartbeat
        me.notices = orjson.dumps(notices).decode()
    session.add(me)
    session.execute(
        update(Job)
        .where(col(Job.owner_run) == run_id, col(Job.status) == JobStatus.RUNNING)
        .values(lease_expires_at=now + lease_seconds)
        .execution_options(synchronize_session=False)
    )
    if progress:
        stamp = utc_now()
        session.connection().execute(  # one executemany for every running erase
            _PROGRESS_UPDATE,
            [
                {"b_id": job_id, "b_run": run_id, "b_step": step, "b_like": _like_prefix(f"{step} ("),
                 "b_shown": shown, "b_progress": round(fraction, 4), "b_stamp": stamp}
                for job_id, (step, shown, fraction) in progress.items()
            ],
        )  # fmt: skip
    rows = session.exec(
        select(Job.id, Job.requested, Job.requested_by).where(  # type: ignore[call-overload]
            col(Job.owner_run) == run_id, col(Job.status) == JobStatus.RUNNING, col(Job.requested).is_not(None)
        )
    ).all()
    return {job_id: (kind, by or "technician") for job_id, kind, by in rows}


def finish(session: Session, job: Job, status: JobStatus, reason: str | None = None, action: str | None = None) -> None:
    now = utc_now()
    job.status, job.reason, job.action = status, reason, action
    job.ended_at, job.ended_epoch, job.updated_at, job.lease_expires_at = now, time.time(), now, None
    if status not in (JobStatus.SUCCEEDED, JobStatus.HELD):
        for step in session.exec(select(JobStep).where(JobStep.job_id == job.id)).all():
            if step.status in (StepStatus.RUNNING, StepStatus.PENDING):
                step.status = StepStatus.FAILED if step.status == StepStatus.RUNNING else StepStatus.SKIPPED
                step.ended_at = now if step.status == StepStatus.FAILED else None
                step.outcome = reason if step.status == StepStatus.FAILED else "not run"
                session.add(step)
    session.add(job)
    log(session, job.id or 0, f"{status.value}: {reason}" if reason else status.value, "error" if reason else "info")


def fail_device_if_ours(session: Session, job: Job, *, reason: str, actor: str, slot_code: str) -> bool:
    """Move the device to sanitise_failed / provision_failed if THIS job put it in progress.

    The device's latest custody entry must be one this job's steps wrote: otherwise its state
    belongs to someone else and is left alone.
    """
    if job.device_id is None:
        return False
    device = session.exec(locked(session, select(Device).where(Device.id == job.device_id))).first()  # type: ignore[call-overload]
    if device is None or device.state not in IN_PROGRESS:
        return False
    latest = session.exec(select(func.max(CustodyEntry.seq)).where(CustodyEntry.device_id == device.id)).one()
    ours = set(session.exec(select(JobStep.custody_seq).where(JobStep.job_id == job.id)).all())
    if latest not in ours:
        return False
    change_state(
        session,
        [
            TransitionRequest(
                device_id=device.id or 0,
                event=Event.FAIL,
                evidence={"reason": reason, "job": job.id, "slot": slot_code},
            )
        ],
        actor=actor,
    )
    log(session, job.id or 0, f"device {device.serial} -> {device.state}: {reason}", "error")
    return True


# ------------------------------------------------------------------ technician actions


def _job(session: Session, job_id: int) -> Job:
    job = session.exec(locked(session, select(Job).where(Job.id == job_id))).first()  # type: ignore[call-overload]
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job  # type: ignore[no-any-return]


def _owner_alive(session: Session, job: Job) -> bool:
    return job.lease_expires_at is not None and job.lease_expires_at > time.time() and job.owner_run is not None


STOP_OUTCOMES: dict[str, tuple[JobStatus, str]] = {
    "cancel": (JobStatus.CANCELLED, "retry to restart it from the beginning"),
    "abort": (JobStatus.ABORTED, "take the device off the line for manual handling (re-sanitise or destroy)"),
}


def request_stop(session: Session, job_id: int, *, kind: str, actor: str) -> Job:
    """Cancel or abort a job. A queued job, or one whose agent is gone, is stopped here and now;
    a running one is asked to stop and its agent finishes it (and fails the device) within a
    heartbeat."""
    if kind not in STOP_OUTCOMES:
        raise InvalidInput(f"unknown action '{kind}'")
    job = _job(session, job_id)
    if job.status not in ACTIVE_JOB_STATUSES:
        raise Conflict(f"job {job_id} is {job.status}: nothing to {kind}")
    status, action = STOP_OUTCOMES[kind]
    reason = f"{'cancelled' if kind == 'cancel' else 'aborted'} by {actor}"
    if job.status == JobStatus.RUNNING and _owner_alive(session, job):
        job.requested, job.requested_by, job.updated_at = kind, actor, utc_now()
        session.add(job)
        log(session, job_id, f"{kind} requested by {actor}")
        return job
    slot = session.get(Slot, job.slot_id)
    fail_device_if_ours(session, job, reason=reason, actor=actor, slot_code=slot.code if slot else "")
    finish(session, job, status, reason, action)
    return job


def retry(session: Session, job_id: int, *, actor: str, provision_name: str) -> Job:
    """Queue a fresh attempt for the same device in the same slot (restarting from the beginning:
    a sanitise opens a new erase round, so nothing from the failed attempt can count)."""
    job = _job(session, job_id)
    if job.status not in RETRYABLE_JOB_STATUSES:
        raise Conflict(f"job {job_id} is {job.status}: only failed, cancelled or interrupted jobs can be retried")
    slot = session.exec(locked(session, select(Slot).where(Slot.id == job.slot_id))).first()  # type: ignore[call-overload]
    if slot is None or slot.attachment_id != job.attachment_id:
        raise Conflict(f"job {job_id}: device {job.device_serial} is no longer in its slot; re-insert it")
    if active_job_for_slot(session, job.slot_id) is not None:
        raise Conflict(f"slot {slot.code} already has an active job")
    attempts = len(jobs_for_attachment(session, job.attachment_id))
    new = create_job(
        session,
        slot,
        provision_name=provision_name,
        detected_epoch=time.time(),
        attempt=attempts + 1,
        note=f"retry of job {job_id} requested by {actor}",
    )
    log(session, job_id, f"retried as job {new.id} by {actor}")
    return new


def lease_is_live(agent: LineAgent | None, now: float | None = None) -> bool:
    return agent is not None and agent.lease_expires_at > (now if now is not None else time.time())


def device_of(session: Session, job: Job) -> Device:
    if job.device_id is None:
        raise NotFound(f"job {job.id} has no device")
    device = session.exec(locked(session, select(Device).where(Device.id == job.device_id))).first()  # type: ignore[call-overload]
    if device is None:
        raise NotFound(f"job {job.id}: device {job.device_id} is missing")
    return device  # type: ignore[no-any-return]
