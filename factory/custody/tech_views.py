"""Reads for the technicians' pages: destruction requests waiting for a witness, and the devices
held or failed in the factory with the action to take (re-exported by views.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from factory.custody.errors import RecordNotFound
from factory.custody.lookups import get_document
from factory.custody.models import DestructionRecord, EvidenceDocument, Transfer
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
