"""Allocation: reserving a ready device for an officer (in person or by courier) or a vehicle,
optionally within a refresh wave. Issue, dispatch and installation all start from here.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from factory.custody.lookups import get_allocation, get_officer, get_vehicle, get_wave
from factory.custody.models import ALLOCATION_CHANNELS, Allocation, AllocationChannel, Officer, Vehicle
from factory.custody.outcome import Outcome, saved
from factory.custody.statuses import OPEN_ALLOCATION, WITH_HOLDER_OR_COURIER, AllocationStep, change_status, require
from factory.custody.vehicle_builds import refuse_other_vehicle
from factory.intake.views import get_device
from factory.kernel.clock import utc_now
from factory.kernel.errors import Conflict, InvalidInput
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device, DeviceKind


def allocate(
    session: Session,
    *,
    serial: str,
    actor: str,
    staff_number: str | None = None,
    fleet_number: str | None = None,
    channel: AllocationChannel | None = None,
    wave: str | None = None,
) -> Outcome[Allocation]:
    """Reserve a ready device for exactly one officer or one vehicle (``allocate`` edge).

    :raises InvalidInput: not exactly one holder, a channel or device kind that does not fit it,
        or a courier allocation without a wave.
    :raises NotFound: no such device, officer, vehicle or wave.
    :raises Conflict: the vehicle is decommissioned or the device already has an open allocation.
    :raises GuardRefused: a vehicle tablet built (or earmarked) for another vehicle.
    """
    if (staff_number is None) == (fleet_number is None):
        raise InvalidInput("allocate to exactly one of: an officer (staff number) or a vehicle (fleet number)")
    device = get_device(session, serial)
    officer = get_officer(session, staff_number) if staff_number is not None else None
    vehicle = get_vehicle(session, fleet_number) if fleet_number is not None else None
    channel = _channel_for(device, vehicle, channel)
    if channel is AllocationChannel.COURIER and not wave:
        raise InvalidInput("a courier allocation belongs to a refresh wave (its courier cap applies): name the wave")
    wave_row = get_wave(session, wave) if wave else None
    _refuse_if_open_allocation(session, device)
    if vehicle is not None:
        refuse_other_vehicle(session, device, vehicle.fleet_number)
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
    change_status(allocation, AllocationStep.ALLOCATE)
    session.add(allocation)
    session.flush()
    evidence = _allocation_evidence(allocation, officer, vehicle, wave_row.name if wave_row else None)
    [entry] = change_state(session, [TransitionRequest(device.id or 0, Event.ALLOCATE, evidence=evidence)], actor=actor)
    allocation.allocated_seq = entry.seq
    return saved(session, allocation, [entry])


def _channel_for(device: Device, vehicle: Vehicle | None, channel: AllocationChannel | None) -> AllocationChannel:
    if channel is not None and channel not in ALLOCATION_CHANNELS:
        raise InvalidInput(f"channel '{channel}' is recorded only by the import of devices already in the field")
    if vehicle is not None:
        channel = channel or AllocationChannel.VEHICLE
        if channel is not AllocationChannel.VEHICLE:
            raise InvalidInput("a vehicle allocation goes through the installer (channel 'vehicle')")
        if device.kind != DeviceKind.VEHICLE_TABLET:
            raise InvalidInput(f"device {device.serial} is a {device.kind}, not a vehicle tablet")
        if vehicle.decommissioned_at is not None:
            raise Conflict(f"vehicle {vehicle.fleet_number} was decommissioned at {vehicle.decommissioned_at}")
        return channel
    channel = channel or AllocationChannel.IN_PERSON
    if channel is AllocationChannel.VEHICLE:
        raise InvalidInput("an officer's device is issued in person or by courier")
    if device.kind == DeviceKind.VEHICLE_TABLET:
        raise InvalidInput(f"device {device.serial} is a vehicle tablet: allocate it to a vehicle")
    return channel


def _allocation_evidence(
    allocation: Allocation, officer: Officer | None, vehicle: Vehicle | None, wave: str | None
) -> dict[str, object]:
    evidence: dict[str, object] = {"allocation_id": allocation.id, "channel": allocation.channel}
    if officer:
        evidence |= {"officer": officer.staff_number, "team": officer.team, "at_profile": officer.at_profile}
    if vehicle:
        evidence["vehicle"] = vehicle.fleet_number
    if wave:
        evidence["wave"] = wave
    return evidence


def release(session: Session, *, allocation_id: int, reason: str, actor: str) -> Outcome[Allocation]:
    """Give an allocated device back to stock (``release`` edge).

    :raises NotFound: no such allocation.
    :raises Conflict: the allocation is not ``allocated``.
    :raises InvalidInput: no reason.
    """
    allocation = get_allocation(session, allocation_id)
    require(
        allocation,
        AllocationStep.RELEASE,
        f"allocation {allocation_id} is {allocation.status}, not allocated: it cannot be released",
    )
    if not (reason or "").strip():
        raise InvalidInput("releasing an allocation needs a reason")
    entries = change_state(
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
    change_status(allocation, AllocationStep.RELEASE)
    return saved(session, allocation, entries)


def _refuse_if_open_allocation(session: Session, device: Device) -> None:
    existing = session.exec(
        select(Allocation).where(Allocation.device_id == device.id, col(Allocation.status).in_(OPEN_ALLOCATION))
    ).first()
    if existing is not None:
        raise Conflict(f"device {device.serial} already has open allocation {existing.id} ({existing.status})")


def mark_returned(session: Session, device_id: int) -> None:
    """The device came back: its issued or travelling allocation (if any) is over."""
    for allocation in session.exec(
        select(Allocation).where(Allocation.device_id == device_id, col(Allocation.status).in_(WITH_HOLDER_OR_COURIER))
    ).all():
        change_status(allocation, AllocationStep.RETURN)
        session.add(allocation)
