"""Courier dispatch: consignments of allocated devices with a PDF manifest, the hand-over scan
when the courier collects (``dispatch``), proof of delivery (``deliver``), failed delivery and
return to the factory (``undeliverable``), the per-wave courier cap, and the exception report.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from factory.custody.allocation import get_allocation
from factory.custody.documents import DocumentKind, Upload, document_ref, get_document, store_document, store_pdf
from factory.custody.models import (
    Allocation,
    AllocationChannel,
    AllocationStatus,
    Consignment,
    ConsignmentItem,
    ConsignmentStatus,
    Officer,
    Wave,
)
from factory.custody.pdf import Manifest, ManifestLine, render_manifest
from factory.custody.people import officer_label
from factory.intake.views import FACTORY_CUSTODIAN
from factory.kernel import clock
from factory.kernel.clock import format_utc, utc_now
from factory.kernel.errors import Conflict, GuardRefused, InvalidInput, NotFound
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device, DeviceKind

DEFAULT_OVERDUE_DAYS = 3


@dataclass(frozen=True)
class ConsignmentException:
    reference: str
    problem: str  # "overdue", "missing_handover_scan", "missing_delivery_scan"
    detail: str
    device_serial: str | None = None


def get_consignment(session: Session, reference: str) -> Consignment:
    row = session.exec(select(Consignment).where(Consignment.reference == (reference or "").strip())).first()
    if row is None:
        raise NotFound(f"no consignment {reference}")
    return row


def list_consignments(session: Session, statuses: Sequence[str]) -> list[tuple[Consignment, int]]:
    """Consignments in the given statuses, newest first, each with its number of devices."""
    rows = session.exec(
        select(Consignment)
        .where(col(Consignment.status).in_(list(statuses)))
        .order_by(col(Consignment.created_at).desc())
    ).all()
    return [(c, len(consignment_items(session, c))) for c in rows]


def consignment_items(session: Session, consignment: Consignment) -> list[tuple[ConsignmentItem, Device]]:
    rows = session.exec(
        select(ConsignmentItem, Device)
        .join(Device, Device.id == ConsignmentItem.device_id)  # type: ignore[arg-type]
        .where(ConsignmentItem.consignment_id == consignment.id)
        .order_by(Device.serial)  # type: ignore[arg-type]
    ).all()
    return [(item, device) for item, device in rows]


def create_consignment(
    session: Session,
    *,
    allocation_ids: Sequence[int],
    courier: str,
    recipient_name: str,
    recipient_address: str,
    seal_numbers: Sequence[str],
    actor: str,
    site: str,
) -> Consignment:
    """Group courier allocations into a consignment and render its manifest. No state changes yet."""
    if not allocation_ids:
        raise InvalidInput("a consignment needs at least one device")
    if len(set(allocation_ids)) != len(allocation_ids):
        raise InvalidInput("an allocation is listed twice in the consignment")
    courier_name, name, address = (
        (courier or "").strip(),
        (recipient_name or "").strip(),
        (recipient_address or "").strip(),
    )
    if not courier_name or not name or not address:
        raise InvalidInput("a consignment names the courier, the recipient and the delivery address")
    seals = [s.strip() for s in seal_numbers if s.strip()]
    allocations = [get_allocation(session, i) for i in allocation_ids]
    for allocation in allocations:
        if allocation.channel != AllocationChannel.COURIER or allocation.officer_id is None:
            raise InvalidInput(f"allocation {allocation.id} is not a courier allocation to an officer")
        if allocation.status != AllocationStatus.ALLOCATED:
            raise Conflict(f"allocation {allocation.id} is {allocation.status}, not allocated")
        if _open_item(session, allocation) is not None:
            raise Conflict(f"allocation {allocation.id} is already in an open consignment")
    check_courier_cap(session, allocations)
    consignment = Consignment(
        reference=f"CN-{secrets.token_hex(4).upper()}",
        courier=courier_name[:200],
        recipient_name=name[:200],
        recipient_address=address[:500],
        seal_numbers=",".join(seals)[:500],
        created_by=actor,
        created_at=utc_now(),
    )
    session.add(consignment)
    session.flush()
    lines = []
    for allocation in allocations:
        session.add(
            ConsignmentItem(
                consignment_id=consignment.id or 0, allocation_id=allocation.id or 0, device_id=allocation.device_id
            )
        )
        device = session.get(Device, allocation.device_id)
        officer = session.get(Officer, allocation.officer_id)
        assert device is not None and officer is not None
        lines.append(
            ManifestLine(
                serial=device.serial,
                asset_tag=device.asset_tag or "",
                kind=device.kind,
                make_model=f"{device.make} {device.model}".strip(),
                officer=f"{officer.name} ({officer.staff_number})",
            )
        )
    pdf = render_manifest(
        Manifest(
            reference=consignment.reference,
            site=site,
            courier=consignment.courier,
            recipient_name=consignment.recipient_name,
            recipient_address=consignment.recipient_address,
            seal_numbers=seals,
            created_at=consignment.created_at,
            created_by=actor,
            lines=sorted(lines, key=lambda x: x.serial),
        )
    )
    doc = store_pdf(session, DocumentKind.MANIFEST, pdf, f"{consignment.reference}-manifest.pdf", actor=actor)
    consignment.manifest_document_id = doc.id
    session.add(consignment)
    session.flush()
    return consignment


def check_courier_cap(session: Session, new: Sequence[Allocation]) -> None:
    """Per wave: laptops going by courier may not exceed the wave's share of laptops issued in it."""
    waves = {a.wave_id for a in new if a.wave_id is not None and a.device_kind == DeviceKind.LAPTOP}
    for wave_id in sorted(waves):
        wave = session.get(Wave, wave_id)
        assert wave is not None
        adding = sum(1 for a in new if a.wave_id == wave_id and a.device_kind == DeviceKind.LAPTOP)
        by_courier = _courier_laptops(session, wave_id) + adding
        in_person = _count(
            session,
            Allocation.wave_id == wave_id,
            Allocation.device_kind == DeviceKind.LAPTOP.value,
            Allocation.channel == AllocationChannel.IN_PERSON.value,
            Allocation.status == AllocationStatus.ISSUED.value,
        )
        total = in_person + by_courier
        if by_courier * 100 > wave.courier_cap_percent * total:
            raise GuardRefused(
                f"wave {wave.name}: {by_courier} of {total} laptops would be issued by courier "
                f"({by_courier * 100 / total:.1f}%), above the {wave.courier_cap_percent}% cap "
                f"({in_person} in person, {by_courier - adding} already by courier, {adding} in this consignment)"
            )


