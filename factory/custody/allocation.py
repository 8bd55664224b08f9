"""Allocation: reserving a ready device for an officer (in person or by courier) or a vehicle,
optionally within a refresh wave. Issue, dispatch and installation all start from here.
"""

from __future__ import annotations

from sqlmodel import Session, select

from factory.custody.models import Allocation, AllocationChannel, AllocationStatus, Wave
from factory.custody.people import get_officer, get_vehicle
from factory.intake.views import get_device
from factory.kernel.clock import utc_now
from factory.kernel.errors import Conflict, InvalidInput, NotFound
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device, DeviceKind

OPEN_STATUSES = (AllocationStatus.ALLOCATED.value, AllocationStatus.IN_TRANSIT.value)


def open_in_person_allocation(session: Session, serial: str) -> Allocation:
    """The device's open allocation for an in-person issue, or a NotFound naming its state."""
    device = get_device(session, serial)
    allocation = session.exec(
        select(Allocation).where(
            Allocation.device_id == device.id,
            Allocation.status == AllocationStatus.ALLOCATED.value,
            Allocation.channel == AllocationChannel.IN_PERSON.value,
        )
    ).first()
    if allocation is None:
        raise NotFound(f"device {device.serial} has no open in-person allocation (state '{device.state}')")
    return allocation


def get_allocation(session: Session, allocation_id: int) -> Allocation:
    allocation = session.get(Allocation, allocation_id)
    if allocation is None:
        raise NotFound(f"no allocation with id {allocation_id}")
    return allocation


def get_wave(session: Session, name: str) -> Wave:
    wave = session.exec(select(Wave).where(Wave.name == (name or "").strip())).first()
    if wave is None:
        raise NotFound(f"no refresh wave named {name}")
    return wave


def allocate(
    session: Session,
    *,
    serial: str,
    actor: str,
    staff_number: str | None = None,
    fleet_number: str | None = None,
    channel: AllocationChannel | None = None,
    wave: str | None = None,
) -> Allocation:
    """Reserve a ready device for exactly one officer or one vehicle (``allocate`` edge)."""
    if (staff_number is None) == (fleet_number is None):
        raise InvalidInput("allocate to exactly one of: an officer (staff number) or a vehicle (fleet number)")
    device = get_device(session, serial)
    officer = get_officer(session, staff_number) if staff_number is not None else None
    vehicle = get_vehicle(session, fleet_number) if fleet_number is not None else None
    if vehicle is not None:
        channel = channel or AllocationChannel.VEHICLE
        if channel is not AllocationChannel.VEHICLE:
            raise InvalidInput("a vehicle allocation goes through the installer (channel 'vehicle')")
        if device.kind != DeviceKind.VEHICLE_TABLET:
            raise InvalidInput(f"device {device.serial} is a {device.kind}, not a vehicle tablet")
        if vehicle.decommissioned_at is not None:
            raise Conflict(f"vehicle {vehicle.fleet_number} was decommissioned at {vehicle.decommissioned_at}")
    else:
        channel = channel or AllocationChannel.IN_PERSON
        if channel is AllocationChannel.VEHICLE:
            raise InvalidInput("an officer's device is issued in person or by courier")
        if device.kind == DeviceKind.VEHICLE_TABLET:
            raise InvalidInput(f"device {device.serial} is a vehicle tablet: allocate it to a vehicle")
    wave_row = get_wave(session, wave) if wave else None
    _refuse_if_open_allocation(session, device)
    allocation = Allocation(
        device_id=device.id or 0,
        officer_id=officer.id if officer else None,
        vehicle_id=vehicle.id if vehicle else None,
        wave_id=wave_row.id if wave_row else None,
        channel=str(channel),
        device_kind=device.kind,
        allocated_seq=0,
        created_by=actor,
        created_at=utc_now(),
    )
    session.add(allocation)
    session.flush()
    evidence: dict[str, object] = {"allocation_id": allocation.id, "channel": str(channel)}
    if officer:
        evidence |= {"officer": officer.staff_number, "team": officer.team, "at_profile": officer.at_profile}
    if vehicle:
        evidence["vehicle"] = vehicle.fleet_number
    if wave_row:
        evidence["wave"] = wave_row.name
    [entry] = change_state(session, [TransitionRequest(device.id or 0, Event.ALLOCATE, evidence=evidence)], actor=actor)
    allocation.allocated_seq = entry.seq
    session.add(allocation)
    session.flush()
    return allocation


def release(session: Session, *, allocation_id: int, reason: str, actor: str) -> Allocation:
    """Give an allocated device back to stock (``release`` edge)."""
    allocation = get_allocation(session, allocation_id)
    if allocation.status != AllocationStatus.ALLOCATED:
        raise Conflict(f"allocation {allocation_id} is {allocation.status}, not allocated: it cannot be released")
    if not (reason or "").strip():
        raise InvalidInput("releasing an allocation needs a reason")
    change_state(
        session,
        [
            TransitionRequest(
                allocation.device_id,
                Event.RELEASE,
                evidence={"allocation_id": allocation.id, "reason": reason.strip()},
            )
        ],
        actor=actor,
    )
    allocation.status = AllocationStatus.RELEASED.value
    session.add(allocation)
    session.flush()
    return allocation


def _refuse_if_open_allocation(session: Session, device: Device) -> None:
    existing = session.exec(
        select(Allocation).where(
            Allocation.device_id == device.id,
            Allocation.status.in_(OPEN_STATUSES),  # type: ignore[attr-defined]
        )
    ).first()
    if existing is not None:
        raise Conflict(f"device {device.serial} already has open allocation {existing.id} ({existing.status})")


def mark_returned(session: Session, device_id: int) -> None:
    """The device came back: its issued allocation (if any) is over."""
    for allocation in session.exec(
        select(Allocation).where(
            Allocation.device_id == device_id,
            Allocation.status.in_([AllocationStatus.ISSUED.value, AllocationStatus.IN_TRANSIT.value]),  # type: ignore[attr-defined]
        )
    ).all():
        allocation.status = AllocationStatus.RETURNED.value
        session.add(allocation)
