"""Network-boot slots: an enrolled laptop takes a slot and gets its job, like a docked device.

A bench network's laptops have no dock port: the site file gives a bench slots with
``port_kind = "netboot"``, a pool the enrolments fill. The laptop's slot is the one its MAC already
holds (a switch-port slot that saw it, or its earlier boot's), else the first free network-boot
slot. A new boot is a new attachment (a fresh attachment id), so a job never outlives its boot.
The job is queued in the enrolment's transaction and the agent driving the bench claims it like
any other; a refused enrolment (disks not as recorded) leaves the job held with the reason.
"""

from __future__ import annotations

import time

from sqlmodel import Session, col, select

from factory.intake.service import EnrolmentOutcome, EnrolmentReport, Outcome, enrol
from factory.kernel.clock import utc_now
from factory.line import jobs
from factory.line.errors import JobNotActionable
from factory.line.job_log import JobLogBuffer
from factory.line.models import Job, JobStatus, Slot
from factory.line.pipeline_rules import Step
from factory.line.slots import Attachment, attach, locked

NETBOOT_PORT_KIND = "netboot"
DISKS_ACTION = (
    "check the laptop's disks against its record (a swapped or added disk), correct the record, then reboot it"
)


class NoNetbootSlot(JobNotActionable):
    """Every network-boot slot holds a laptop with a job in progress."""


def enrol_and_queue(
    session: Session, token: str | None, report: EnrolmentReport, *, leased: tuple[str, ...] = ()
) -> tuple[EnrolmentOutcome, Job]:
    """The enrolment (intake's checks and records) and the laptop's job, in one transaction.

    :raises BootTokenRefused, BootTokenForAnotherMac, EnrolmentFromElsewhere, InvalidInput: from the enrolment.
    :raises NoNetbootSlot: no slot is free (nothing is recorded: the laptop may retry).
    """
    outcome = enrol(session, token, report, leased=leased)
    slot = _slot_for(session, outcome.mac)
    if slot.attachment_id is not None:  # the same laptop's earlier boot (its job is over)
        slot.attachment_id = None
    attach(session, slot, Attachment(outcome.serial, None, None, time.time()))
    slot.attached_mac = outcome.mac
    logs = JobLogBuffer()
    job, _ = jobs.create_job(
        session,
        slot,
        provision_name=Step.PROVISION.value,  # renamed after the provisioner of the agent that runs it
        detected_epoch=time.time(),
        note=f"enrolled over the network from {report.address} (MAC {outcome.mac}, matched by {outcome.matched_by})",
        logs=logs,
    )
    if outcome.outcome is Outcome.REFUSED and job.status == JobStatus.QUEUED:
        jobs.finish(session, job, JobStatus.HELD, outcome.reason, DISKS_ACTION, logs=logs)
    logs.flush(session)
    return outcome, job


def _slot_for(session: Session, mac: str) -> Slot:
    own = session.exec(locked(session, select(Slot).where(Slot.attached_mac == mac))).first()  # type: ignore[call-overload]
    if own is not None:
        if jobs.active_job_for_slot(session, own.id or 0) is not None:
            raise NoNetbootSlot(f"slot {own.code} already runs a job for MAC {mac}: wait for it, or stop it first")
        return own
    busy = select(Job.slot_id).where(col(Job.status).in_([JobStatus.QUEUED, JobStatus.RUNNING]))
    free = (
        select(Slot)
        .where(Slot.port_kind == NETBOOT_PORT_KIND, col(Slot.id).not_in(busy))
        .order_by(col(Slot.attachment_id).is_not(None), col(Slot.bench_id), col(Slot.position))
    )
    slot = session.exec(locked(session, free)).first()  # type: ignore[call-overload]
    if slot is None:
        raise NoNetbootSlot(
            "no free network-boot slot: every slot with port_kind 'netboot' runs a job; reboot the laptop later"
        )
    slot.updated_at = utc_now()
    return slot
