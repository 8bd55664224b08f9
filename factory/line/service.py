"""The line's writes that other areas, the API and the CLI call: a technician's cancel, abort and
retry of a job, running a bench agent, and writing a job's log (the provisioner's sink).

Each action runs in the caller's transaction and inserts its job-log lines before it returns,
so a read in the same transaction (the API answers with the job's detail) sees them.
"""

from __future__ import annotations

import time

from sqlmodel import Session, select

from factory.kernel.clock import utc_now
from factory.line.agent import LineAgentProcess, SimulationOptions
from factory.line.bench_config import LineConfig, load_line_config, simulated_config
from factory.line.bus import set_process_bus
from factory.line.consistency import audit_line
from factory.line.errors import JobNotActionable, JobNotFound, UnknownStopKind
from factory.line.job_log import JobLogBuffer, logged_scope
from factory.line.jobs import (
    STOP_OUTCOMES,
    active_job_for_slot,
    create_job,
    fail_device_if_ours,
    finish,
    jobs_for_attachment,
)
from factory.line.models import (
    ACTIVE_JOB_STATUSES,
    RETRYABLE_JOB_STATUSES,
    TECHNICIAN_STOPS,
    Job,
    JobStatus,
    JobStep,
    Slot,
    StopKind,
)
from factory.line.netboot_jobs import NoNetbootSlot, enrol_and_queue
from factory.line.people import require_named_people
from factory.line.pipeline_rules import Step
from factory.line.provision_step import (
    NO_PROVISIONING_NOTICE,
    PersonaliseOutcome,
    PersonaliseRequest,
    Provisioner,
    ProvisionOutcome,
    ProvisionRequest,
)
from factory.line.reboot_grace import DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS, expect_reboot
from factory.line.slots import locked

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "MAX_GRACE_SECONDS",
    "NO_PROVISIONING_NOTICE",
    "JobLogBuffer",
    "LineAgentProcess",
    "LineConfig",
    "NoNetbootSlot",
    "PersonaliseOutcome",
    "PersonaliseRequest",
    "ProvisionOutcome",
    "ProvisionRequest",
    "Provisioner",
    "SimulationOptions",
    "StopKind",
    "audit_line",
    "enrol_and_queue",
    "expect_reboot",
    "load_line_config",
    "logged_scope",
    "request_stop",
    "require_named_people",
    "retry_job",
    "set_process_bus",
    "simulated_config",
]


def _job(session: Session, job_id: int) -> Job:
    job = session.exec(locked(session, select(Job).where(Job.id == job_id))).first()  # type: ignore[call-overload]
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    return job  # type: ignore[no-any-return]


def _owner_alive(job: Job) -> bool:
    return job.lease_expires_at is not None and job.lease_expires_at > time.time() and job.owner_run is not None


def request_stop(session: Session, job_id: int, *, kind: StopKind | str, actor: str) -> Job:
    """Cancel or abort a job. A queued job, or one whose agent is gone, is stopped here and now;
    a running one is asked to stop and its agent finishes it (and fails the device) within a
    heartbeat.

    :raises UnknownStopKind: ``kind`` is neither cancel nor abort.
    :raises JobNotFound: no such job.
    :raises JobNotActionable: the job has ended already.
    """
    if kind not in TECHNICIAN_STOPS:
        raise UnknownStopKind(f"unknown action '{kind}'")
    kind = StopKind(kind)
    job = _job(session, job_id)
    if job.status not in ACTIVE_JOB_STATUSES:
        raise JobNotActionable(f"job {job_id} is {job.status}: nothing to {kind}")
    logs = JobLogBuffer()
    if job.status == JobStatus.RUNNING and _owner_alive(job):
        job.requested, job.requested_by, job.updated_at = kind.value, actor, utc_now()
        session.add(job)
        logs.add(job_id, f"{kind} requested by {actor}")
    else:
        status, action = STOP_OUTCOMES[kind]
        reason = f"{kind.done} by {actor}"
        slot = session.get(Slot, job.slot_id)
        fail_device_if_ours(session, job, reason=reason, actor=actor, slot_code=slot.code if slot else "", logs=logs)
        finish(session, job, status, reason, action, logs=logs)
    logs.flush(session)
    return job


def retry_job(session: Session, job_id: int, *, actor: str, provision_name: str | None = None) -> Job:
    """Queue a fresh attempt for the same device in the same slot (restarting from the beginning:
    a sanitise opens a new erase round, so nothing from the failed attempt can count).

    The provision step keeps the retried job's label unless ``provision_name`` is given; it is only
    a label: the agent that claims the retry runs its own provisioner, or holds the job if it has
    none, and renames the step after what ran.

    :raises JobNotFound: no such job.
    :raises JobNotActionable: the job cannot be retried, its device left the slot, or the slot
        already has an active job.
    """
    job = _job(session, job_id)
    if job.status not in RETRYABLE_JOB_STATUSES:
        raise JobNotActionable(
            f"job {job_id} is {job.status}: only failed, cancelled or interrupted jobs can be retried"
        )
    slot = session.exec(locked(session, select(Slot).where(Slot.id == job.slot_id))).first()  # type: ignore[call-overload]
    if slot is None or slot.attachment_id != job.attachment_id:
        raise JobNotActionable(f"job {job_id}: device {job.device_serial} is no longer in its slot; re-insert it")
    if active_job_for_slot(session, job.slot_id) is not None:
        raise JobNotActionable(f"slot {slot.code} already has an active job")
    attempts = len(jobs_for_attachment(session, job.attachment_id))
    if provision_name is None:
        named = select(JobStep.name).where(JobStep.job_id == job_id, JobStep.kind == Step.PROVISION)
        provision_name = session.exec(named).first() or Step.PROVISION.value
    logs = JobLogBuffer()
    new, _ = create_job(
        session,
        slot,
        provision_name=provision_name,
        detected_epoch=time.time(),
        attempt=attempts + 1,
        note=f"retry of job {job_id} requested by {actor}",
        logs=logs,
    )
    new.started_by, new.approved_by = job.started_by, actor  # the retry's certificates name its approver
    logs.add(job_id, f"retried as job {new.id} by {actor}")
    logs.flush(session)
    return new
