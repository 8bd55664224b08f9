"""Service-environment records: pinned SSH endpoints and deployed images, per device."""

from __future__ import annotations

from sqlmodel import Session, col, select

from factory.intake.models import DeviceImage, ServiceEndpoint
from factory.intake.service import get_device
from factory.kernel.clock import utc_now
from factory.kernel.errors import Conflict, InvalidInput, NotFound
from factory.kernel.models.device import Device
from hardware_drivers.snmp import normalise_mac
from hardware_drivers.ssh import InvalidPin, PinnedHostKey
from imaging.deploy import DeployResult


def register_endpoint(
    session: Session,
    serial: str,
    *,
    address: str,
    port: int,
    username: str,
    host_key: str,
    actor: str,
    mac: str | None = None,
) -> ServiceEndpoint:
    """Record how to reach a device; its host key is pinned the first time and never re-learned.

    ``mac`` (any common notation) is the NIC the device is cabled to a bench switch with: the line
    identifies the laptop by it. Omitted, a MAC recorded earlier is kept.
    """
    try:
        mac = normalise_mac(mac) if mac is not None else None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    try:
        pin = PinnedHostKey.parse(host_key.strip())
    except InvalidPin as exc:
        raise InvalidInput(str(exc)) from exc
    if not address.strip():
        raise InvalidInput("address must not be empty")
    if not 0 < port < 65536:
        raise InvalidInput(f"port {port} is out of range")
    device = get_device(session, serial)
    existing = session.exec(select(ServiceEndpoint).where(ServiceEndpoint.device_id == device.id)).first()
    if existing is not None and existing.host_key_fingerprint != pin.fingerprint:
        raise Conflict(
            f"device {serial}: offered host key {pin.fingerprint} differs from the key pinned at "
            f"{existing.recorded_at} ({existing.host_key_fingerprint}); refusing to re-pin"
        )
    endpoint = existing or ServiceEndpoint(
        device_id=device.id or 0,
        address=address,
        host_key=f"{pin.key_type} {host_key.split()[1]}",
        host_key_fingerprint=pin.fingerprint,
        recorded_at=utc_now(),
        recorded_by=actor,
    )
    # The address and port may change between boots (DHCP); the key may not.
    endpoint.address, endpoint.port, endpoint.username = address.strip(), port, username
    if mac is not None:
        endpoint.mac = mac
    session.add(endpoint)
    session.flush()
    return endpoint


def serials_with_mac(session: Session, mac: str) -> list[str]:
    """Serials of the devices whose endpoint records ``mac`` (normalised); more than one is ambiguous."""
    rows = session.exec(
        select(Device.serial)
        .join(ServiceEndpoint, col(ServiceEndpoint.device_id) == Device.id)
        .where(ServiceEndpoint.mac == mac)
        .order_by(col(Device.serial))
    )
    return list(rows.all())


def get_endpoint(session: Session, serial: str) -> ServiceEndpoint:
    device = get_device(session, serial)
    endpoint = session.exec(select(ServiceEndpoint).where(ServiceEndpoint.device_id == device.id)).first()
    if endpoint is None:
        raise NotFound(f"device {serial} has no service-environment endpoint recorded")
    return endpoint


def record_image(session: Session, serial: str, result: DeployResult, *, actor: str) -> DeviceImage:
    """Record a verified image deploy on the device; a failed deploy is never recorded as imaged."""
    if not result.ok:
        raise Conflict(f"device {serial}: image deploy failed, not recorded: {result.failure_reason}")
    device = get_device(session, serial)
    row = DeviceImage(
        device_id=device.id or 0,
        image_name=result.image_name,
        image_version=result.image_version,
        image_sha256=result.image_sha256,
        bytes_written=result.bytes_written,
        target=result.media.path if result.media else "",
        deployed_at=result.ended_at,
        deployed_by=actor,
    )
    session.add(row)
    session.flush()
    return row


def images_of(session: Session, serial: str) -> list[DeviceImage]:
    device = get_device(session, serial)
    return list(
        session.exec(select(DeviceImage).where(DeviceImage.device_id == device.id).order_by(DeviceImage.id))  # type: ignore[arg-type]
    )
