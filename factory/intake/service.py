"""Writes of intake: booking devices in, pinning their service-environment endpoint, recording images.

Reads are in :mod:`factory.intake.views`; ``--media`` spec parsing is in :mod:`factory.intake.media`
and re-exported here for callers that book devices in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from factory.intake.enrolment import DiskReport, EnrolmentOutcome, EnrolmentReport, Outcome, enrol
from factory.intake.errors import DeviceAlreadyKnown, HostKeyChanged, ImageNotVerified, InvalidInput
from factory.intake.media import MediaSpec, medium_row, parse_capacity, parse_media_spec
from factory.intake.models import DeviceImage, ServiceEndpoint
from factory.intake.netboot import BootDecision, boot_script, chain_script, leased_addresses, next_action, served_file
from factory.intake.returned_media import record_media
from factory.intake.views import FACTORY_CUSTODIAN, clean_serial, find_endpoint, get_device, media_elsewhere
from factory.kernel import limits
from factory.kernel.clock import utc_now
from factory.kernel.errors import GuardRefused
from factory.kernel.lifecycle.states import Event, State
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device, DeviceKind

if TYPE_CHECKING:  # SSH, SNMP and the image engine load only when an endpoint or image is recorded
    from hardware_drivers.ssh import PinnedHostKey
    from imaging.deploy import DeployResult

__all__ = [
    "FACTORY_CUSTODIAN",
    "BootDecision",
    "DiskReport",
    "EnrolmentOutcome",
    "EnrolmentReport",
    "FirstRecord",
    "MediaSpec",
    "Outcome",
    "boot_script",
    "chain_script",
    "enrol",
    "get_device",
    "image_target",
    "leased_addresses",
    "next_action",
    "parse_capacity",
    "parse_media_spec",
    "receive_device",
    "record_deployed_image",
    "record_image",
    "record_in_field",
    "record_returned_media",
    "register_endpoint",
    "served_file",
]


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
    """Book a device into the factory's custody: one device row, its media, one ledger entry.

    A medium whose serial is already recorded on another device is booked in all the same (the
    disk may have moved), and the receipt's evidence names the other devices
    (``media_also_recorded_on``); ``views.media_elsewhere`` gives the warning to show.

    :raises InvalidInput: a malformed serial (one with a slash is unreachable by URL), an unknown
        kind, a media serial listed twice.
    :raises DeviceAlreadyKnown: the serial or the asset tag is already booked in.
    """
    first = FirstRecord(serial, kind, make, model, asset_tag, role, from_custodian, location, media)
    device, evidence = _new_device(session, first)
    receipt = TransitionRequest(
        device_id=device.id or 0,
        event=Event.RECEIVE,
        to_custodian=FACTORY_CUSTODIAN,
        location=location.strip(),
        evidence={"new_stock": new_stock, **evidence},
        new_stock=new_stock,
    )
    change_state(session, [receipt], actor=actor)
    return device


def record_in_field(
    session: Session, first: FirstRecord, *, holder: str, actor: str, evidence: dict[str, object]
) -> tuple[Device, int]:
    """Record a device that is already with its holder (the ``enrol_in_field`` edge: none -> issued):
    its row, the media given (none: they are recorded when it comes back), and its first ledger
    entry, which names the holder, says it was never issued here and carries ``evidence`` (where
    the record came from). The device counts as holding user data from that entry. Returns the
    device and the entry's sequence number. Only the bulk import calls this.

    :raises InvalidInput: a malformed serial, an unknown kind, a media serial listed twice.
    :raises DeviceAlreadyKnown: the serial or the asset tag is already recorded.
    """
    device, found = _new_device(session, first)
    if not found["media"]:  # nothing to erase is known yet: the disks found on its return are recorded then
        found["media_recorded"] = "when it comes back"
    request = TransitionRequest(
        device_id=device.id or 0,
        event=Event.ENROL_IN_FIELD,
        to_custodian=holder,
        location=holder,
        evidence={"recorded_as": "already in use by its holder, never issued by the factory", **evidence, **found},
    )
    [entry] = change_state(session, [request], actor=actor)
    return device, entry.seq


def record_returned_media(session: Session, *, serial: str, media: Sequence[MediaSpec], actor: str) -> int:
    """Record the media a technician read off a device imported as already in the field without
    them, now back (``returned_media.record_media``); returns the ``record_media`` entry's number.

    :raises UnknownDevice: no such device.
    :raises Conflict: it has media recorded already, or was not imported without them.
    :raises InvalidInput: no media, or one listed twice.
    """
    device = get_device(session, serial)
    return record_media(session, device, media, actor=actor, evidence={"found_by": "technician"}).seq


@dataclass(frozen=True)
class FirstRecord:
    """What a device's first record holds: its identity, where it is and its media."""

    serial: str
    kind: str
    make: str = ""
    model: str = ""
    asset_tag: str | None = None
    role: str | None = None
    custodian: str = ""
    location: str = ""
    media: Sequence[MediaSpec] = ()


