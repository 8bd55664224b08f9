"""Jobs: creation from a slot's occupant, ownership checks, finishing, and failing the device.

Claiming and leases are in ``leases.py``; a technician's cancel, abort and retry in ``service.py``.
Every function that writes job-log lines takes an optional :class:`JobLogBuffer`: a caller with
a unit of work passes its own (and flushes it before its commit), else the lines are inserted
before the function returns, in the caller's transaction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import Engine, Select, bindparam, func, insert, inspect
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from factory.kernel.clock import utc_now
from factory.kernel.db.engine import read_scope
from factory.kernel.db.shared_statements import built_once
from factory.kernel.errors import NotFound
from factory.kernel.ledger.append import SeqStamp
from factory.kernel.lifecycle.states import Event, State
from factory.kernel.lifecycle.transition import TransitionRequest, change_state, lock_devices
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device
from factory.line.errors import JobNotActionable, JobNotFound
from factory.line.identify import identify
from factory.line.job_hold import hold_for_step as hold_for_step  # the runner's, re-exported
from factory.line.job_log import JobLogBuffer, job_log_batch
from factory.line.models import ACTIVE_JOB_STATUSES, Job, JobStatus, JobStep, LineAgent, Slot, StepStatus, StopKind
from factory.line.pipeline_rules import Plan, Step, step_name
from factory.line.plan_facts import planned
from factory.line.slots import Attachment, AttachResult, attach, locked_on
from factory.line.tablet_slots import for_attachment, rejoined_after_reset
from factory.sanitisation.service import EraseRound, RoundOrigin, fail_round

IN_PROGRESS = (State.SANITISING.value, State.PROVISIONING.value)


# How a stop from outside ends a job: its final status, and what a technician should do next.
STOP_OUTCOMES: dict[StopKind, tuple[JobStatus, str]] = {
    StopKind.CANCEL: (JobStatus.CANCELLED, "retry to restart it from the beginning"),
    StopKind.ABORT: (JobStatus.ABORTED, "take the device off the line for manual handling (re-sanitise or destroy)"),
    StopKind.REMOVED: (JobStatus.FAILED, "re-insert it to restart from the beginning, or send it for destruction"),
    StopKind.STOPPING: (JobStatus.INTERRUPTED, "restarts from the beginning when the controller is back"),
}


def step_names(plan: Plan, provision_name: str) -> list[tuple[Step, str]]:
    return [(s, step_name(s, plan.steps, provision_name)) for s in plan.steps]


@dataclass(frozen=True)
class RunPlan:
    """What a job's runner reads before its first step: the steps in order (row id, kind, name) and
    whether its slot is a switch port (its laptop is erased over SSH). The transaction that creates
    the job knows it, and hands it to a runner it claims for at once, which then need not read it."""

    steps: tuple[tuple[int, Step, str], ...]
    on_switch_port: bool


def attach_and_queue(
    session: Session, slot: Slot, seen: Attachment, *, provision_name: str, logs: JobLogBuffer
) -> tuple[AttachResult, Job | None, RunPlan | None]:
    """Record ``seen`` in the (locked) slot and, if it is a new occupant, create its job.

    No autoflush: the slot's new occupant is written with the job (one UPDATE), not on its own
    before the identification's first read (which reads no slot)."""
    with session.no_autoflush:
        result = attach(session, slot, seen)
        if result is not AttachResult.ATTACHED:
            return result, None, None
        if rejoined_after_reset(session, slot, time.time()):  # a tablet back from its reset's restart
            return AttachResult.SAME, None, None
        job, plan = create_job(session, slot, provision_name=provision_name, detected_epoch=seen.detected_at, logs=logs)
    return result, job, plan