def _courier_laptops(session: Session, wave_id: int) -> int:
    """Laptops of the wave on their way by courier or delivered, plus those in open consignments."""
    sent = _count(
        session,
        Allocation.wave_id == wave_id,
        Allocation.device_kind == DeviceKind.LAPTOP.value,
        Allocation.channel == AllocationChannel.COURIER.value,
        Allocation.status.in_([AllocationStatus.ISSUED.value, AllocationStatus.IN_TRANSIT.value]),  # type: ignore[attr-defined]
    )
    queued = session.exec(
        select(func.count())
        .select_from(ConsignmentItem)
        .join(Allocation, Allocation.id == ConsignmentItem.allocation_id)  # type: ignore[arg-type]
        .join(Consignment, Consignment.id == ConsignmentItem.consignment_id)  # type: ignore[arg-type]
        .where(
            Allocation.wave_id == wave_id,
            Allocation.device_kind == DeviceKind.LAPTOP.value,
            Allocation.status == AllocationStatus.ALLOCATED.value,
            Consignment.status == ConsignmentStatus.OPEN.value,
        )
    ).one()
    return sent + queued


def _count(session: Session, *conditions: object) -> int:
    return session.exec(select(func.count()).select_from(Allocation).where(*conditions)).one()  # type: ignore[arg-type]


def _open_item(session: Session, allocation: Allocation) -> ConsignmentItem | None:
    return session.exec(
        select(ConsignmentItem)
        .join(Consignment, Consignment.id == ConsignmentItem.consignment_id)  # type: ignore[arg-type]
        .where(
            ConsignmentItem.allocation_id == allocation.id,
            Consignment.status.in_([ConsignmentStatus.OPEN.value, ConsignmentStatus.IN_TRANSIT.value]),  # type: ignore[attr-defined]
        )
    ).first()


