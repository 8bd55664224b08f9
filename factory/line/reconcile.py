"""Start-up reconciliation: make the database agree with what is physically in the slots.

Runs once when an agent takes its benches, before any new work starts:

1. Jobs on our benches still marked running belong to a dead process (we hold the benches, so
   no live agent can be running them): they become ``interrupted`` and the device they put in
   progress goes to sanitise_failed / provision_failed with the reason, in one transaction. The
   interrupted erase round can never be certified: a restart opens a new round.
2. Every slot is compared with what the port reports now. A device still present after an
   interrupted job is restarted from the beginning (up to ``max_attempts`` per insertion, then it
   waits for a technician); a device gone from its slot frees it; a new one is handled like any
   arrival.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from factory.line import jobs
from factory.line.bench_config import LineConfig
from factory.line.job_log import JobLogBuffer, logged_scope
from factory.line.models import ACTIVE_JOB_STATUSES, Job, JobStatus, Slot
from factory.line.slots import Attachment, AttachResult, attach, free, locked
from factory.line.tablet_slots import attached_node, tablet_serial
from hardware_drivers.events import DeviceAttached, UdevEvent

INTERRUPTED_REASON = "interrupted: controller restarted"


@dataclass
class ReconcileReport:
    interrupted: list[int] = field(default_factory=list)
    restarted: list[int] = field(default_factory=list)
    freed: list[str] = field(default_factory=list)
    attached: list[str] = field(default_factory=list)
    needs_technician: list[int] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.interrupted)} interrupted job(s), {len(self.restarted)} restarted, "
            f"{len(self.freed)} slot(s) freed, {len(self.attached)} new arrival(s), "
            f"{len(self.needs_technician)} waiting for a technician"
        )


def reconcile_benches(
    engine: Engine,
    config: LineConfig,
    *,
    bench_ids: Sequence[int],
    present: Iterable[UdevEvent],
    run_id: str,
    actor: str,
    provision_name: str,
) -> ReconcileReport:
    """Interrupt our dead predecessors' jobs, then match every slot with what is plugged in now
    (``present``: udev's enumeration, or the simulated slots); two transactions."""
    attached = {}
    for event in present:
        code = config.port_map.slot_for_device(event)
        if code is not None and isinstance(event, DeviceAttached):
            # A tablet as its arrival would record it (UDID spelling, tablet marker), so it is recognised.
            attached[code] = Attachment(tablet_serial(event), attached_node(event), event.size_bytes, time.time())
    report = ReconcileReport()
    with logged_scope(engine) as (s, logs):
        report.interrupted = interrupt_orphans(s, bench_ids=bench_ids, run_id=run_id, actor=actor, logs=logs)
    with logged_scope(engine) as (s, logs):
        sync_slots(
            s,
            bench_ids=bench_ids,
            present=attached,
            provision_name=provision_name,
            max_attempts=config.max_attempts,
            report=report,
            logs=logs,
        )
    return report


def interrupt_orphans(
    session: Session, *, bench_ids: Sequence[int], run_id: str, actor: str, logs: JobLogBuffer
) -> list[int]:
    stmt = select(Job).where(
        col(Job.bench_id).in_(bench_ids),
        Job.status == JobStatus.RUNNING,
        Job.owner_run != run_id,
    )
    interrupted = []
    for job in session.exec(locked(session, stmt)).all():  # type: ignore[call-overload]
        slot = session.get(Slot, job.slot_id)
        code = slot.code if slot else ""
        jobs.fail_device_if_ours(session, job, reason=INTERRUPTED_REASON, actor=actor, slot_code=code, logs=logs)
        jobs.finish(
            session,
            job,
            JobStatus.INTERRUPTED,
            INTERRUPTED_REASON,
            "restarts from the beginning if the device is still in its slot",
            logs=logs,
        )
        interrupted.append(job.id or 0)
    return interrupted


def sync_slots(
    session: Session,
    *,
    bench_ids: Sequence[int],
    present: Mapping[str, Attachment],
    provision_name: str,
    max_attempts: int,
    report: ReconcileReport,
    logs: JobLogBuffer,
) -> None:
    slots = session.exec(
        locked(session, select(Slot).where(col(Slot.bench_id).in_(bench_ids)).order_by(col(Slot.id)))
    ).all()  # type: ignore[call-overload]
    for slot in slots:
        seen = present.get(slot.code)
        if slot.attachment_id is not None and seen is not None and seen.serial == slot.attached_serial:
            attach(session, slot, seen)  # same device: refresh its node
            _resume(session, slot, provision_name, max_attempts, report, logs)
            continue
        if slot.attachment_id is not None:
            for job in session.exec(
                select(Job).where(Job.slot_id == slot.id, col(Job.status).in_(ACTIVE_JOB_STATUSES))
            ).all():
                reason = "device not in its slot after the controller restarted"
                jobs.finish(session, job, JobStatus.CANCELLED, reason, logs=logs)
            free(session, slot)
            report.freed.append(slot.code)
        if seen is not None and attach(session, slot, seen) is AttachResult.ATTACHED:
            jobs.create_job(session, slot, provision_name=provision_name, detected_epoch=seen.detected_at, logs=logs)
            report.attached.append(slot.code)


def _resume(
    session: Session, slot: Slot, provision_name: str, max_attempts: int, report: ReconcileReport, logs: JobLogBuffer
) -> None:
    history = jobs.jobs_for_attachment(session, slot.attachment_id or "")
    if any(j.status in ACTIVE_JOB_STATUSES for j in history):
        return  # queued work simply waits to be claimed
    if history and history[-1].status != JobStatus.INTERRUPTED:
        return  # finished one way or another: the board shows it
    if len(history) >= max_attempts:
        report.needs_technician.append(history[-1].id or 0)
        return
    note = f"restarting from the beginning after interrupted job {history[-1].id}" if history else None
    job, _ = jobs.create_job(
        session,
        slot,
        provision_name=provision_name,
        detected_epoch=None,
        attempt=len(history) + 1,
        note=note,
        logs=logs,
    )
    report.restarted.append(job.id or 0)