def create_job(
    session: Session,
    slot: Slot,
    *,
    provision_name: str,
    detected_epoch: float | None,
    attempt: int = 1,
    note: str | None = None,
    logs: JobLogBuffer | None = None,
) -> tuple[Job, RunPlan]:
    """Identify the slot's occupant, choose its pipeline and queue (or hold) a job for it; return the
    job and its :class:`RunPlan` (for a runner launched in this transaction; others read it).

    :raises JobNotActionable: the slot is empty.
    """
    if slot.attachment_id is None:
        raise JobNotActionable(f"slot {slot.code} is empty")
    ident = identify(session, slot.attached_serial)
    device = ident.device
    plan = planned(session, ident, slot.default_kind)
    plan = for_attachment(plan, slot.attached_node)  # a tablet on a hub port: its own steps, or held
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
    slot.device_id = device.id if device else None  # before the flush: one UPDATE of the slot
    session.add_all((slot, job))
    session.flush()
    run_plan = _insert_steps(session, job.id or 0, step_names(plan, provision_name), slot)
    job_id = job.id or 0
    with job_log_batch(session, logs) as lines:
        lines.add(job_id, f"detected {slot.attached_serial or '(no serial)'} in {slot.code}: {ident.detail}")
        for line in (note, plan.why and f"routed by its condition to {plan.why}"):
            if line:
                lines.add(job_id, line)
        lines.add(job_id, f"held: {plan.hold_reason}" if held else f"pipeline '{plan.name}' (attempt {attempt})")
    return job, run_plan


def _insert_steps(session: Session, job_id: int, named: list[tuple[Step, str]], slot: Slot) -> RunPlan:
    """The job's step rows, pending, in one statement that returns their ids in the order given."""
    steps = [
        {"job_id": job_id, "position": position, "kind": kind.value, "name": name, "status": StepStatus.PENDING.value}
        for position, (kind, name) in enumerate(named, start=1)
    ]
    ids: list[int] = []
    if steps:
        returning = insert(JobStep).returning(col(JobStep.id), sort_by_parameter_order=True)
        ids = list(session.scalars(returning, steps))
    listed = tuple((step_id, kind, name) for step_id, (kind, name) in zip(ids, named, strict=True))
    return RunPlan(listed, on_switch_port=slot.attached_mac is not None)


def read_plan(engine: Engine, job_id: int) -> RunPlan:
    """The job's :class:`RunPlan`, for a runner not handed it. Read-only: the claim already logged
    the start, and every step re-checks ownership."""
    with read_scope(engine) as conn:
        steps = conn.execute(
            select(JobStep.id, JobStep.kind, JobStep.name, Slot.attached_mac)
            .join(Job, col(Job.id) == JobStep.job_id)
            .join(Slot, col(Slot.id) == Job.slot_id)
            .where(JobStep.job_id == job_id)
            .order_by(JobStep.position)  # type: ignore[arg-type]
        ).all()
    on_switch_port = any(mac is not None for *_, mac in steps)
    return RunPlan(tuple((step_id, Step(kind), name) for step_id, kind, name, _ in steps), on_switch_port)


def failure_action(session: Session, job: Job) -> str:
    """What a technician does with a job that failed in the step still marked running."""
    step = session.exec(select(JobStep).where(JobStep.job_id == job.id, JobStep.status == StepStatus.RUNNING)).first()
    if step is not None and step.kind == Step.PROVISION:
        return "retry provisioning, or check the provisioning log"
    if step is not None and step.kind == Step.PERSONALISE:
        return "fix what the QA found missing (see the log), then re-insert the device to personalise it again"
    return "retry (restarts the wipe from the beginning) or send the device for destruction"


def active_job_for_slot(session: Session, slot_id: int) -> Job | None:
    postgres = session.get_bind().dialect.name == "postgresql"
    return session.exec(_active_on_slot(postgres), params={"slot_id": slot_id}).first()  # type: ignore[call-overload, no-any-return]


@built_once
def _active_on_slot(postgres: bool) -> Select:
    """Built once, as ``slots.lock_slot``'s: every event of a slot looks for its job."""
    stmt = select(Job).where(Job.slot_id == bindparam("slot_id"), col(Job.status).in_(ACTIVE_JOB_STATUSES))
    return locked_on(stmt, postgres=postgres)


