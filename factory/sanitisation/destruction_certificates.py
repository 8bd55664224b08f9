"""Destruction certificates: one signed certificate per storage medium of a device whose
destruction a second person witnessed (IEEE 2883 Destruct), stored append-only beside it.

Called by ``custody.destruction.witness_destruction`` in the witnessing transaction. A request
whose method names no Destruct technique, or neither a particle size nor a machine, gets no
certificate: the destruction is still recorded (it happened, and was witnessed), and the audit
shows the device without one and why (:func:`destruction_certificates_of`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from factory.kernel import clock
from factory.kernel.config import Settings
from factory.kernel.models.device import Device, StorageMedium
from factory.kernel.site_keys import load_private_key
from factory.sanitisation.certificates import Issuer, device_info, person, signed_in, stored_columns
from factory.sanitisation.models import DestructionCertificate
from imaging.certificate import CertificateError, sign_certificate
from imaging.certificate_destruction import DestroyedMedium, DestructionContext, build_destruction_certificate


@dataclass(frozen=True)
class Witnessed:
    """What the witnessed destruction recorded: the request, the people, the photos, the entry."""

    destruction_id: int
    method: str
    reason: str
    requested_by: str
    witnessed_by: str
    photo_sha256: tuple[str, ...]
    entry: tuple[str, int]  # (hash, seq) of the ``destroy`` custody entry


def issue_destruction_certificates(
    session: Session, settings: Settings, device: Device, witnessed: Witnessed
) -> tuple[list[DestructionCertificate], str | None]:
    """Sign and store a certificate for every recorded medium; (certificates, why none) on refusal."""
    issuer, now, key = Issuer.from_settings(settings), clock.now(), load_private_key(settings)
    media = session.exec(select(StorageMedium).where(StorageMedium.device_id == device.id)).all()
    rows: list[DestructionCertificate] = []
    for medium in media:
        context = DestructionContext(
            organisation=issuer.organisation,
            site=issuer.site,
            device=device_info(device),
            medium=DestroyedMedium(medium.serial, medium.media_type, medium.model or None),
            method=witnessed.method,
            reason=witnessed.reason,
            destroyed_at=now,
            requested_by=person(signed_in(witnessed.requested_by, "Requested the destruction"), issuer.site, now),
            witnessed_by=person(signed_in(witnessed.witnessed_by, "Witness"), issuer.site, now),
            photo_sha256=witnessed.photo_sha256,
            custody_previous_entry_sha256=witnessed.entry[0],
            custody_sequence=witnessed.entry[1],
        )
        try:
            envelope = sign_certificate(build_destruction_certificate(context, issued_at=now), key)
        except CertificateError as exc:
            return [], str(exc)
        rows.append(
            DestructionCertificate(
                **stored_columns(envelope, device, medium),
                destruction_id=witnessed.destruction_id,
                technique=envelope["certificate"]["destruction"]["technique"],
            )
        )
    session.add_all(rows)
    session.flush()
    return rows, None


def destruction_certificates_of(session: Session, device_id: int) -> list[DestructionCertificate]:
    stmt = select(DestructionCertificate).where(DestructionCertificate.device_id == device_id)
    return list(session.exec(stmt.order_by(col(DestructionCertificate.medium_serial))).all())
