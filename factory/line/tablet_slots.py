"""A tablet in a bench slot: what its USB identity says, kept as the slot's attached node.

A tablet has no block device node; the slot records ``tablet:<platform>:<mode>`` instead (from
:mod:`hardware_drivers.tablet_usb`), so the job knows which tools to use and whether the tablet
can be worked on at all. One in recovery/DFU, in its bootloader or without USB debugging holds its
job with the technician's action; re-inserting it after that starts a new job.
"""

from __future__ import annotations

from dataclasses import replace

from sqlmodel import Session, col, select

from factory.line.errors import SimulationOnly
from factory.line.identify import identify
from factory.line.models import Job, JobStatus, JobStep, Slot, StepStatus
from factory.line.pipeline_rules import TABLET_STEP_NAMES, Plan, Step, tablet_plan
from factory.tablets.service import TabletBench
from hardware_drivers.events import UdevEvent
from hardware_drivers.tablet_usb import ACTIONS, Platform, UsbMode, classify

PREFIX = "tablet:"


def attached_node(event: UdevEvent) -> str | None:
    """What a slot records as the node of ``event``'s device: the tablet marker, or the device node."""
    sighting = classify(event)
    if sighting is None:
        return event.device_node
    return f"{PREFIX}{sighting.platform.value}:{sighting.mode.value}"


def tablet_serial(event: UdevEvent) -> str | None:
    """The serial a slot records: an iPad's 24-digit USB serial is its UDID without the dash
    (usbmuxd and the tools spell it ``00008103-001A2B3C4D5E001E``); others as udev reports them."""
    serial = event.serial
    sighting = classify(event)
    if (
        sighting is not None
        and sighting.platform is Platform.IPADOS
        and serial
        and len(serial) == 24
        and "-" not in serial
    ):
        return f"{serial[:8]}-{serial[8:]}"
    return serial


def tablet_of(node: str | None) -> tuple[Platform, UsbMode] | None:
    if not node or not node.startswith(PREFIX):
        return None
    platform, _, mode = node[len(PREFIX) :].partition(":")
    return Platform(platform), UsbMode(mode)


def for_attachment(plan: Plan, node: str | None) -> Plan:
    """A tablet's plan for what is in the slot; held with the action while the tablet is in a mode the
    tools cannot use (recovery, bootloader, MTP only)."""
    tablet = tablet_of(node)
    if tablet is None:
        return plan
    platform, mode = tablet
    plan = tablet_plan(plan, platform.value)
    action = ACTIONS.get(mode)
    if action is None or Step.IDENTIFY_TABLET not in plan.steps:
        return plan
    return replace(plan, steps=(), hold_reason=f"{platform.value} tablet in {mode.value} mode", action=action)


# From the reset on, a tablet may leave the bus to restart (an Android tablet reboots after the
# service has confirmed the wipe, while the job is already enrolling it).
RESTARTING_STEPS = frozenset({TABLET_STEP_NAMES[Step.SANITISE], TABLET_STEP_NAMES[Step.ENROL]})


def restarting_for_reset(session: Session, slot: Slot) -> bool:
    """A tablet leaves the bus while its platform reset restarts it (an iPad erasing, an Android
    tablet rebooting into its reset, during or after the reset step): not a removal, so its job is
    not stopped. A tablet really
    pulled then is caught by the reset's own checks (no acknowledgement, or not back in setup)."""
    if tablet_of(slot.attached_node) is None or slot.attachment_id is None:
        return False
    job = session.exec(
        select(Job).where(
            Job.slot_id == slot.id, Job.attachment_id == slot.attachment_id, Job.status == JobStatus.RUNNING
        )
    ).first()
    return job is not None and job.current_step in RESTARTING_STEPS


# A tablet's restart can reach the controller after its job has ended: an Android tablet reboots
# once the service has confirmed the wipe, while its job enrols it, and the enrolment may finish
# first. Back on the bus within this long of its job's end, it rejoins that job (see below).
RESTART_WINDOW_SECONDS = 180.0


def rejoined_after_reset(session: Session, slot: Slot, now: float) -> bool:
    """The tablet just attached to ``slot`` is the one whose job there reset it and then ended
    (succeeded, or held at a later step) less than the restart window ago: it left the bus to
    restart after its reset, and the removal was handled after the job's end. The slot takes that
    job's attachment back, so the board keeps that job and its action, rather than a new job held
    for "already provisioned" or for the USB debugging a reset turns off; True if so."""
    if tablet_of(slot.attached_node) is None:
        return False
    last = session.exec(select(Job).where(Job.slot_id == slot.id).order_by(col(Job.id).desc()).limit(1)).first()
    if last is None or last.status not in (JobStatus.SUCCEEDED, JobStatus.HELD) or last.device_id is None:
        return False
    if last.ended_epoch is None or now - last.ended_epoch > RESTART_WINDOW_SECONDS:
        return False
    reset = select(JobStep.id).where(
        JobStep.job_id == last.id, JobStep.kind == Step.SANITISE.value, JobStep.status == StepStatus.SUCCEEDED.value
    )
    if session.exec(reset).first() is None:  # never reset, so no restart: a re-insert is a re-insert
        return False
    device = identify(session, slot.attached_serial).device
    if device is None or device.id != last.device_id:
        return False
    slot.attachment_id, slot.device_id = last.attachment_id, last.device_id
    return True


def checked_bench(tablets: TabletBench | None, simulated_line: bool) -> TabletBench | None:
    """The line's tablet settings; the simulated tablets are refused on a real line."""
    if tablets is not None and tablets.simulated and not simulated_line:
        raise SimulationOnly("the simulated tablets run only on a simulated line: pass --tablets FILE")
    return tablets


__all__ = [
    "PREFIX",
    "TabletBench",
    "attached_node",
    "checked_bench",
    "for_attachment",
    "rejoined_after_reset",
    "restarting_for_reset",
    "tablet_of",
    "tablet_serial",
]
