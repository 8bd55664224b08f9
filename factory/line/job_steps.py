"""The job runner's other steps: book a returned device back in, provision it, quarantine an
unknown one. Each writes its step row and the device's transition in one transaction, after the
runner's ownership re-check (``JobRunner.scope``); the erase is in ``erase_step.py``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlmodel import Session

from factory.custody.service import mark_returned
from factory.custody.views import vehicle_fleet_number
from factory.intake.service import receive_device
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device, DeviceKind
from factory.line import jobs
from factory.line.device_condition import latest_condition
from factory.line.errors import StepFailed, StepHeld
from factory.line.models import Slot, StepStatus
from factory.line.provision_step import (
    NO_PROVISIONING,
    NO_PROVISIONING_ACTION,
    Provisioner,
    ProvisionOutcome,
    ProvisionRequest,
)
from factory.line.tablet_slots import tablet_of

if TYPE_CHECKING:
    from factory.line.job_runner import JobRunner

NO_VEHICLE = (
    "a vehicle tablet is built for its vehicle: this one is neither earmarked for nor allocated to a vehicle in service"
)
NO_VEHICLE_ACTION = (
    "earmark it for the vehicle it will be fitted in (Vehicles page: Build a new tablet for this vehicle; "
    "or factory vehicle build-for SERIAL FLEET), then take it out and re-insert it"
)


def book_return(runner: JobRunner, step_id: int, name: str) -> None:
    with runner.scope(starting=name) as (s, job):
        values = runner.begin(s, job, name)
        values |= runner.end_step(s, job, name, StepStatus.SUCCEEDED, "booked back into the factory")
        condition = latest_condition(s, job.device_id or 0)  # what routed it, into the signed entry
        routed = {"condition": {"route": condition.route, "why": condition.why}} if condition else {}
        mark_returned(s, job.device_id or 0)  # its allocation is over, as at a counter exchange
        # Last: on PostgreSQL the ledger's lock is held from the append to the commit.
        note = "detected on a bench: booked back from the user"
        runner.transition(s, job, Event.RETURN, step=runner.step_stamp(step_id, **values), note=note, **routed)


def vehicle_of_build(session: Session, device: Device) -> str | None:
    """The fleet number a device is built for (None for a device that is no vehicle tablet: only
    those are allocated to, or earmarked for, a vehicle, so no query is made for the others).

    :raises StepHeld: a vehicle tablet with no vehicle: its build names the vehicle (fleet number,
        in-vehicle settings), so it waits for one where it is (sanitised, or received if new)
        rather than failing its provisioning.
    """
    if device.kind != DeviceKind.VEHICLE_TABLET:
        return None
    fleet = vehicle_fleet_number(session, device.id or 0)
    if not fleet:
        raise StepHeld(NO_VEHICLE, NO_VEHICLE_ACTION)
    return fleet


def provision(runner: JobRunner, step_id: int, name: str) -> None:
    """Move the device to provisioning, run the provisioner outside any transaction, then record
    its outcome. The step takes the name of the provisioner that runs it (a retry's label may be
    older than this agent's settings).

    :raises StepHeld: this line has no provisioner, or the device is a vehicle tablet with no
        vehicle: nothing is run and the device stays put.
    :raises StepFailed: the provisioner failed or raised.
    """
    provisioner = runner.ctx.provisioner
    if provisioner is None:
        raise StepHeld(NO_PROVISIONING, NO_PROVISIONING_ACTION)
    name = provisioner.name
    with runner.scope(starting=name) as (s, job):
        # Locked here, once: the transition finds it locked in this transaction and selects it no more.
        device = jobs.device_of(s, job)
        fleet = vehicle_of_build(s, device)
        started = runner.begin(s, job, name)
        vehicle = {"vehicle": fleet} if fleet else {}
        stamp = runner.step_stamp(step_id, name=name, **started)
        runner.transition(s, job, Event.START_PROVISION, step=stamp, provisioner=name, **vehicle)
        request = ProvisionRequest(
            job_id=runner.job_id,
            device_serial=device.serial,
            kind=device.kind,
            role=device.role,
            profile=job.profile,
            slot=runner.slot_code(s, job) or "",
            cancel=runner.cancel,
            vehicle_fleet_number=fleet,
            progress=lambda p: runner.on_progress(name, p, 0, 1),
        )
    outcome = _call_provisioner(runner, provisioner, request)
    with runner.scope() as (s, job):
        status = StepStatus.NOOP if outcome.noop else StepStatus.SUCCEEDED
        ended = runner.end_step(s, job, name, status, outcome.detail)
        stamp = runner.step_stamp(step_id, **ended)
        evidence = {"provisioner": name, "noop": outcome.noop, "detail": outcome.detail}
        runner.transition(s, job, Event.PROVISIONED, step=stamp, **evidence)


def _call_provisioner(runner: JobRunner, provisioner: Provisioner, request: ProvisionRequest) -> ProvisionOutcome:
    started = time.monotonic()
    try:
        outcome = provisioner(request)
    except Exception as exc:  # a provisioner bug is a failed provisioning, with its reason
        raise StepFailed(f"provisioner error: {type(exc).__name__}: {exc}") from exc
    finally:
        runner.work += time.monotonic() - started
    if not outcome.ok:
        raise StepFailed(outcome.detail)
    return outcome


def quarantine(runner: JobRunner, step_id: int, name: str) -> None:
    """Book an unknown device in (from the serial the port reported) and quarantine it.

    :raises StepFailed: the port reported no serial number.
    """
    with runner.scope(starting=name) as (s, job):
        values = runner.begin(s, job, name)
        slot = s.get(Slot, job.slot_id)
        assert slot is not None
        if not job.device_serial:
            raise StepFailed("the port reported no serial number: the device cannot be booked in")
        values |= runner.end_step(s, job, name, StepStatus.SUCCEEDED, "booked in and quarantined for a technician")
        runner.logs.flush(s)  # before the ledger's lock, which the transitions take
        device = receive_device(
            s,
            serial=job.device_serial,
            kind="tablet" if tablet_of(slot.attached_node) else slot.default_kind,  # seen on a hub as a tablet
            actor=runner.ctx.actor,
            from_custodian="unknown",
            location=slot.code,
        )
        evidence = {
            "reason": "unknown device found in a bench slot",
            "job": job.id,
            "slot": slot.code,
            "detected_size_bytes": slot.attached_size,
        }
        job.device_id = slot.device_id = device.id
        s.add(job)
        s.add(slot)
        s.flush()  # before the ledger's lock, which the transition takes
        stamp = runner.step_stamp(step_id, **values)
        request = TransitionRequest(device.id or 0, Event.QUARANTINE, evidence=evidence, stamps=(stamp,))
        change_state(s, [request], actor=runner.ctx.actor)
