"""Reads for the technicians' pages: destruction requests waiting for a witness, and the devices
held or failed in the factory with the action to take (re-exported by views.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from factory.custody.errors import RecordNotFound
from factory.custody.lookups import get_document
from factory.custody.models import DestructionRecord, EvidenceDocument, Transfer, Vehicle
from factory.kernel.lifecycle.states import State
from factory.kernel.models.device import Device


@dataclass(frozen=True)
class PendingDestruction:
    id: int
    serial: str
    method: str
    reason: str
    requested_by: str
    requested_at: str


@dataclass(frozen=True)
class HeldDevice:
    serial: str
    kind: str
    state: str
    since: str
    action: str  # what a technician does next, in words
    can_triage: bool  # released here with a finding
    can_destroy: bool  # a destruction may be requested


# The action for each state a device can be stuck in, and whether triage / destruction apply.
_HELD: dict[str, tuple[str, bool, bool]] = {
    State.QUARANTINED.value: (
        "Inspect it; release it to intake with what you found, or request destruction.",
        True,
        True,
    ),
    State.SANITISE_FAILED.value: (
        "Put it back on a bench for a new erase round; if it fails again, request destruction.",
        False,
        True,
    ),
    State.PROVISION_FAILED.value: (
        "Put it back on a bench: the line provisions it again (or re-erases it).",
        False,
        False,
    ),
}


def pending_destructions(session: Session) -> list[PendingDestruction]:
    """Destruction requests no one has witnessed yet, oldest first."""
    rows = session.exec(
        select(DestructionRecord, Device)
        .join(Device, col(Device.id) == DestructionRecord.device_id)
        .where(col(DestructionRecord.destroyed_seq).is_(None))
        .order_by(col(DestructionRecord.id))
    ).all()
    return [
        PendingDestruction(r.id or 0, d.serial, r.method, r.reason, r.requested_by, r.requested_at) for r, d in rows
    ]


def held_devices(session: Session) -> list[HeldDevice]:
    """Devices quarantined or failed in the factory, longest waiting first, with the action to take."""
    rows = session.exec(
        select(Device).where(col(Device.state).in_(list(_HELD))).order_by(col(Device.updated_at), col(Device.serial))
    ).all()
    out = []
    for d in rows:
        action, can_triage, can_destroy = _HELD[d.state or ""]
        out.append(HeldDevice(d.serial, d.kind, d.state or "", d.updated_at, action, can_triage, can_destroy))
    return out


def asset_label(session: Session, serial: str, site: str) -> tuple[str, bytes]:
    """The device's serial (as stored) and its asset label PDF.

    :raises NotFound: no such device.
    """
    from factory.custody.labels import render_label  # reportlab loads only when a label is printed
    from factory.intake.views import get_device

    device = get_device(session, serial)
    return device.serial, render_label(device, site)


def transfer_note(session: Session, transfer_id: int) -> EvidenceDocument:
    """The PDF transfer note of a redistribution.

    :raises NotFound: no such transfer.
    """
    transfer = session.get(Transfer, transfer_id)
    if transfer is None or transfer.note_document_id is None:
        raise RecordNotFound(f"no transfer {transfer_id}")
    return get_document(session, transfer.note_document_id)


@dataclass(frozen=True)
class VehicleView:
    fleet_number: str
    registration: str
    description: str
    tablets: list[str]  # serials installed in it now
    in_service: bool


def vehicles_view(session: Session) -> list[VehicleView]:
    """Every vehicle with the tablets installed in it now, in service first."""
    from factory.custody.people import vehicle_label

    out = []
    for v in session.exec(select(Vehicle).order_by(col(Vehicle.fleet_number))).all():
        label = vehicle_label(v)
        tablets = session.exec(
            select(Device.serial)
            .where(Device.custodian == label, Device.state == State.INSTALLED.value)
            .order_by(col(Device.serial))
        ).all()
        out.append(
            VehicleView(v.fleet_number, v.registration, v.description, list(tablets), v.decommissioned_at is None)
        )
    return sorted(out, key=lambda v: not v.in_service)


def vehicle_allocation_for(session: Session, serial: str) -> int:
    """The id of the device's allocation to a vehicle that waits for installation.

    :raises NotFound: no such device, or no such allocation.
    """
    from factory.custody.vehicle_swap import open_vehicle_allocation
    from factory.intake.views import get_device

    device = get_device(session, serial)
    allocation = open_vehicle_allocation(session, device)
    if allocation is None:
        raise RecordNotFound(f"device {device.serial} is not allocated to a vehicle: allocate it first")
    return allocation.id or 0
