"""Booking devices in and reading them back with their full custody history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlmodel import Session, select

from factory.intake.media import MediaSpec
from factory.kernel.clock import utc_now
from factory.kernel.errors import Conflict, InvalidInput, NotFound
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device, DeviceKind, StorageMedium

FACTORY_CUSTODIAN = "factory"
MAX_SERIAL = 128


def _clean_serial(serial: str, what: str = "serial") -> str:
    value = (serial or "").strip()
    if not value:
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > MAX_SERIAL or not value.isprintable():
        raise InvalidInput(f"{what} '{value[:40]}' is too long or has unprintable characters")
    return value


def receive_device(
    session: Session,
    *,
    serial: str,
    kind: str,
    actor: str,
    make: str = "",
    model: str = "",
    asset_tag: str | None = None,
    role: str | None = None,
    from_custodian: str = "",
    location: str = "",
    media: Sequence[MediaSpec] = (),
    new_stock: bool = False,
) -> Device:
    """Book a device into the factory's custody: one device row, its media, one ledger entry."""
    serial = _clean_serial(serial)
    kinds = [k.value for k in DeviceKind]
    if kind not in kinds:
        raise InvalidInput(f"kind '{kind}' is not one of: {', '.join(kinds)}")
    asset_tag = asset_tag.strip() if asset_tag else None
    existing = session.exec(select(Device).where(Device.serial == serial)).first()
    if existing is not None:
        raise Conflict(f"device {serial} is already known (state '{existing.state}'); it cannot be received again")
    if asset_tag and session.exec(select(Device).where(Device.asset_tag == asset_tag)).first():
        raise Conflict(f"asset tag {asset_tag} already belongs to another device")
    media_serials = [_clean_serial(m.serial, "media serial") for m in media]
    if len(set(media_serials)) != len(media_serials):
        raise InvalidInput(f"device {serial}: the same media serial is listed twice")
    now = utc_now()
    device = Device(
        serial=serial,
        asset_tag=asset_tag,
        make=make.strip(),
        model=model.strip(),
        kind=kind,
        role=role,
        custodian=from_custodian.strip(),
        location=location.strip(),
        created_at=now,
        updated_at=now,
    )
    session.add(device)
    session.flush()
    for spec in media:
        session.add(
            StorageMedium(
                device_id=device.id or 0,
                serial=spec.serial.strip(),
                model=spec.model,
                media_type=spec.media_type,
                capacity_bytes=spec.capacity_bytes,
            )
        )
    change_state(
        session,
        [
            TransitionRequest(
                device_id=device.id or 0,
                event=Event.RECEIVE,
                to_custodian=FACTORY_CUSTODIAN,
                location=location.strip(),
                evidence={"new_stock": new_stock, "media": media_serials},
                new_stock=new_stock,
            )
        ],
        actor=actor,
    )
    return device


def get_device(session: Session, serial: str) -> Device:
    serial = _clean_serial(serial)
    device = session.exec(select(Device).where(Device.serial == serial)).first()
    if device is None:
        raise NotFound(f"no device with serial {serial}")
    return device


def device_view(session: Session, device: Device) -> dict[str, Any]:
    media = session.exec(select(StorageMedium).where(StorageMedium.device_id == device.id)).all()
    entries = session.exec(
        select(CustodyEntry).where(CustodyEntry.device_id == device.id).order_by(CustodyEntry.seq)  # type: ignore[arg-type]
    ).all()
    certs = session.exec(select(Certificate).where(Certificate.device_id == device.id)).all()
    return {
        "serial": device.serial,
        "asset_tag": device.asset_tag,
        "make": device.make,
        "model": device.model,
        "kind": device.kind,
        "role": device.role,
        "state": device.state,
        "custodian": device.custodian,
        "location": device.location,
        "held_user_data": device.user_data_since_seq is not None,
        "media": [
            {
                "serial": m.serial,
                "model": m.model,
                "media_type": m.media_type,
                "capacity_bytes": m.capacity_bytes,
            }
            for m in media
        ],
        "certificates": [
            {
                "id": c.id,
                "medium_serial": c.medium_serial,
                "level": c.level,
                "method": c.method,
                "destination": c.destination,
                "issued_at": c.issued_at,
                "digest_sha256": c.digest_sha256,
                "erase_round_seq": c.erase_round_seq,
            }
            for c in certs
        ],
        "history": [entry_view(e) for e in entries],
    }


def entry_view(e: CustodyEntry) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "event": e.event,
        "from_state": e.from_state,
        "to_state": e.to_state,
        "actor": e.actor,
        "from_custodian": e.from_custodian,
        "to_custodian": e.to_custodian,
        "location": e.location,
        "occurred_at": e.occurred_at,
        "evidence": orjson.loads(e.evidence),
        "prev_hash": e.prev_hash,
        "entry_hash": e.entry_hash,
    }
