"""Reads of intake: devices with their media, certificates and custody history; endpoints and images.

Two ways to read the device view: ``device_view`` through a session (the API, pages and services),
and ``device_view_rows`` through a driver-level reader (factory/kernel/db/readonly.py) with four
fixed SELECTs, for ``factory device show``, which would otherwise spend most of its start-up
importing the ORM. Both build the view from the same field lists, in the same order, and a test
holds them equal on both databases. So that the second path loads no SQLAlchemy or SQLModel, this
module imports them (and the table models) inside the functions that query through a session.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from factory.intake.errors import InvalidInput, NoEndpoint, UnknownDevice
from factory.kernel.db.readonly import Reader

if TYPE_CHECKING:
    from sqlmodel import Session

    from factory.intake.models import DeviceImage, ServiceEndpoint
    from factory.kernel.models.custody_entry import CustodyEntry
    from factory.kernel.models.device import Device

FACTORY_CUSTODIAN = "factory"  # the custodian of every device the factory holds
MAX_SERIAL = 128

# The columns each view shows, in the order shown.
DEVICE_FIELDS = ("serial", "asset_tag", "make", "model", "kind", "role", "state", "custodian", "location")
MEDIUM_FIELDS = ("serial", "model", "media_type", "capacity_bytes")
CERTIFICATE_FIELDS = (
    "id", "medium_serial", "level", "method", "destination", "issued_at", "digest_sha256", "erase_round_seq",
)  # fmt: skip
ENTRY_FIELDS = (
    "seq", "event", "from_state", "to_state", "actor", "from_custodian", "to_custodian", "location",
    "occurred_at", "evidence", "prev_hash", "entry_hash",
)  # fmt: skip


def clean_serial(serial: str, what: str = "serial") -> str:
    """A serial as stored: trimmed, non-empty, printable, at most ``MAX_SERIAL`` characters.

    :raises InvalidInput: empty, too long or unprintable.
    """
    value = (serial or "").strip()
    if not value:
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > MAX_SERIAL or not value.isprintable():
        raise InvalidInput(f"{what} '{value[:40]}' is too long or has unprintable characters")
    return value


def decoded_entry(fields: dict[str, Any]) -> dict[str, Any]:
    """A custody entry's fields with its evidence decoded ("evidence" keeps its place)."""
    return {**fields, "evidence": orjson.loads(fields["evidence"])}


def _select(columns: Sequence[str], rest: str) -> str:
    return f"SELECT {', '.join(columns)} {rest}"


def device_view_rows(reader: Reader, serial: str) -> dict[str, Any]:
    """``device_view`` of the device with this serial, read with four fixed SELECTs.

    :raises UnknownDevice: no device has this serial. :raises InvalidInput: a malformed serial.
    """
    serial = clean_serial(serial)
    device_columns = ("id", "user_data_since_seq", *DEVICE_FIELDS)
    found = reader.rows(_select(device_columns, "FROM device WHERE serial = ?"), [serial])
    if not found:
        raise UnknownDevice(f"no device with serial {serial}")
    device_id, since_seq, *device = found[0]
    media = reader.rows(_select(MEDIUM_FIELDS, "FROM storage_medium WHERE device_id = ? ORDER BY id"), [device_id])
    certs = reader.rows(
        _select(CERTIFICATE_FIELDS, "FROM certificate WHERE device_id = ? ORDER BY issued_at, id"), [device_id]
    )
    entries = reader.rows(_select(ENTRY_FIELDS, "FROM custody_entry WHERE device_id = ? ORDER BY seq"), [device_id])
    return {
        **dict(zip(DEVICE_FIELDS, device, strict=True)),
        "held_user_data": since_seq is not None,
        "media": [dict(zip(MEDIUM_FIELDS, m, strict=True)) for m in media],
        "certificates": [dict(zip(CERTIFICATE_FIELDS, c, strict=True)) for c in certs],
        "history": [decoded_entry(dict(zip(ENTRY_FIELDS, e, strict=True))) for e in entries],
    }


def fields_of(row: object, names: Sequence[str]) -> dict[str, Any]:
    """``{name: row.name}`` for each name, in order."""
    return {name: getattr(row, name) for name in names}


def get_device(session: Session, serial: str) -> Device:
    """:raises UnknownDevice: no device has this serial. :raises InvalidInput: a malformed serial."""
    from sqlmodel import select

    from factory.kernel.models.device import Device

    serial = clean_serial(serial)
    device = session.exec(select(Device).where(Device.serial == serial)).first()
    if device is None:
        raise UnknownDevice(f"no device with serial {serial}")
    return device


