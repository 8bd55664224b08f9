"""Who is in the slot: a known device (and in which part of its life), new stock, or unknown.

A dock reports the serial of what it sees: the device's own serial or, more often, that of the
disk inside. Both are looked up; a disk serial recorded on two devices is ambiguous and is
treated as unknown rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import bindparam, or_
from sqlmodel import Session, col, select

from factory.kernel.db.shared_statements import warmed
from factory.kernel.lifecycle.states import State
from factory.kernel.models.device import Device, StorageMedium


class Identity(StrEnum):
    RETURNED = "returned"  # held someone's data: issued/installed/returned, or booked in used
    NEW_STOCK = "new_stock"  # booked in from the supplier, never held user data
    KNOWN = "known"  # in custody in some other state (sanitised, failed, ready, ...)
    UNKNOWN = "unknown"  # no record, or the serial is ambiguous


RETURNED_STATES: frozenset[str] = frozenset({State.ISSUED, State.INSTALLED, State.RETURNED})


@dataclass(frozen=True)
class Identification:
    identity: Identity
    device: Device | None
    detail: str


# One query for both lookups: the device with this serial, and the devices with a disk of it. Built
# once (every attachment identifies its occupant): a fresh statement costs more CPU than its round trip.
_BY_SERIAL = warmed(
    select(Device).where(
        or_(
            Device.serial == bindparam("port_serial"),
            col(Device.id).in_(select(StorageMedium.device_id).where(StorageMedium.serial == bindparam("port_serial"))),
        )
    )
)


def identify(session: Session, serial: str | None) -> Identification:
    if not serial:
        return Identification(Identity.UNKNOWN, None, "the port reported no serial number")
    found = session.exec(_BY_SERIAL, params={"port_serial": serial}).all()  # type: ignore[call-overload]
    device = next((d for d in found if d.serial == serial), None)
    if device is None:
        if len(found) > 1:
            return Identification(Identity.UNKNOWN, None, f"disk serial {serial} is recorded on {len(found)} devices")
        device = found[0] if found else None
    if device is None:
        return Identification(Identity.UNKNOWN, None, f"serial {serial} is not in the inventory")
    state = device.state
    if state in RETURNED_STATES or (state == State.RECEIVED and device.user_data_since_seq is not None):
        return Identification(Identity.RETURNED, device, f"{device.serial} in custody as {state}")
    if state == State.RECEIVED:
        return Identification(Identity.NEW_STOCK, device, f"{device.serial} booked in as new stock")
    return Identification(Identity.KNOWN, device, f"{device.serial} in custody as {state}")
