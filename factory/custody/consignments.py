"""Courier dispatch: packing a consignment of allocated devices, with its seals and its PDF
manifest. Courier dispatch is only for officers formally shielding: each officer's shielding
reference is recorded (``record_shielding``) before their devices may be packed, and the
per-wave cap (``courier_cap.py``) is checked. What happens after packing (hand-over, delivery,
failed delivery, return) is in ``courier_transit.py``; listings are reads, in ``views.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence

from sqlmodel import Session, col, select

from factory.custody.courier_cap import check_courier_cap
from factory.custody.documents import DocumentKind, store_pdf
from factory.custody.lookups import get_allocation, get_consignment, linked, pick_scanned
from factory.custody.manifest_pdf import Manifest, ManifestLine, render_manifest
from factory.custody.models import (
    Allocation,
    AllocationChannel,
    Consignment,
    ConsignmentItem,
    EvidenceDocument,
    Officer,
)
from factory.custody.outcome import Outcome, saved
from factory.custody.statuses import (
    ACTIVE_CONSIGNMENT,
    UNFINISHED_CONSIGNMENT,
    AllocationStep,
    ConsignmentStep,
    change_status,
    require,
)
from factory.custody.views import seal_list
from factory.kernel import limits
from factory.kernel.clock import utc_now
from factory.kernel.errors import Conflict, GuardRefused, InvalidInput
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
    shielding: Mapping[str, str] | None = None,
) -> Outcome[Consignment]:
    """Group courier allocations into a consignment, sealed, and render its manifest. No state changes yet.

    ``shielding`` maps staff numbers to the reference of the officer's formal shielding (recorded
    on the officer; an officer recorded before needs none).

    :raises InvalidInput: no or repeated allocations or seals, missing courier or recipient, or an
        allocation that is not a courier allocation to an officer.
    :raises NotFound: no such allocation.
    :raises Conflict: an allocation is not ``allocated`` or already in an unfinished consignment,
        or a seal is on another consignment still out.
    :raises GuardRefused: an officer is not recorded as formally shielding, an allocation
        belongs to no wave, or a wave's courier cap would be exceeded.
    """
    if not allocation_ids:
        raise InvalidInput("a consignment needs at least one device")
    if len(set(allocation_ids)) != len(allocation_ids):
        raise InvalidInput("an allocation is listed twice in the consignment")
    courier_name, name, address = (v.strip() for v in (courier or "", recipient_name or "", recipient_address or ""))
    if not courier_name or not name or not address:
        raise InvalidInput("a consignment names the courier, the recipient and the delivery address")
    seals = packed_seals(session, seal_numbers)
    allocations = [get_allocation(session, i) for i in allocation_ids]
    for allocation in allocations:
        _refuse_unless_consignable(session, allocation)
    _check_shielding(session, allocations, shielding or {}, actor)
    check_courier_cap(session, allocations)
    consignment = Consignment(
        reference=f"CN-{secrets.token_hex(4).upper()}",
        courier=courier_name[:200],
        recipient_name=name[:200],
        recipient_address=address[:500],
        seal_numbers=",".join(seals),
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


def packed_seals(session: Session, seal_numbers: Iterable[str]) -> list[str]:
    """The seal numbers scanned at packing: at least one, each once, none on a consignment still out.

    :raises InvalidInput: no seal, a seal scanned twice, a malformed seal number.
    :raises Conflict: a seal is on another consignment not yet delivered or returned.
    """
    seals = [s.strip() for s in seal_numbers if s and s.strip()]
    if not seals:
        raise InvalidInput("scan the seal number of every bag in the consignment")
    for seal in seals:
        if problem := limits.text_problem("a seal number", seal, 64):
            raise InvalidInput(problem)
        if "," in seal:
            raise InvalidInput(f"seal number '{seal[:40]}' must not contain a comma")
    twice = sorted({s for s in seals if seals.count(s) > 1})
    if twice:
        raise InvalidInput(f"seal {', '.join(twice)} is scanned twice: each bag has its own seal")
    if len(",".join(seals)) > 500:
        raise InvalidInput("too many seal numbers for one consignment")
    out = session.exec(select(Consignment).where(col(Consignment.status).in_(ACTIVE_CONSIGNMENT))).all()
    for other in out:
        reused = sorted(set(seals) & set(seal_list(other)))
        if reused:
            raise Conflict(f"seal {', '.join(reused)} is already on consignment {other.reference}")
    return seals


def record_shielding(session: Session, officer: Officer, reference: str, actor: str) -> None:
    """Record that the officer is formally shielding, with the reference of the decision.

    :raises InvalidInput: an empty or malformed reference.
    """
    text = (reference or "").strip()
    if problem := limits.text_problem("a shielding reference", text, 64, required=True):
        raise InvalidInput(problem)
    officer.shielding_reference = text
    officer.shielding_recorded_by = actor
    officer.shielding_recorded_at = utc_now()
    session.add(officer)


def _check_shielding(
    session: Session, allocations: Sequence[Allocation], shielding: Mapping[str, str], actor: str
) -> None:
    """Record the shielding references given; refuse an officer who is not recorded as shielding."""
    officers = {a.officer_id: linked(session, Officer, a.officer_id) for a in allocations}
    for officer in officers.values():
        given = (shielding.get(officer.staff_number) or "").strip()
        if given and given != officer.shielding_reference:
            record_shielding(session, officer, given, actor)
    unshielded = sorted(o.staff_number for o in officers.values() if not o.shielding_reference)
    if unshielded:
        raise GuardRefused(
            f"officer {', '.join(unshielded)} is not recorded as formally shielding: courier dispatch is only "
            "for officers formally shielding (record the shielding reference)"
        )


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


# ---------------------------------------------------------------- helpers of the later steps


def scanned_items(items: Items, serials: Iterable[str], consignment: Consignment) -> Items:
    """The consignment's devices that were scanned, in scan order.

    :raises InvalidInput: nothing scanned. :raises GuardRefused: a serial not in the consignment.
    """
    chosen = pick_scanned({d.serial: (i, d) for i, d in items}, serials, f"consignment {consignment.reference}")
    if not chosen:
        raise InvalidInput(f"consignment {consignment.reference}: no device was scanned")
    return chosen


def with_courier(items: Items) -> Items:
    """Devices the courier collected and has neither delivered nor brought back."""
    return [(i, d) for i, d in items if i.handover_scanned_at and not i.delivery_scanned_at and not i.returned_at]


def consignment_for(session: Session, reference: str, step: ConsignmentStep, refusal: str) -> Consignment:
    """The consignment, if the step is allowed from its status (else Conflict, ``refusal`` after its status)."""
    consignment = get_consignment(session, reference)
    require(consignment, step, f"consignment {consignment.reference} is {consignment.status}{refusal}")
    return consignment


def check_seals(consignment: Consignment, scanned: Iterable[str], moment: str) -> list[str]:
    """The seals scanned at hand-over or delivery must be exactly the seals packed.

    :raises InvalidInput: no seal scanned.
    :raises GuardRefused: a seal not on this consignment (a bag resealed or swapped), or a packed
        seal not scanned (named).
    """
    seals = list(dict.fromkeys(s.strip() for s in scanned if s and s.strip()))
    if not seals:
        raise InvalidInput(f"scan the seal of every bag at {moment}")
    packed = seal_list(consignment)
    stray = [s for s in seals if s not in packed]
    if stray:
        raise GuardRefused(
            f"seal {', '.join(stray)} is not a seal of consignment {consignment.reference} "
            f"(packed with {', '.join(packed)}): do not accept a bag whose seal was changed"
        )
    missing = [s for s in packed if s not in seals]
    if missing:
        raise GuardRefused(f"seal {', '.join(missing)} of consignment {consignment.reference} not scanned at {moment}")
    return seals


# Per step: the item's scan time and the consignment's time that the step records.
_STAMPS = {
    AllocationStep.HAND_OVER: ("handover_scanned_at", "handed_over_at"),
    AllocationStep.DELIVER: ("delivery_scanned_at", "delivered_at"),
    AllocationStep.RETURN: ("returned_at", "returned_at"),
}


def stamp(session: Session, consignment: Consignment, items: Items, step: AllocationStep, when: str) -> None:
    """Record when the step happened to each device and to the consignment; each allocation follows its device."""
    item_field, consignment_field = _STAMPS[step]
    for item, _device in items:
        setattr(item, item_field, when)
        allocation = get_allocation(session, item.allocation_id)
        change_status(allocation, step)
        session.add(allocation)
        session.add(item)
    setattr(consignment, consignment_field, when)