def _scanned(
    items: Sequence[tuple[ConsignmentItem, Device]], serials: Iterable[str], consignment: Consignment
) -> list[tuple[ConsignmentItem, Device]]:
    by_serial = {d.serial: (i, d) for i, d in items}
    wanted = list(dict.fromkeys(s.strip() for s in serials if s.strip()))
    if not wanted:
        raise InvalidInput(f"consignment {consignment.reference}: no device was scanned")
    stray = [s for s in wanted if s not in by_serial]
    if stray:
        raise GuardRefused(f"consignment {consignment.reference} does not contain {', '.join(stray)}")
    return [by_serial[s] for s in wanted]


def hand_over(
    session: Session,
    *,
    reference: str,
    scanned_serials: Sequence[str],
    actor: str,
    verifier: CertificateVerifier | None,
) -> list[CustodyEntry]:
    """The courier collects: every scanned device goes in transit; unscanned ones stay and are reported."""
    consignment = get_consignment(session, reference)
    if consignment.status != ConsignmentStatus.OPEN:
        raise Conflict(f"consignment {consignment.reference} is {consignment.status}: it was already handed over")
    scanned = _scanned(consignment_items(session, consignment), scanned_serials, consignment)
    manifest = get_document(session, consignment.manifest_document_id or 0)
    now = utc_now()
    evidence: dict[str, object] = {
        "consignment": consignment.reference,
        "courier": consignment.courier,
        "seals": [s for s in consignment.seal_numbers.split(",") if s],
        "manifest": document_ref(manifest),
        "scanned_by": actor,
    }
    entries = change_state(
        session,
        [
            TransitionRequest(
                d.id or 0, Event.DISPATCH, to_custodian=f"courier:{consignment.courier}", evidence=evidence
            )
            for _, d in scanned
        ],
        actor=actor,
        verifier=verifier,
    )
    for item, _device in scanned:
        item.handover_scanned_at = now
        _set_allocation(session, item.allocation_id, AllocationStatus.IN_TRANSIT)
        session.add(item)
    consignment.status = ConsignmentStatus.IN_TRANSIT.value
    consignment.handed_over_at = now
    session.add(consignment)
    session.flush()
    return entries


def deliver(
    session: Session,
    *,
    reference: str,
    recipient_name: str,
    signature: Upload,
    actor: str,
    delivered_at: datetime | None = None,
    scanned_serials: Sequence[str] | None = None,
) -> list[CustodyEntry]:
    """Proof of delivery: recipient name, signature, time; each scanned device goes to its officer."""
    consignment = get_consignment(session, reference)
    if consignment.status not in (ConsignmentStatus.IN_TRANSIT, ConsignmentStatus.FAILED):
        raise Conflict(f"consignment {consignment.reference} is {consignment.status}, not in transit")
    name = (recipient_name or "").strip()
    if not name:
        raise InvalidInput("proof of delivery needs the recipient's name")
    moment = delivered_at or clock.now()
    if moment.tzinfo is None:
        raise InvalidInput("the delivery time must carry a time zone")
    if moment > clock.now() + timedelta(minutes=5):
        raise InvalidInput("the delivery time is in the future")
    items = consignment_items(session, consignment)
    travelling = [(i, d) for i, d in items if i.handover_scanned_at and not i.delivery_scanned_at and not i.returned_at]
    if scanned_serials is None:
        chosen = travelling
    else:
        chosen = _scanned(items, scanned_serials, consignment)
        late = [d.serial for i, d in chosen if (i, d) not in travelling]
        if late:
            raise Conflict(f"consignment {consignment.reference}: {', '.join(late)} not in transit with the courier")
    if not chosen:
        raise Conflict(f"consignment {consignment.reference} has no device in transit")
    pod = store_document(session, DocumentKind.PROOF_OF_DELIVERY, signature, actor=actor)
    when = format_utc(moment)
    requests = []
    for item, device in chosen:
        allocation = get_allocation(session, item.allocation_id)
        officer = session.get(Officer, allocation.officer_id)
        assert officer is not None
        requests.append(
            TransitionRequest(
                device.id or 0,
                Event.DELIVER,
                to_custodian=officer_label(officer),
                evidence={
                    "consignment": consignment.reference,
                    "recipient_name": name,
                    "delivered_at": when,
                    "proof_of_delivery": document_ref(pod),
                    "officer": officer.staff_number,
                },
            )
        )
    entries = change_state(session, requests, actor=actor)
    for item, _device in chosen:
        item.delivery_scanned_at = when
        _set_allocation(session, item.allocation_id, AllocationStatus.ISSUED)
        session.add(item)
    consignment.delivered_at = when
    consignment.pod_recipient_name = name[:200]
    consignment.pod_document_id = pod.id
    still_out = [i for i, _ in travelling if i not in [c for c, _ in chosen]]
    consignment.status = (ConsignmentStatus.IN_TRANSIT if still_out else ConsignmentStatus.DELIVERED).value
    session.add(consignment)
    session.flush()
    return entries


