"""Guards of the transition table: the rules that must hold beyond "is there an edge".

The certificate guard is the one that matters most: nothing leaves the factory for reuse,
redistribution or recycling unless every storage medium recorded on the device has a certificate
from the latest erase round that verifies against the site's public key, and that round began
after the device last held anyone's data. It re-verifies signatures every time rather than
trusting a flag, so a certificate row edited in the database cannot open the gate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam
from sqlmodel import Session, col, select

from factory.kernel.db.shared_statements import warmed
from factory.kernel.errors import GuardRefused
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.table import Edge, Guard
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device, StorageMedium

# Evidence key on a ``sanitised`` entry: locks the reset left on (a tablet's Activation Lock or
# Factory Reset Protection). They tie the device to an account, so it may not be redistributed to
# others until a new erase round ends without them; destruction and recycling stay open.
REDISTRIBUTION_BLOCKERS = "redistribution_blockers"

# Verifies a stored envelope and returns the signed certificate document, or raises with a reason.
CertificateVerifier = Callable[[str], Mapping[str, Any]]


@dataclass(frozen=True)
class GuardInput:
    device: Device
    edge: Edge
    actor: str
    witness: str | None
    paired: bool
    new_stock: bool
    verifier: CertificateVerifier | None
    required_destination: str | None


def check_guard(session: Session, g: GuardInput) -> None:
    guard = g.edge.guard
    if guard is Guard.NONE:
        return
    if guard is Guard.NEW_STOCK:
        if g.device.user_data_since_seq is not None:
            raise GuardRefused(f"device {g.device.serial} has held user data: it must be sanitised before provisioning")
        return
    if guard is Guard.TWO_PEOPLE:
        if not g.witness or g.witness == g.actor:
            raise GuardRefused(f"device {g.device.serial}: '{g.edge.event}' needs a second person as witness")
        return
    if guard is Guard.PAIRED:
        if not g.paired:
            raise GuardRefused(f"device {g.device.serial}: '{g.edge.event}' is only allowed as part of an exchange")
        return
    if guard is Guard.CERTS_IF_USED and g.device.user_data_since_seq is None:
        return
    require_certified(session, g.device, g.verifier, g.required_destination)
    if g.edge.event == Event.REDISTRIBUTE:
        refuse_redistribution_blockers(session, g.device)


def refuse_redistribution_blockers(session: Session, device: Device) -> None:
    """Refuse when the ``sanitised`` entry of the device's latest erase round records a blocker."""
    closed = session.exec(
        select(CustodyEntry.evidence)
        .where(
            CustodyEntry.device_id == device.id,
            CustodyEntry.event == Event.SANITISED.value,
            CustodyEntry.seq > (device.erase_round_seq or 0),
        )
        .order_by(col(CustodyEntry.seq).desc())
    ).first()
    blockers = json.loads(closed).get(REDISTRIBUTION_BLOCKERS) if closed else None
    if blockers:
        raise GuardRefused(
            f"device {device.serial} cannot be redistributed: {'; '.join(map(str, blockers))} "
            "(clear it through device management and sanitise again; destruction is still allowed)"
        )


def require_certified(
    session: Session,
    device: Device,
    verifier: CertificateVerifier | None,
    required_destination: str | None = None,
) -> list[Certificate]:
    """Every medium has a verified certificate from the current erase round; else refuse."""
    serial = device.serial
    if verifier is None:
        raise GuardRefused(f"device {serial}: no site public key to verify certificates with")
    if device.erase_round_seq is None:
        raise GuardRefused(f"device {serial} has never been sanitised")
    if device.user_data_since_seq is not None and device.erase_round_seq < device.user_data_since_seq:
        raise GuardRefused(f"device {serial} has held user data since its last erase")
    media, by_medium = _media_and_round_certificates(session, device)
    if not media:
        raise GuardRefused(f"device {serial} has no storage media recorded: nothing can be certified")
    accepted: list[Certificate] = []
    for medium in media:
        cert = by_medium.get(medium.id or -1)
        if cert is None:
            raise GuardRefused(
                f"device {serial}: storage medium {medium.serial} has no certificate from the latest erase"
            )
        try:
            doc = verifier(cert.envelope)
        except Exception as exc:  # any failure to verify is a refusal, with its reason
            raise GuardRefused(
                f"device {serial}: certificate {cert.id} for medium {medium.serial} does not verify: {exc}"
            ) from exc
        _check_content(serial, medium, cert, doc, required_destination)
        accepted.append(cert)
    return accepted


def _media_and_round_certificates(
    session: Session, device: Device
) -> tuple[list[StorageMedium], dict[int | None, Certificate]]:
    """Every medium of the device and, by medium id, a certificate of its current erase round: one
    query (each medium with its certificates of the round, if any) where two cost two round trips."""
    params = {"guard_device": device.id, "guard_round": device.erase_round_seq}
    rows = session.exec(_MEDIA_AND_ROUND_CERTIFICATES, params=params).all()  # type: ignore[call-overload]
    media = list({medium.id: medium for medium, _ in rows}.values())
    by_medium = {cert.medium_id: cert for _, cert in rows if cert is not None}
    return media, by_medium


# Built once (every sanitise and every release checks it, some twice in one transaction): a fresh
# statement's construction and cache key cost more CPU than its round trip.
_MEDIA_AND_ROUND_CERTIFICATES = warmed(
    select(StorageMedium, Certificate)
    .outerjoin(
        Certificate,
        and_(
            col(Certificate.medium_id) == col(StorageMedium.id),
            col(Certificate.device_id) == bindparam("guard_device"),
            col(Certificate.erase_round_seq) == bindparam("guard_round"),
        ),
    )
    .where(StorageMedium.device_id == bindparam("guard_device"))
    .order_by(col(StorageMedium.id), col(Certificate.id))
)


def _check_content(
    serial: str,
    medium: StorageMedium,
    cert: Certificate,
    doc: Mapping[str, Any],
    required_destination: str | None,
) -> None:
    signed_medium = doc.get("media", {}).get("serial_number")
    signed_device = doc.get("device", {}).get("serial_number")
    if signed_medium != medium.serial or signed_device != serial:
        raise GuardRefused(
            f"device {serial}: certificate {cert.id} speaks for {signed_device}/{signed_medium}, "
            f"not {serial}/{medium.serial}"
        )
    if doc.get("certificate_id") != cert.id:
        raise GuardRefused(f"device {serial}: certificate {cert.id} row does not match its signed id")
    if not doc.get("verification", {}).get("passed"):
        raise GuardRefused(f"device {serial}: certificate {cert.id} records a failed verification")
    if required_destination is not None:
        destination = doc.get("destination", {}).get("category")
        if destination != required_destination:
            raise GuardRefused(
                f"device {serial}: certificate {cert.id} is for destination '{destination}', "
                f"not '{required_destination}'"
            )
