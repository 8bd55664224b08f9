"""Reads for the exchange-exception page: the device's open allocation an exception may be asked
for (handed to its officer in person or by courier, not yet handed over), and the exceptions
still to approve or to use, with the device and officer each one is for."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from factory.custody.issue import EXCHANGED_CHANNELS
from factory.custody.models import Allocation, Approval, Officer
from factory.custody.statuses import AllocationStatus
from factory.intake.views import get_device
from factory.kernel.errors import NotFound
from factory.kernel.models.device import Device

# Not yet with the officer: an exception to the exchange rule can still be asked for and used.
_OPEN = (AllocationStatus.ALLOCATED.value, AllocationStatus.IN_TRANSIT.value)


@dataclass(frozen=True)
class ExceptionRow:
    """An exception to the exchange rule not used yet, as the page lists it."""

    id: int
    serial: str
    staff_number: str
    officer_name: str
    channel: str
    reason: str
    requested_by: str
    requested_at: str
    approved_by: str | None
    approved_at: str | None


def exception_allocation(session: Session, serial: str) -> Allocation:
    """The device's open allocation to an officer, in person or by courier, that an exception may be for.

    :raises NotFound: no such device, or no such allocation (the reason names the device's state).
    """
    device = get_device(session, serial)
    allocation = session.exec(
        select(Allocation).where(
            Allocation.device_id == device.id,
            col(Allocation.status).in_(_OPEN),
            col(Allocation.channel).in_(EXCHANGED_CHANNELS),
        )
    ).first()
    if allocation is None:
        raise NotFound(
            f"device {device.serial} is not allocated to an officer for issue or courier delivery "
            f"(state '{device.state}'): allocate it first"
        )
    return allocation


def open_exceptions(session: Session) -> list[ExceptionRow]:
    """Exceptions not used yet whose allocation is still open, newest first."""
    rows = session.exec(
        select(Approval, Allocation, Device, Officer)
        .join(Allocation, col(Allocation.id) == Approval.allocation_id)
        .join(Device, col(Device.id) == Allocation.device_id)
        .join(Officer, col(Officer.id) == Allocation.officer_id)
        .where(col(Approval.used_seq).is_(None), col(Allocation.status).in_(_OPEN))
        .order_by(col(Approval.id).desc())
    ).all()
    return [
        ExceptionRow(
            id=a.id or 0, serial=d.serial, staff_number=o.staff_number, officer_name=o.name, channel=al.channel,
            reason=a.reason, requested_by=a.requested_by, requested_at=a.requested_at, approved_by=a.approved_by,
            approved_at=a.approved_at,
        )
        for a, al, d, o in rows
    ]  # fmt: skip