def record_failed_delivery(session: Session, *, reference: str, reason: str, actor: str) -> Consignment:
    """A delivery attempt failed; the devices stay with the courier until they come back."""
    consignment = get_consignment(session, reference)
    if consignment.status != ConsignmentStatus.IN_TRANSIT:
        raise Conflict(f"consignment {consignment.reference} is {consignment.status}, not in transit")
    text = (reason or "").strip()
    if not text:
        raise InvalidInput("a failed delivery needs a reason")
    consignment.status = ConsignmentStatus.FAILED.value
    consignment.failed_at = utc_now()
    consignment.failure_reason = f"{text[:450]} (reported by {actor})"
    session.add(consignment)
    session.flush()
    return consignment


def return_to_factory(session: Session, *, reference: str, actor: str, location: str = "") -> list[CustodyEntry]:
    """The courier brings an undelivered consignment back: every device still out goes ``returned``."""
    consignment = get_consignment(session, reference)
    if consignment.status != ConsignmentStatus.FAILED:
        raise Conflict(f"consignment {consignment.reference} is {consignment.status}: record the failed delivery first")
    items = consignment_items(session, consignment)
    out = [(i, d) for i, d in items if i.handover_scanned_at and not i.delivery_scanned_at and not i.returned_at]
    if not out:
        raise Conflict(f"consignment {consignment.reference} has no device to return")
    entries = change_state(
        session,
        [
            TransitionRequest(
                d.id or 0,
                Event.UNDELIVERABLE,
                to_custodian=FACTORY_CUSTODIAN,
                location=location or None,
                evidence={"consignment": consignment.reference, "failure": consignment.failure_reason or ""},
            )
            for _, d in out
        ],
        actor=actor,
    )
    now = utc_now()
    for item, _device in out:
        item.returned_at = now
        _set_allocation(session, item.allocation_id, AllocationStatus.RETURNED)
        session.add(item)
    consignment.status = ConsignmentStatus.RETURNED.value
    consignment.returned_at = now
    session.add(consignment)
    session.flush()
    return entries


def exception_report(
    session: Session, *, overdue_days: int = DEFAULT_OVERDUE_DAYS, now: datetime | None = None
) -> list[ConsignmentException]:
    """Consignments not delivered within N days of hand-over, and devices with a missing scan."""
    if overdue_days < 0:
        raise InvalidInput("overdue days must not be negative")
    cutoff = format_utc((now or clock.now()) - timedelta(days=overdue_days))
    out: list[ConsignmentException] = []
    active = session.exec(
        select(Consignment).where(Consignment.status != ConsignmentStatus.OPEN.value).order_by(Consignment.reference)  # type: ignore[arg-type]
    ).all()
    for c in active:
        items = consignment_items(session, c)
        if c.status in (ConsignmentStatus.IN_TRANSIT, ConsignmentStatus.FAILED) and (c.handed_over_at or "") < cutoff:
            out.append(
                ConsignmentException(
                    c.reference, "overdue", f"handed over {c.handed_over_at}, not delivered within {overdue_days} days"
                )
            )
        for item, device in items:
            if item.handover_scanned_at is None:
                out.append(
                    ConsignmentException(
                        c.reference, "missing_handover_scan", "not scanned when the courier collected", device.serial
                    )
                )
            elif c.delivered_at and item.delivery_scanned_at is None and item.returned_at is None:
                out.append(
                    ConsignmentException(c.reference, "missing_delivery_scan", "not scanned at delivery", device.serial)
                )
    return out


def _set_allocation(session: Session, allocation_id: int, status: AllocationStatus) -> None:
    allocation = get_allocation(session, allocation_id)
    allocation.status = status.value
    session.add(allocation)
