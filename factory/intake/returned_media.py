"""Media of a device recorded as already in the field without them (``enrol_in_field``, bulk
import): recorded when it comes back, from the disks its network boot finds (``enrolment.py``) or
as a technician reads them off the device (``factory device record-media``), before its erase.

Only such a device, with no media recorded yet, takes them this way: every other device keeps the
media it was received with, and a disk found that is not recorded still stops its job. The
``record_media`` entry names each medium, so the chain shows what the erase round had to cover.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from factory.intake.errors import InvalidInput
from factory.intake.media import MediaSpec, medium_row
from factory.intake.views import clean_serial, media_elsewhere
from factory.kernel.errors import Conflict
from factory.kernel.lifecycle.states import Event, State
from factory.kernel.lifecycle.table import find_edge
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device, StorageMedium


def awaits_media(session: Session, device: Device) -> bool:
    """The device was recorded as already in the field without its media, none recorded since,
    and it is where media may be recorded (issued, or back and not yet erased)."""
    if device.state is None or find_edge(Event.RECORD_MEDIA, State(device.state)) is None:
        return False
    if session.exec(select(StorageMedium.id).where(StorageMedium.device_id == device.id)).first() is not None:
        return False
    first = session.exec(
        select(CustodyEntry.event).where(CustodyEntry.device_id == device.id).order_by(col(CustodyEntry.seq))
    ).first()
    return first == Event.ENROL_IN_FIELD.value


def record_media(
    session: Session, device: Device, media: Sequence[MediaSpec], *, actor: str, evidence: dict[str, object]
) -> CustodyEntry:
    """Record ``media`` inside a device that awaits them, with one ``record_media`` entry.

    :raises Conflict: the device has media recorded already, or was not imported without them.
    :raises InvalidInput: no media, or the same medium serial twice.
    """
    if not awaits_media(session, device):
        raise Conflict(
            f"device {device.serial} is not awaiting its media (only a device imported as already in the field "
            "without them, and not yet erased, has them recorded this way)"
        )
    serials = [clean_serial(m.serial, "media serial") for m in media]
    if not serials or len(set(serials)) != len(serials):
        raise InvalidInput(f"device {device.serial}: give each medium found once")
    for spec in media:
        session.add(medium_row(device.id or 0, spec))
    session.flush()
    found: dict[str, object] = {"media": serials, **evidence}
    if elsewhere := media_elsewhere(session, device):  # as at receipt: the warning is kept in the entry
        found["media_also_recorded_on"] = elsewhere
    request = TransitionRequest(device.id or 0, Event.RECORD_MEDIA, evidence=found)
    [entry] = change_state(session, [request], actor=actor)
    return entry