def jobs_for_attachment(session: Session, attachment_id: str) -> Sequence[Job]:
    return session.exec(select(Job).where(Job.attachment_id == attachment_id).order_by(col(Job.id))).all()


_JOB = Job.__table__  # type: ignore[attr-defined]


def finish(
    session: Session,
    job: Job,
    status: JobStatus,
    reason: str | None = None,
    action: str | None = None,
    *,
    logs: JobLogBuffer | None = None,
) -> None:
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
    with job_log_batch(session, logs) as lines:
        lines.add(job.id or 0, f"{status.value}: {reason}" if reason else status.value, "error" if reason else "info")


def fail_device_if_ours(
    session: Session,
    job: Job,
    *,
    reason: str,
    actor: str,
    slot_code: str,
    logs: JobLogBuffer | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> bool:
    """Move the device to sanitise_failed / provision_failed if THIS job put it in progress
    (``evidence``: what the failed step found out, on the failing entry).

    The device's latest custody entry must be one this job's steps wrote: otherwise its state
    belongs to someone else and is left alone.
    """
    if job.device_id is None:
        return False
    device = _locked_device(session, job.device_id)
    if device is None or device.state not in IN_PROGRESS:
        return False
    latest = session.exec(select(func.max(CustodyEntry.seq)).where(CustodyEntry.device_id == device.id)).one()
    ours = set(session.exec(select(JobStep.custody_seq).where(JobStep.job_id == job.id)).all())
    if latest not in ours:
        return False
    origin = {"job": job.id, "slot": slot_code}
    if device.state == State.SANITISING and device.erase_round_seq is not None:
        # The erase-round service is the one closer of a round; it needs only the round's seq.
        round_ = EraseRound(device.id or 0, device.serial, device.erase_round_seq, ())
        fail_round(session, device, round_, reason, RoundOrigin(actor, None, evidence=origin), **dict(evidence or {}))
    else:
        request = TransitionRequest(
            device.id or 0, Event.FAIL, evidence={"reason": reason, **origin, **(evidence or {})}
        )
        change_state(session, [request], actor=actor)
    with job_log_batch(session, logs) as lines:
        lines.add(job.id or 0, f"device {device.serial} -> {device.state}: {reason}", "error")
    return True


def lease_is_live(agent: LineAgent | None, now: float | None = None) -> bool:
    return agent is not None and agent.lease_expires_at > (now if now is not None else time.time())


def device_of(session: Session, job: Job) -> Device:
    """The job's device, locked.

    :raises JobNotFound: the job has no device, or its device row is missing.
    """
    if job.device_id is None:
        raise JobNotFound(f"job {job.id} has no device")
    device = _locked_device(session, job.device_id)
    if device is None:
        raise JobNotFound(f"job {job.id}: device {job.device_id} is missing")
    return device  # type: ignore[no-any-return]


def _locked_device(session: Session, device_id: int) -> Device | None:
    """The device, its row locked for the transaction (once: the transition's lock reuses it)."""
    try:
        return lock_devices(session, [device_id])[device_id]
    except NotFound:
        return None


def unwritten_changes(job: Job) -> SeqStamp | None:
    """The job's changed columns not yet flushed, as an update written with the next custody entry;
    the loaded object takes them as written (a rollback discards the session and it with it)."""
    state = inspect(job)
    history = {key: state.attrs[key].history for key in state.mapper.column_attrs.keys()}
    changes = {key: added[0] for key, (added, _, _) in history.items() if added}
    if not changes:
        return None
    for column, value in changes.items():
        set_committed_value(job, column, value)
    # Core values: the entry's statement is sent as is on PostgreSQL, past the ORM's type handling.
    values = {column: value.value if isinstance(value, Enum) else value for column, value in changes.items()}
    return SeqStamp(_JOB, job.id or 0, None, values)