def device_view(session: Session, device: Device) -> dict[str, Any]:
    """The device with its media, certificates and full custody history, as plain data."""
    from sqlmodel import col, select

    from factory.kernel.models.certificate import Certificate
    from factory.kernel.models.custody_entry import CustodyEntry
    from factory.kernel.models.device import StorageMedium

    # Ordered as device_view_rows orders them.
    media = session.exec(
        select(StorageMedium).where(StorageMedium.device_id == device.id).order_by(col(StorageMedium.id))
    ).all()
    entries = session.exec(
        select(CustodyEntry).where(CustodyEntry.device_id == device.id).order_by(CustodyEntry.seq)  # type: ignore[arg-type]
    ).all()
    certs = session.exec(
        select(Certificate)
        .where(Certificate.device_id == device.id)
        .order_by(col(Certificate.issued_at), col(Certificate.id))
    ).all()
    return {
        **fields_of(device, DEVICE_FIELDS),
        "held_user_data": device.user_data_since_seq is not None,
        "media": [fields_of(m, MEDIUM_FIELDS) for m in media],
        "certificates": [fields_of(c, CERTIFICATE_FIELDS) for c in certs],
        "history": [entry_view(e) for e in entries],
    }


def entry_view(e: CustodyEntry) -> dict[str, Any]:
    """One custody entry as plain data (evidence decoded)."""
    return decoded_entry(fields_of(e, ENTRY_FIELDS))


def find_endpoint(session: Session, device: Device) -> ServiceEndpoint | None:
    from sqlmodel import select

    from factory.intake.models import ServiceEndpoint

    return session.exec(select(ServiceEndpoint).where(ServiceEndpoint.device_id == device.id)).first()


def get_endpoint(session: Session, serial: str) -> ServiceEndpoint:
    """How to reach the device in its service environment.

    :raises UnknownDevice: no such device. :raises NoEndpoint: none recorded.
    """
    endpoint = find_endpoint(session, get_device(session, serial))
    if endpoint is None:
        raise NoEndpoint(f"device {serial} has no service-environment endpoint recorded")
    return endpoint


def endpoint_bound_to_a_boot(session: Session, serial: str) -> bool:
    """True when the device's endpoint was pinned by a network enrolment: its host key is that
    boot's, so a later boot must enrol again before anything connects to it."""
    from sqlmodel import col, select

    from factory.intake.enrolment import ENROLMENT_ACTOR
    from factory.intake.models import ServiceEndpoint
    from factory.kernel.models.device import Device

    recorded_by = session.exec(
        select(ServiceEndpoint.recorded_by)
        .join(Device, col(Device.id) == ServiceEndpoint.device_id)
        .where(Device.serial == serial)
    ).first()
    return recorded_by == ENROLMENT_ACTOR


def serials_with_mac(session: Session, mac: str) -> list[str]:
    """Serials of the devices whose endpoint records ``mac`` (normalised); more than one is ambiguous."""
    from sqlmodel import col, select

    from factory.intake.models import ServiceEndpoint
    from factory.kernel.models.device import Device

    rows = session.exec(
        select(Device.serial)
        .join(ServiceEndpoint, col(ServiceEndpoint.device_id) == Device.id)
        .where(ServiceEndpoint.mac == mac)
        .order_by(col(Device.serial))
    )
    return list(rows.all())


def media_elsewhere(session: Session, device: Device) -> dict[str, list[str]]:
    """For each of the device's media whose serial is also recorded on another device, those
    devices' serials: a warning for the technician (the same disk cannot be in two devices, so
    one record is wrong, or the disk moved and its certificates name the other device)."""
    from sqlmodel import col, select

    from factory.kernel.models.device import Device, StorageMedium

    mine = select(StorageMedium.serial).where(StorageMedium.device_id == device.id)
    rows = session.exec(
        select(StorageMedium.serial, Device.serial)
        .join(Device, col(Device.id) == StorageMedium.device_id)
        .where(col(StorageMedium.serial).in_(mine), StorageMedium.device_id != device.id)
        .order_by(col(StorageMedium.serial), col(Device.serial))
    ).all()
    out: dict[str, list[str]] = {}
    for medium, other in rows:
        out.setdefault(medium, []).append(other)
    return out


def images_of(session: Session, serial: str) -> list[DeviceImage]:
    """Images deployed onto the device, oldest first. :raises UnknownDevice: no such device."""
    from sqlmodel import select

    from factory.intake.models import DeviceImage

    device = get_device(session, serial)
    return list(
        session.exec(select(DeviceImage).where(DeviceImage.device_id == device.id).order_by(DeviceImage.id))  # type: ignore[arg-type]
    )
