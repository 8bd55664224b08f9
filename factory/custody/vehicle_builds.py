"""Building a new in-vehicle tablet for its vehicle: the earmark.

A vehicle tablet is provisioned with its vehicle's fleet number, but a tablet is allocated only
once it is built (``allocate`` takes a ready device). So a technician earmarks a new tablet for the
vehicle it will be fitted in before its build ("build for vehicle FL-204"); the line provisions it
for that vehicle, and the signed ``start_provision`` entry names the vehicle. Allocating it later
to another vehicle is refused: what it was built for is read from that entry, not from the earmark.

An earmark is not a custody step (the device stays where it is and no entry is appended); it may be
changed or removed until the tablet is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from sqlmodel import Session, col, select

from factory.custody.errors import RecordNotFound
from factory.custody.lookups import get_vehicle
from factory.custody.models import Allocation, Vehicle, VehicleBuild
from factory.custody.statuses import OPEN_ALLOCATION, WITH_HOLDER_OR_COURIER
from factory.intake.views import get_device
from factory.kernel.clock import utc_now
from factory.kernel.errors import Conflict, GuardRefused, InvalidInput
from factory.kernel.lifecycle.states import TERMINAL, Event, State
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device, DeviceKind

# Allocation statuses under which a tablet is taken: its vehicle is the allocation's from then on.
TAKEN = tuple(sorted({*OPEN_ALLOCATION, *WITH_HOLDER_OR_COURIER}))
# A device that has left the fleet or is on its way out is never built again.
_LEAVING = frozenset({*TERMINAL, State.AWAITING_DISPOSAL, State.WITH_RECYCLER})


@dataclass(frozen=True)
class Earmark:
    """A tablet earmarked for a vehicle, as the Vehicles page lists it."""

    serial: str
    fleet_number: str
    state: str  # the tablet's lifecycle state: received (new), sanitised, ready once built, ...
    created_by: str
    created_at: str


def build_for_vehicle(session: Session, *, serial: str, fleet_number: str, actor: str) -> Earmark:
    """Earmark a vehicle tablet for the in-service vehicle it will be fitted in (or move its earmark there).

    :raises NotFound: no such device or vehicle.
    :raises InvalidInput: the device is not a vehicle tablet.
    :raises Conflict: the vehicle is decommissioned, or the tablet is allocated or has left the fleet.
    """
    device, vehicle = get_device(session, serial), get_vehicle(session, fleet_number)
    if device.kind != DeviceKind.VEHICLE_TABLET:
        raise InvalidInput(
            f"device {device.serial} is a {device.kind}, not a vehicle tablet: only those are built for a vehicle"
        )
    if vehicle.decommissioned_at is not None:
        raise Conflict(f"vehicle {vehicle.fleet_number} was decommissioned at {vehicle.decommissioned_at}")
    if device.state in _LEAVING:
        raise Conflict(f"device {device.serial} is {device.state}: it has left the fleet")
    _refuse_if_taken(session, device, "earmarked")
    build = _earmark_row(session, device.id or 0)
    if build is None:
        build = VehicleBuild(device_id=device.id or 0, vehicle_id=vehicle.id or 0, created_by=actor, created_at="")
    build.vehicle_id, build.created_by, build.created_at = vehicle.id or 0, actor, utc_now()
    session.add(build)
    session.flush()
    return Earmark(device.serial, vehicle.fleet_number, device.state or "", actor, build.created_at)


def remove_build(session: Session, *, serial: str, fleet_number: str | None = None) -> str:
    """Remove a tablet's earmark (the one for ``fleet_number``, if given); the fleet number it named.

    :raises NotFound: no such device, or it is not earmarked (for that vehicle).
    :raises Conflict: the tablet is allocated: its earmark stands for what it was allocated as.
    """
    device = get_device(session, serial)
    build = _earmark_row(session, device.id or 0)
    earmarked = _fleet_of(session, build)
    if build is None or earmarked is None or (fleet_number is not None and earmarked != fleet_number.strip()):
        wanted = f" for vehicle {fleet_number.strip()}" if fleet_number is not None else " for a vehicle"
        raise RecordNotFound(f"tablet {device.serial} is not earmarked{wanted}")
    _refuse_if_taken(session, device, "un-earmarked")
    session.delete(build)
    session.flush()
    return earmarked


def earmarked_fleet_number(session: Session, device_id: int) -> str | None:
    """The fleet number of the in-service vehicle the device is earmarked for, else None."""
    return session.exec(
        select(Vehicle.fleet_number)
        .join(VehicleBuild, col(VehicleBuild.vehicle_id) == col(Vehicle.id))
        .where(VehicleBuild.device_id == device_id, col(Vehicle.decommissioned_at).is_(None))
    ).first()


def built_for(session: Session, device: Device) -> tuple[str, str] | None:
    """The vehicle the device was built for, and how that is known: the fleet number its latest
    ``start_provision`` entry names ("was built for"), else its earmark ("is earmarked for")."""
    started = session.exec(
        select(CustodyEntry.evidence)
        .where(CustodyEntry.device_id == device.id, CustodyEntry.event == Event.START_PROVISION.value)
        .order_by(col(CustodyEntry.seq).desc())
    ).first()
    vehicle = orjson.loads(started).get("vehicle") if started else None
    if vehicle:
        return str(vehicle), "was built for"
    earmark = _fleet_of(session, _earmark_row(session, device.id or 0))
    return (earmark, "is earmarked for") if earmark else None


def refuse_other_vehicle(session: Session, device: Device, fleet_number: str) -> None:
    """Refuse to allocate a ready vehicle tablet to a vehicle other than the one it was built for.

    :raises GuardRefused: it was built (or is earmarked) for another vehicle, named with what to do.
    """
    if device.state != State.READY.value:
        return  # the allocate edge itself refuses it, with the kernel's reason
    known = built_for(session, device)
    if known is not None and known[0] != fleet_number:
        vehicle, how = known
        raise GuardRefused(
            f"tablet {device.serial} {how} vehicle {vehicle}: allocate it to {vehicle}, "
            f"or earmark it for {fleet_number} and rebuild it"
        )


def earmarks(session: Session) -> dict[str, list[Earmark]]:
    """Tablets earmarked and not yet allocated, per fleet number, oldest earmark first."""
    rows = session.exec(
        select(VehicleBuild, Vehicle.fleet_number, Device)
        .join(Vehicle, col(Vehicle.id) == VehicleBuild.vehicle_id)
        .join(Device, col(Device.id) == VehicleBuild.device_id)
        .order_by(col(VehicleBuild.created_at), col(Device.serial))
    ).all()
    taken = set(session.exec(select(Allocation.device_id).where(col(Allocation.status).in_(TAKEN))).all())
    out: dict[str, list[Earmark]] = {}
    for build, fleet, device in rows:
        if build.device_id not in taken:
            mark = Earmark(device.serial, fleet, device.state or "", build.created_by, build.created_at)
            out.setdefault(fleet, []).append(mark)
    return out


def _earmark_row(session: Session, device_id: int) -> VehicleBuild | None:
    return session.exec(select(VehicleBuild).where(VehicleBuild.device_id == device_id)).first()


def _fleet_of(session: Session, build: VehicleBuild | None) -> str | None:
    vehicle = session.get(Vehicle, build.vehicle_id) if build is not None else None
    return vehicle.fleet_number if vehicle is not None else None


def _refuse_if_taken(session: Session, device: Device, what: str) -> None:
    allocation = session.exec(
        select(Allocation).where(Allocation.device_id == device.id, col(Allocation.status).in_(TAKEN))
    ).first()
    if allocation is not None:
        raise Conflict(
            f"tablet {device.serial} is allocated (allocation {allocation.id}, {allocation.status}): "
            f"it can be {what} only before it is allocated"
        )
