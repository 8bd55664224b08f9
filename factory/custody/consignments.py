"""Courier dispatch: consignments of allocated devices with a PDF manifest, the hand-over scan
when the courier collects (``dispatch``), proof of delivery (``deliver``), failed delivery and
return to the factory (``undeliverable``). The per-wave cap is in ``courier_cap.py``; listings
and the exception report are reads, in ``views.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from factory.custody.courier_cap import check_courier_cap
from factory.custody.documents import DocumentKind, Upload, document_ref, store_document, store_pdf
from factory.custody.lookups import get_allocation, get_consignment, get_document, linked, pick_scanned
from factory.custody.models import (
    Allocation,
    AllocationChannel,
    Consignment,
    ConsignmentItem,
    EvidenceDocument,
    Officer,
)
from factory.custody.outcome import Outcome, saved
from factory.custody.pdf import Manifest, ManifestLine, render_manifest
from factory.custody.people import officer_label
from factory.custody.statuses import (
    UNFINISHED_CONSIGNMENT,
    AllocationStep,
    ConsignmentStep,
    change_status,
    require,
)
from factory.custody.views import consignment_items, seal_list
from factory.intake.views import FACTORY_CUSTODIAN
from factory.kernel import clock
from factory.kernel.clock import format_utc, utc_now
from factory.kernel.errors import Conflict, InvalidInput
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device

Items = list[tuple[ConsignmentItem, Device]]


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
) -> Outcome[Consignment]:
    """Group courier allocations into a consignment and render its manifest. No state changes yet.

    :raises InvalidInput: no or repeated allocations, missing courier or recipient, or an
        allocation that is not a courier allocation to an officer.
    :raises NotFound: no such allocation.
    :raises Conflict: an allocation is not ``allocated`` or already in an unfinished consignment.
    :raises GuardRefused: the wave's courier cap would be exceeded.
    """
    if not allocation_ids:
        raise InvalidInput("a consignment needs at least one device")
    if len(set(allocation_ids)) != len(allocation_ids):
        raise InvalidInput("an allocation is listed twice in the consignment")
    courier_name, name, address = (v.strip() for v in (courier or "", recipient_name or "", recipient_address or ""))
    if not courier_name or not name or not address:
        raise InvalidInput("a consignment names the courier, the recipient and the delivery address")
    seals = [s.strip() for s in seal_numbers if s.strip()]
    allocations = [get_allocation(session, i) for i in allocation_ids]
    for allocation in allocations:
        _refuse_unless_consignable(session, allocation)
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
    change_status(consignment, ConsignmentStep.CREATE)
    session.add(consignment)
    session.flush()
    for allocation in allocations:
        session.add(
            ConsignmentItem(
                consignment_id=consignment.id or 0, allocation_id=allocation.id or 0, device_id=allocation.device_id
            )
        )
    doc = _store_manifest(session, consignment, allocations, seals, actor=actor, site=site)
    consignment.manifest_document_id = doc.id
    return saved(session, consignment, document=doc)


def _refuse_unless_consignable(session: Session, allocation: Allocation) -> None:
    if allocation.channel != AllocationChannel.COURIER or allocation.officer_id is None:
        raise InvalidInput(f"allocation {allocation.id} is not a courier allocation to an officer")
    require(allocation, AllocationStep.CONSIGN, f"allocation {allocation.id} is {allocation.status}, not allocated")
    in_consignment = session.exec(
        select(ConsignmentItem)
        .join(Consignment, col(Consignment.id) == ConsignmentItem.consignment_id)
        .where(ConsignmentItem.allocation_id == allocation.id, col(Consignment.status).in_(UNFINISHED_CONSIGNMENT))
    ).first()
    if in_consignment is not None:
        raise Conflict(f"allocation {allocation.id} is already in an open consignment")


def _store_manifest(
    session: Session,
    consignment: Consignment,
    allocations: Sequence[Allocation],
    seals: list[str],
    *,
    actor: str,
    site: str,
) -> EvidenceDocument:
    lines = []
    for allocation in allocations:
        device = linked(session, Device, allocation.device_id)
        officer = linked(session, Officer, allocation.officer_id)
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
    return store_pdf(session, DocumentKind.MANIFEST, pdf, f"{consignment.reference}-manifest.pdf", actor=actor)


def _scanned(items: Items, serials: Iterable[str], consignment: Consignment) -> Items:
    chosen = pick_scanned({d.serial: (i, d) for i, d in items}, serials, f"consignment {consignment.reference}")
    if not chosen:
        raise InvalidInput(f"consignment {consignment.reference}: no device was scanned")
    return chosen


def _with_courier(items: Items) -> Items:
    """Devices the courier collected and has neither delivered nor brought back."""
    return [(i, d) for i, d in items if i.handover_scanned_at and not i.delivery_scanned_at and not i.returned_at]


def hand_over(
    session: Session,
    *,
    reference: str,
    scanned_serials: Sequence[str],
    actor: str,
    verifier: CertificateVerifier | None,
) -> Outcome[Consignment]:
    """The courier collects: every scanned device goes in transit; unscanned ones stay and are reported.

    :raises NotFound: no such consignment.
    :raises Conflict: it was already handed over.
    :raises InvalidInput: nothing scanned.
    :raises GuardRefused: a scanned device is not in the consignment, or a device guard refuses.
    """
    consignment = _consignment_for(session, reference, ConsignmentStep.HAND_OVER, ": it was already handed over")
    scanned = _scanned(consignment_items(session, consignment), scanned_serials, consignment)
    manifest = get_document(session, consignment.manifest_document_id or 0)
    now = utc_now()
    evidence: dict[str, object] = {
        "consignment": consignment.reference,
        "courier": consignment.courier,
        "seals": seal_list(consignment),
        "manifest": document_ref(manifest),
        "scanned_by": actor,
    }
    to = f"courier:{consignment.courier}"
    entries = change_state(
        session,
        [TransitionRequest(d.id or 0, Event.DISPATCH, to_custodian=to, evidence=evidence) for _, d in scanned],
        actor=actor,
        verifier=verifier,
    )
    _stamp(session, consignment, scanned, AllocationStep.HAND_OVER, now)
    change_status(consignment, ConsignmentStep.HAND_OVER)
    return saved(session, consignment, entries)


def deliver(
    session: Session,
    *,
    reference: str,
    recipient_name: str,
    signature: Upload,
    actor: str,
    delivered_at: datetime | None = None,
    scanned_serials: Sequence[str] | None = None,
) -> Outcome[Consignment]:
    """Proof of delivery: recipient name, signature, time; each scanned device goes to its officer.

    :raises NotFound: no such consignment.
    :raises Conflict: not in transit, or a scanned device is not with the courier.
    :raises InvalidInput: no recipient name, a time without zone or in the future, a bad signature.
    :raises GuardRefused: a scanned device is not in the consignment.
    """
    consignment = _consignment_for(session, reference, ConsignmentStep.DELIVER, ", not in transit")
    name = (recipient_name or "").strip()
    if not name:
        raise InvalidInput("proof of delivery needs the recipient's name")
    when = format_utc(_delivery_moment(delivered_at))
    travelling, chosen = _delivered_items(session, consignment, scanned_serials)
    pod = store_document(session, DocumentKind.PROOF_OF_DELIVERY, signature, actor=actor)
    evidence = {"consignment": consignment.reference, "recipient_name": name, "delivered_at": when,
                "proof_of_delivery": document_ref(pod)}  # fmt: skip
    requests = []
    for item, device in chosen:
        officer = linked(session, Officer, get_allocation(session, item.allocation_id).officer_id)
        requests.append(
            TransitionRequest(
                device.id or 0,
                Event.DELIVER,
                to_custodian=officer_label(officer),
                evidence={**evidence, "officer": officer.staff_number},
            )
        )
    entries = change_state(session, requests, actor=actor)
    _stamp(session, consignment, chosen, AllocationStep.DELIVER, when)
    consignment.pod_recipient_name = name[:200]
    consignment.pod_document_id = pod.id
    still_out = [i for i, _ in travelling if i not in [c for c, _ in chosen]]
    change_status(consignment, ConsignmentStep.DELIVER_PART if still_out else ConsignmentStep.DELIVER)
    return saved(session, consignment, entries)


def _delivery_moment(delivered_at: datetime | None) -> datetime:
    moment = delivered_at or clock.now()
    if moment.tzinfo is None:
        raise InvalidInput("the delivery time must carry a time zone")
    if moment > clock.now() + timedelta(minutes=5):
        raise InvalidInput("the delivery time is in the future")
    return moment


def _delivered_items(
    session: Session, consignment: Consignment, scanned_serials: Sequence[str] | None
) -> tuple[Items, Items]:
    """The devices with the courier, and those of them being delivered (all, or the scanned ones)."""
    items = consignment_items(session, consignment)
    travelling = _with_courier(items)
    if scanned_serials is None:
        chosen = travelling
    else:
        chosen = _scanned(items, scanned_serials, consignment)
        late = [d.serial for i, d in chosen if (i, d) not in travelling]
        if late:
            raise Conflict(f"consignment {consignment.reference}: {', '.join(late)} not in transit with the courier")
    if not chosen:
        raise Conflict(f"consignment {consignment.reference} has no device in transit")
    return travelling, chosen


def record_failed_delivery(session: Session, *, reference: str, reason: str, actor: str) -> Outcome[Consignment]:
    """A delivery attempt failed; the devices stay with the courier until they come back.

    :raises NotFound: no such consignment.
    :raises Conflict: not in transit.
    :raises InvalidInput: no reason.
    """
    consignment = _consignment_for(session, reference, ConsignmentStep.FAIL, ", not in transit")
    text = (reason or "").strip()
    if not text:
        raise InvalidInput("a failed delivery needs a reason")
    change_status(consignment, ConsignmentStep.FAIL)
    consignment.failed_at = utc_now()
    consignment.failure_reason = f"{text[:450]} (reported by {actor})"
    return saved(session, consignment)


def return_to_factory(session: Session, *, reference: str, actor: str, location: str = "") -> Outcome[Consignment]:
    """The courier brings an undelivered consignment back: every device still out goes ``returned``.

    :raises NotFound: no such consignment.
    :raises Conflict: no failed delivery recorded, or no device to return.
    """
    consignment = _consignment_for(session, reference, ConsignmentStep.RETURN, ": record the failed delivery first")
    out = _with_courier(consignment_items(session, consignment))
    if not out:
        raise Conflict(f"consignment {consignment.reference} has no device to return")
    evidence = {"consignment": consignment.reference, "failure": consignment.failure_reason or ""}
    entries = change_state(
        session,
        [
            TransitionRequest(d.id or 0, Event.UNDELIVERABLE, to_custodian=FACTORY_CUSTODIAN,
                              location=location or None, evidence=evidence)
            for _, d in out
        ],
        actor=actor,
    )  # fmt: skip
    _stamp(session, consignment, out, AllocationStep.RETURN, utc_now())
    change_status(consignment, ConsignmentStep.RETURN)
    return saved(session, consignment, entries)


def _consignment_for(session: Session, reference: str, step: ConsignmentStep, refusal: str) -> Consignment:
    """The consignment, if the step is allowed from its status (else Conflict, ``refusal`` after its status)."""
    consignment = get_consignment(session, reference)
    require(consignment, step, f"consignment {consignment.reference} is {consignment.status}{refusal}")
    return consignment


# Per step: the item's scan time and the consignment's time that the step records.
_STAMPS = {
    AllocationStep.HAND_OVER: ("handover_scanned_at", "handed_over_at"),
    AllocationStep.DELIVER: ("delivery_scanned_at", "delivered_at"),
    AllocationStep.RETURN: ("returned_at", "returned_at"),
}


def _stamp(session: Session, consignment: Consignment, items: Items, step: AllocationStep, when: str) -> None:
    """Record when the step happened to each device and to the consignment; each allocation follows its device."""
    item_field, consignment_field = _STAMPS[step]
    for item, _device in items:
        setattr(item, item_field, when)
        allocation = get_allocation(session, item.allocation_id)
        change_status(allocation, step)
        session.add(allocation)
        session.add(item)
    setattr(consignment, consignment_field, when)