def _new_device(session: Session, first: FirstRecord) -> tuple[Device, dict[str, object]]:
    """The device's row and its media rows, once its description is sound and it is new; with the
    first entry's evidence about its media (their serials; those recorded on other devices too)."""
    serial = clean_serial(first.serial)
    if problem := limits.serial_problem("serial", serial):
        raise InvalidInput(problem)
    asset_tag = first.asset_tag.strip() if first.asset_tag else None
    media_serials = _check_new_device(session, serial, first.kind, asset_tag, first.media)
    now = utc_now()
    device = Device(
        serial=serial, asset_tag=asset_tag, make=first.make.strip(), model=first.model.strip(), kind=first.kind,
        role=first.role, custodian=first.custodian.strip(), location=first.location.strip(), created_at=now,
        updated_at=now,
    )  # fmt: skip
    session.add(device)
    session.flush()
    for spec in first.media:
        session.add(medium_row(device.id or 0, spec))
    session.flush()
    evidence: dict[str, object] = {"media": media_serials}
    if elsewhere := media_elsewhere(session, device):
        evidence["media_also_recorded_on"] = elsewhere
    return device, evidence


def _check_new_device(
    session: Session, serial: str, kind: str, asset_tag: str | None, media: Sequence[MediaSpec]
) -> list[str]:
    """The cleaned media serials, once the device is known to be new and its description sound."""
    kinds = [k.value for k in DeviceKind]
    if kind not in kinds:
        raise InvalidInput(f"kind '{kind}' is not one of: {', '.join(kinds)}")
    existing = session.exec(select(Device).where(Device.serial == serial)).first()
    if existing is not None:
        raise DeviceAlreadyKnown(
            f"device {serial} is already known (state '{existing.state}'); it cannot be received again"
        )
    if asset_tag and session.exec(select(Device).where(Device.asset_tag == asset_tag)).first():
        raise DeviceAlreadyKnown(f"asset tag {asset_tag} already belongs to another device")
    media_serials = [clean_serial(m.serial, "media serial") for m in media]
    if len(set(media_serials)) != len(media_serials):
        raise InvalidInput(f"device {serial}: the same media serial is listed twice")
    return media_serials


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

    :raises InvalidInput: a malformed MAC, host key, address or port.
    :raises UnknownDevice: no such device.
    :raises HostKeyChanged: the device already has a different key pinned.
    """
    mac, pin = parse_endpoint(mac, host_key, address, port)
    device = get_device(session, serial)
    existing = find_endpoint(session, device)
    if existing is not None and existing.host_key_fingerprint != pin.fingerprint:
        raise HostKeyChanged(
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


def parse_endpoint(mac: str | None, host_key: str, address: str, port: int) -> tuple[str | None, PinnedHostKey]:
    """A normalised MAC and a parsed host key, once address and port are sound. :raises InvalidInput:"""
    from hardware_drivers.snmp import normalise_mac
    from hardware_drivers.ssh import InvalidPin, PinnedHostKey

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
    return mac, pin


def image_target(session: Session, serial: str) -> Device:
    """The device an image is about to be written to, if its state allows it: only while it is
    being provisioned, which it entered certified erased or as new stock, so no user data is on it.

    :raises UnknownDevice: no such device. :raises GuardRefused: any other state.
    """
    device = get_device(session, serial)
    if device.state != State.PROVISIONING:
        held = " and may still hold user data" if device.user_data_since_seq is not None else ""
        raise GuardRefused(
            f"device {device.serial} is {device.state or 'not in custody'}{held}: an image is deployed only "
            "while it is being provisioned (after a certified erase, or as new stock)"
        )
    return device


def record_image(session: Session, serial: str, result: DeployResult, *, actor: str) -> DeviceImage:
    """Record a verified image deploy on the device, with its custody entry (``deploy_image``); a
    failed deploy is never recorded as imaged.

    :raises ImageNotVerified: the deploy failed. :raises UnknownDevice: no such device.
    :raises GuardRefused: the device's state does not allow a deploy.
    """
    if not result.ok:
        raise ImageNotVerified(f"device {serial}: image deploy failed, not recorded: {result.failure_reason}")
    device = image_target(session, serial)
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
    evidence = {"image": row.image_name, "version": row.image_version, "sha256": row.image_sha256,
                "bytes_written": row.bytes_written, "target": row.target, "image_record": row.id}  # fmt: skip
    change_state(session, [TransitionRequest(device.id or 0, Event.DEPLOY_IMAGE, evidence=evidence)], actor=actor)
    return row


def record_deployed_image(
    session: Session,
    serial: str,
    *,
    name: str,
    version: str,
    sha256: str,
    bytes_written: int,
    target: str,
    actor: str,
) -> DeviceImage:
    """Record an image written over the network and read back equal to its manifest's ``sha256``
    (the caller compared them), with its custody entry (``deploy_image``), like ``record_image``.

    :raises UnknownDevice: no such device. :raises GuardRefused: the state does not allow a deploy.
    """
    device = image_target(session, serial)
    row = DeviceImage(
        device_id=device.id or 0, image_name=name, image_version=version, image_sha256=sha256,
        bytes_written=bytes_written, target=target[:255], deployed_at=utc_now(), deployed_by=actor,
    )  # fmt: skip
    session.add(row)
    session.flush()
    evidence = {"image": name, "version": version, "sha256": sha256, "readback_sha256": sha256, "over": "network",
                "bytes_written": bytes_written, "target": row.target, "image_record": row.id}  # fmt: skip
    change_state(session, [TransitionRequest(device.id or 0, Event.DEPLOY_IMAGE, evidence=evidence)], actor=actor)
    return row
