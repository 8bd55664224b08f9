"""One medium's certificate: signed from its verified erase and stored, inside an open erase round.

:func:`factory.sanitisation.service.certify_round` calls :func:`certify_medium` for every medium of
the round; both names are part of the service's public face (re-exported there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, select

from factory.kernel import clock
from factory.kernel.config import Settings
from factory.kernel.errors import Conflict, GuardRefused
from factory.kernel.lifecycle.states import State
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device, StorageMedium
from factory.kernel.site_keys import load_private_key
from factory.sanitisation.certificates import (
    Issuer,
    Signatories,
    Staff,
    device_info,
    sign_erasure,
    stored_columns,
    with_medium_serial,
)
from imaging.certificate import CertificateError, DataBackedUp, Destination, MediaSource
from imaging.result import EraseResult


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
    agent: str | None = None,
    opened: CustodyEntry | None = None,
) -> Certificate:
    """Sign and store the certificate of one medium erased in the device's open round
    (``opened``: the entry that opened it, if the caller has read it already).

    :raises GuardRefused: the device is in no erase round, or the result is not certifiable.
    :raises Conflict: the medium or the result belongs to another device or medium.
    """
    if device.state != State.SANITISING or device.erase_round_seq is None:
        raise GuardRefused(f"device {device.serial} is not in an erase round (state '{device.state}')")
    if medium.device_id != device.id:
        raise Conflict(f"medium {medium.serial} is not recorded on device {device.serial}")
    if opened is None or opened.seq != device.erase_round_seq:
        opened = session.exec(select(CustodyEntry).where(CustodyEntry.seq == device.erase_round_seq)).one()
    now = clock.now()
    if result.media.serial not in (None, medium.serial):
        raise Conflict(f"erase result is for medium {result.media.serial}, not {medium.serial}")
    source = MediaSource.USER if device.user_data_since_seq is not None else MediaSource.HOST
    try:
        envelope = sign_erasure(
            with_medium_serial(result, medium.serial, medium.model),
            device_info(device),
            source,
            Signatories(operator, validator, destination, data_backed_up, agent=agent),
            load_private_key(settings),
            issuer=Issuer.from_settings(settings),
            issued_at=now,
            custody=(opened.entry_hash, opened.seq),
        )
    except CertificateError as exc:
        raise GuardRefused(f"medium {medium.serial}: no certificate: {exc}") from exc
    return record_certificate(session, device=device, medium=medium, envelope=envelope, erase_round_seq=opened.seq)


def record_certificate(
    session: Session,
    *,
    device: Device,
    medium: StorageMedium,
    envelope: Mapping[str, Any],
    erase_round_seq: int,
) -> Certificate:
    """Store an issued certificate; the envelope text is kept byte-for-byte as signed.

    :raises Conflict: the certificate names another device or medium.
    """
    doc = envelope["certificate"]
    if doc["media"]["serial_number"] != medium.serial or doc["device"]["serial_number"] != device.serial:
        raise Conflict(f"certificate {doc['certificate_id']} does not name {device.serial}/{medium.serial}")
    row = Certificate(
        **stored_columns(envelope, device, medium),
        asset_tag=device.asset_tag,
        erase_round_seq=erase_round_seq,
        level=doc["sanitisation"]["level_achieved"],
        method=doc["sanitisation"]["method"],
        destination=doc["destination"]["category"],
    )
    session.add(row)
    session.flush()
    return row
