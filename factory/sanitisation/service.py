"""Turning a verified erase of one medium into a stored, signed certificate.

Only a successful, verified ``EraseResult`` reaches a certificate (imaging refuses anything
else); the certificate names the custody entry that opened the erase round, so it extends the
chain, and it is stored against that round so the lifecycle guard can match it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, select

from factory.kernel.config import Settings
from factory.kernel.errors import Conflict, GuardRefused
from factory.kernel.lifecycle.states import State
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device, StorageMedium
from factory.kernel.site_keys import load_private_key
from factory.sanitisation.certificates import record_certificate
from imaging.certificate import (
    CertificateContext,
    CertificateError,
    DataBackedUp,
    Destination,
    DeviceInfo,
    MediaSource,
    Person,
    build_certificate,
    sign_certificate,
)
from imaging.result import EraseResult


@dataclass(frozen=True)
class Staff:
    name: str
    title: str = "Bench technician"
    organisation: str = ""
    location: str = ""
    contact: str = ""


def certify_medium(
    session: Session,
    settings: Settings,
    *,
    device: Device,
    medium: StorageMedium,
    result: EraseResult,
    operator: Staff,
    validator: Staff,
    destination: Destination = Destination.INTERNAL_REUSE,
    data_backed_up: DataBackedUp = DataBackedUp.UNKNOWN,
) -> Certificate:
    if device.state != State.SANITISING or device.erase_round_seq is None:
        raise GuardRefused(f"device {device.serial} is not in an erase round (state '{device.state}')")
    if medium.device_id != device.id:
        raise Conflict(f"medium {medium.serial} is not recorded on device {device.serial}")
    opened = session.exec(select(CustodyEntry).where(CustodyEntry.seq == device.erase_round_seq)).one()
    now = datetime.now(UTC)
    org = settings.site_name

    def person(s: Staff) -> Person:
        return Person(
            name=s.name,
            title=s.title,
            organisation=s.organisation or org,
            location=s.location or org,
            contact=s.contact or f"{s.name}@{org}",
            date=now,
        )

    context = CertificateContext(
        organisation=org,
        site=org,
        device=DeviceInfo(
            manufacturer=device.make or "unknown",
            model=device.model or "unknown",
            serial_number=device.serial,
            kind=device.kind,
            asset_tag=device.asset_tag,
        ),
        media_source=MediaSource.USER if device.user_data_since_seq is not None else MediaSource.HOST,
        destination=destination,
        data_backed_up=data_backed_up,
        sanitised_by=person(operator),
        validated_by=person(validator),
        custody_previous_entry_sha256=opened.entry_hash,
        custody_sequence=opened.seq,
    )
    if result.media.serial not in (None, medium.serial):
        raise Conflict(f"erase result is for medium {result.media.serial}, not {medium.serial}")
    try:
        doc = build_certificate(_with_serial(result, medium), context, issued_at=now)
        envelope = sign_certificate(doc, load_private_key(settings))
    except CertificateError as exc:
        raise GuardRefused(f"medium {medium.serial}: no certificate: {exc}") from exc
    return record_certificate(session, device=device, medium=medium, envelope=envelope, erase_round_seq=opened.seq)


def _with_serial(result: EraseResult, medium: StorageMedium) -> EraseResult:
    """A file-backed or unlabelled target reports no serial; the certificate names the recorded one."""
    from dataclasses import replace

    if result.media.serial == medium.serial:
        return result
    media = replace(result.media, serial=medium.serial, model=result.media.model or medium.model or None)
    return replace(result, media=media)
