"""Self-enrolment of a network-booted laptop: what its service environment reports, and what the
controller decides about it.

The agent in the service environment (scripts/build-guest.sh) posts the laptop's identity (DMI
serial, vendor, model, MACs), every disk it sees, and the SSH host key it made for this boot, with
the one-time boot token from its kernel command line. In one transaction:

1. the token is checked and used up (single use, the MAC it was issued to, not expired);
2. the device is matched by its DMI serial, else by a MAC recorded on exactly one device;
3. a device nobody recorded is booked in (with the disks it reported) and quarantined, as a dock
   does with an unknown device;
4. a known device has the host key pinned for this boot (each boot makes a fresh key: the token is
   what makes it trustworthy, and a key that changes during the boot is refused by the SSH layer);
5. the disks found are compared with the media recorded: a missing or extra medium refuses the
   enrolment with the reason (the line holds the job with it). A device with no media recorded is
   refused too, except one first recorded as already in the field (``enrol_in_field``, bulk import)
   without its media: the disks found are recorded as its media (``record_media``, a signed entry
   naming each disk), since that is the first time the factory sees inside it.

Every outcome, refusals included, is kept as an ``Enrolment`` row with the report as received.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from sqlmodel import Session, col, select

from factory.intake.boot_tokens import use_boot_token
from factory.intake.errors import EnrolmentFromElsewhere, InvalidInput
from factory.intake.media import MediaSpec
from factory.intake.models import Enrolment, ServiceEndpoint
from factory.intake.returned_media import awaits_media, record_media
from factory.intake.views import clean_serial, find_endpoint
from factory.kernel.canonical import canonical_bytes
from factory.kernel.clock import utc_now
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device, DeviceKind, MediaType, StorageMedium
from hardware_drivers.dmi import placeholder_serial

ENROLMENT_ACTOR = "netboot-enrolment"


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # matched, key pinned, disks as recorded: the line queues its job
    QUARANTINED = "quarantined"  # unknown: booked in and quarantined for a technician
    REFUSED = "refused"  # matched, but the line must not touch it (reason given)


@dataclass(frozen=True)
class DiskReport:
    name: str  # kernel name in the service environment: nvme0n1, sda
    serial: str
    model: str = ""
    size_bytes: int = 0
    firmware: str = ""
    transport: str = ""  # nvme, sata, usb, mmc
    rotational: bool = False
    capabilities: tuple[str, ...] = ()  # e.g. nvme-sanitize-crypto, nvme-format-crypto, ata-security-erase


@dataclass(frozen=True)
class EnrolmentReport:
    boot_mac: str  # the NIC that booted (and was given the token)
    serial: str  # DMI system serial
    host_key: str  # "ssh-ed25519 AAAA...", made at this boot
    address: str  # where the service environment is reachable (the post's source address)
    vendor: str = ""
    model: str = ""
    macs: tuple[str, ...] = ()
    disks: tuple[DiskReport, ...] = ()
    ssh_port: int = 22
    extra: dict[str, object] = field(default_factory=dict)  # anything else the agent sent, kept as evidence


@dataclass(frozen=True)
class EnrolmentOutcome:
    outcome: Outcome
    serial: str  # the device's serial as recorded (the DMI serial for one booked in now)
    mac: str
    enrolment_id: int
    matched_by: str  # "serial", "mac" or "new"
    reason: str | None = None

    @property
    def refused(self) -> bool:
        return self.outcome is Outcome.REFUSED


def enrol(
    session: Session, token: str | None, report: EnrolmentReport, *, leased: tuple[str, ...] = ()
) -> EnrolmentOutcome:
    """Check the token, match the laptop, pin its key, compare its disks; record the enrolment.
    ``leased``: the addresses the bench's DHCP gave the boot MAC, when known; a post from elsewhere is
    refused before the token is used (someone else on the bench network cannot spend it).

    :raises BootTokenRefused: no token, unknown, used or expired (nothing recorded).
    :raises BootTokenForAnotherMac: the token belongs to another NIC's boot.
    :raises InvalidInput: a malformed MAC, serial, host key or disk list.
    :raises EnrolmentFromElsewhere: posted from another address than the MAC's lease.
    """
    from factory.intake.service import parse_endpoint  # the endpoint checks register_endpoint uses

    mac, pin = parse_endpoint(report.boot_mac, report.host_key, report.address, report.ssh_port)
    assert mac is not None
    serial = clean_serial(report.serial, "DMI serial")
    _check_disks(report.disks)
    if leased and report.address not in leased:
        raise EnrolmentFromElsewhere(
            f"enrolment for MAC {mac} came from {report.address}, which its lease ({', '.join(leased)}) is not"
        )
    boot = use_boot_token(session, token, mac)
    device, matched_by = _match(session, serial, report.macs or (mac,))
    reason: str | None = None
    if device is None and placeholder_serial(serial):  # every such laptop reports it: never booked in by it
        raise InvalidInput(
            f"DMI serial '{serial}' is the firmware's placeholder, not this laptop's, and no MAC it reported is "
            "recorded on exactly one device: record its serial and MAC by hand (factory device endpoint), "
            "then reboot it"
        )
    if device is None:
        device = _book_in_unknown(session, serial, report)
        outcome, matched_by = Outcome.QUARANTINED, "new"
    else:
        _record_media_found(session, device, report)
        reason = _media_mismatch(session, device, report.disks)
        outcome = Outcome.REFUSED if reason else Outcome.ACCEPTED
    _pin_for_boot(session, device, report, mac, pin.fingerprint, f"{pin.key_type} {report.host_key.split()[1]}")
    row = Enrolment(
        boot_token_id=boot.id or 0, device_id=device.id, mac=mac, address=report.address, dmi_serial=serial,
        vendor=report.vendor[:128], model=report.model[:128], host_key_fingerprint=pin.fingerprint,
        report=canonical_bytes(_evidence(report)).decode(), outcome=outcome.value, reason=reason, received_at=utc_now(),
    )  # fmt: skip
    session.add(row)
    session.flush()
    return EnrolmentOutcome(outcome, device.serial, mac, row.id or 0, matched_by, reason)


def _check_disks(disks: Sequence[DiskReport]) -> None:
    serials = [d.serial.strip() for d in disks]
    if any(not s for s in serials):
        raise InvalidInput("every reported disk needs its serial number")
    if len(set(serials)) != len(serials):
        raise InvalidInput("the same disk serial is reported twice")


def _match(session: Session, serial: str, macs: Sequence[str]) -> tuple[Device | None, str]:
    """The device with this DMI serial, else the one device a reported MAC is recorded on. A
    placeholder serial ("To Be Filled By O.E.M.") names no one laptop: only the MAC can match."""
    device = None if placeholder_serial(serial) else session.exec(select(Device).where(Device.serial == serial)).first()
    if device is not None:
        return device, "serial"
    owners = session.exec(
        select(ServiceEndpoint.device_id).where(col(ServiceEndpoint.mac).in_([m.lower() for m in macs]))
    ).all()
    if len(set(owners)) == 1:
        return session.get(Device, owners[0]), "mac"
    return None, "new"  # nobody, or a MAC on several devices: never guessed


def _book_in_unknown(session: Session, serial: str, report: EnrolmentReport) -> Device:
    from factory.intake.service import receive_device

    media = [_medium_of(d) for d in report.disks]
    device = receive_device(
        session, serial=serial, kind=DeviceKind.LAPTOP.value, actor=ENROLMENT_ACTOR, make=report.vendor[:128],
        model=report.model[:128], from_custodian="unknown", location="bench network", media=media,
    )  # fmt: skip
    evidence = {"reason": "unknown device enrolled from a network boot", "mac": report.boot_mac}
    change_state(
        session, [TransitionRequest(device.id or 0, Event.QUARANTINE, evidence=evidence)], actor=ENROLMENT_ACTOR
    )
    return device


def _medium_of(disk: DiskReport) -> MediaSpec:
    return MediaSpec(_media_type(disk).value, disk.serial.strip(), disk.size_bytes, disk.model[:128])


def _media_type(disk: DiskReport) -> MediaType:
    if disk.transport == "nvme":
        return MediaType.NVME
    if disk.transport == "usb":
        return MediaType.USB
    if disk.transport == "mmc":
        return MediaType.EMMC
    return MediaType.HDD if disk.rotational else MediaType.SATA_SSD


def _record_media_found(session: Session, device: Device, report: EnrolmentReport) -> None:
    """An in-field device imported without its media, back for the first time: record the disks
    found as its media (one ``record_media`` entry). Any other device is left as recorded."""
    if report.disks and awaits_media(session, device):
        evidence: dict[str, object] = {"found_by": "network enrolment", "mac": report.boot_mac}
        record_media(session, device, [_medium_of(d) for d in report.disks], actor=ENROLMENT_ACTOR, evidence=evidence)


def _media_mismatch(session: Session, device: Device, disks: Sequence[DiskReport]) -> str | None:
    """Why the disks found differ from the media recorded, or None when they are the same set."""
    recorded = set(session.exec(select(StorageMedium.serial).where(StorageMedium.device_id == device.id)).all())
    found = {d.serial.strip() for d in disks}
    if not recorded:
        return (
            f"device {device.serial} has no storage media recorded (found {', '.join(sorted(found)) or 'none'}): "
            "record its media before it is network-booted"
        )
    parts = []
    if missing := sorted(recorded - found):
        parts.append(f"recorded media not found: {', '.join(missing)}")
    if extra := sorted(found - recorded):
        parts.append(f"disks found that are not recorded: {', '.join(extra)}")
    return f"device {device.serial}: " + "; ".join(parts) if parts else None


def _pin_for_boot(
    session: Session, device: Device, report: EnrolmentReport, mac: str, fingerprint: str, host_key: str
) -> None:
    """Pin this boot's host key (replacing the last boot's) and where to reach the laptop now."""
    endpoint = find_endpoint(session, device) or ServiceEndpoint(
        device_id=device.id or 0, address=report.address, host_key=host_key, host_key_fingerprint=fingerprint,
        recorded_at=utc_now(), recorded_by=ENROLMENT_ACTOR,
    )  # fmt: skip
    endpoint.address, endpoint.port, endpoint.username, endpoint.mac = report.address, report.ssh_port, "root", mac
    endpoint.host_key, endpoint.host_key_fingerprint = host_key, fingerprint
    endpoint.recorded_at, endpoint.recorded_by = utc_now(), ENROLMENT_ACTOR
    session.add(endpoint)
    session.flush()


def _evidence(report: EnrolmentReport) -> dict[str, object]:
    body = asdict(report)
    body["disks"] = [asdict(d) | {"capabilities": list(d.capabilities)} for d in report.disks]
    body["macs"] = list(report.macs)
    return body
