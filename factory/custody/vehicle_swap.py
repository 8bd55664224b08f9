"""Replacing a faulty in-vehicle tablet: the faulty tablet comes out of the vehicle (``return``)
and a tablet allocated to that vehicle goes in (``install``), in one ``change_state`` call, so the
vehicle is never recorded with both or with neither."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, col, select

from factory.custody.allocation import mark_returned
from factory.custody.lookups import get_vehicle
from factory.custody.models import Allocation, AllocationChannel
from factory.custody.outcome import Outcome, saved
from factory.custody.people import vehicle_label
from factory.custody.statuses import AllocationStep, change_status, sources
from factory.intake.views import FACTORY_CUSTODIAN, get_device
from factory.kernel import clock
from factory.kernel.errors import Conflict, GuardRefused, InvalidInput
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device


@dataclass(frozen=True)
class Fitter:
    """Who fitted the replacement, for whom, and when."""

    name: str
    company: str
    on: date


def open_vehicle_allocation(session: Session, device: Device, vehicle_id: int | None = None) -> Allocation | None:
    """The device's allocation to a vehicle (that vehicle, if given) still waiting for installation."""
    query = select(Allocation).where(
        Allocation.device_id == device.id,
        Allocation.channel == AllocationChannel.VEHICLE.value,
        col(Allocation.status).in_(sources(AllocationStep.INSTALL)),
    )
    if vehicle_id is not None:
        query = query.where(Allocation.vehicle_id == vehicle_id)
    return session.exec(query).first()


def replace_tablet(
    session: Session,
    *,
    fleet_number: str,
    faulty_serial: str,
    replacement_serial: str,
    fault: str,
    fitter: Fitter,
    actor: str,
    verifier: CertificateVerifier | None,
) -> Outcome[Allocation]:
    """Swap the vehicle's faulty tablet for one allocated to it, in one step.

    :raises NotFound: no such vehicle or device.
    :raises Conflict: the vehicle is decommissioned.
    :raises InvalidInput: no fault, no fitter, a future date, or the same tablet twice.
    :raises GuardRefused: the faulty tablet is not in this vehicle, or the replacement is not
        allocated to it (or not certified).
    """
    vehicle = get_vehicle(session, fleet_number)
    if vehicle.decommissioned_at is not None:
        raise Conflict(f"vehicle {vehicle.fleet_number} is decommissioned")
    faulty, replacement = get_device(session, faulty_serial), get_device(session, replacement_serial)
    what = (fault or "").strip()
    if not what or not fitter.name.strip() or not fitter.company.strip():
        raise InvalidInput("a replacement records the fault, the fitter and the installing contractor")
    if fitter.on > clock.now().date():
        raise InvalidInput(f"installation date {fitter.on.isoformat()} is in the future")
    if faulty.id == replacement.id:
        raise InvalidInput("the faulty tablet and its replacement are the same device")
    here = vehicle_label(vehicle)
    if faulty.custodian != here:
        raise GuardRefused(f"tablet {faulty.serial} is not installed in vehicle {vehicle.fleet_number}")
    allocation = open_vehicle_allocation(session, replacement, vehicle.id)
    if allocation is None:
        raise GuardRefused(
            f"tablet {replacement.serial} is not allocated to vehicle {vehicle.fleet_number}: allocate it first"
        )
    common = {"vehicle": vehicle.fleet_number, "fault": what[:500]}
    out = TransitionRequest(
        faulty.id or 0,
        Event.RETURN,
        to_custodian=FACTORY_CUSTODIAN,
        evidence={**common, "replaced_by": replacement.serial, "removed_by": fitter.name.strip()},
    )
    fitted = {
        "allocation_id": allocation.id,
        "replaces": faulty.serial,
        "installer": fitter.name.strip(),
        "contractor": fitter.company.strip(),
        "installed_on": fitter.on.isoformat(),
    }
    into = TransitionRequest(replacement.id or 0, Event.INSTALL, to_custodian=here, location=here,
                             evidence={**common, **fitted})  # fmt: skip
    entries = change_state(session, [out, into], actor=actor, verifier=verifier)
    mark_returned(session, faulty.id or 0)
    change_status(allocation, AllocationStep.INSTALL)
    return saved(session, allocation, entries)
