"""WEEE disposal batches to a recycler.

open (an EWC code for whole discarded equipment) -> devices added (``add_to_disposal``: certified
devices only) or removed -> collected with a waste transfer note (all statutory fields, both
signatures; a hazardous EWC code needs a hazardous waste consignment note code, used on no other
batch) -> the recycler's recycling/destruction certificate is recorded and each device
it accounts for is ``dispose``d -> closed, only when every device in the batch is accounted for.
The batch's statuses and steps are in ``statuses.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlmodel import Session, col, select

from factory.custody.destinations import require_fit_for
from factory.custody.documents import DocumentKind, Upload, document_ref, store_document, store_pdf
from factory.custody.lookups import get_batch, get_document, get_party, linked, pick_scanned
from factory.custody.models import DisposalBatch, DisposalItem, EvidenceDocument
from factory.custody.outcome import Outcome, saved
from factory.custody.pdf import Party, WasteTransferNote, render_waste_transfer_note
from factory.custody.people import party_label
from factory.custody.statuses import BatchStep, change_status, require
from factory.custody.waste_note import (
    BATTERY_KINDS,
    DEVICE_WASTE_CODES,
    CheckedTransfer,
    WasteTransfer,
    carrier_tier,
    checked_ewc_code,
    checked_transfer,
    is_hazardous,
)
from factory.intake.views import get_device
from factory.kernel.clock import utc_now
from factory.kernel.errors import Conflict, GuardRefused, InvalidInput, NotFound
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device
from factory.kernel.models.parties import Custodian, CustodianKind

_SIC = re.compile(r"^\d{5}$")
Items = list[tuple[DisposalItem, Device]]
__all__ = ["WasteTransfer", "add_device", "close_batch", "collect", "open_batch", "record_recycler_certificate"]


def batch_devices(session: Session, batch: DisposalBatch) -> Items:
    """The devices in the batch (not taken out), by serial."""
    rows = session.exec(
        select(DisposalItem, Device)
        .join(Device, col(Device.id) == DisposalItem.device_id)
        .where(DisposalItem.batch_id == batch.id, DisposalItem.removed == False)  # noqa: E712
        .order_by(col(Device.serial))
    ).all()
    return [(item, device) for item, device in rows]


def open_batch(
    session: Session, *, recycler_reference: str, description: str, ewc_code: str, sic_code: str, actor: str
) -> Outcome[DisposalBatch]:
    """Open a batch for one recycler.

    :raises NotFound: no such recycler.
    :raises InvalidInput: the recycler has no address, no description, an EWC code that is not a List
        of Wastes entry for whole discarded electrical equipment, or a SIC code that is not five digits.
    """
    recycler = get_party(session, (CustodianKind.RECYCLER,), recycler_reference)
    if not recycler.address:
        raise InvalidInput(f"recycler {recycler.reference} has no address: the waste transfer note needs one")
    text = (description or "").strip()
    if not text:
        raise InvalidInput("a disposal batch needs a description of the waste")
    ewc, sic = checked_ewc_code(ewc_code), (sic_code or "").strip()
    if not _SIC.match(sic):
        raise InvalidInput(f"SIC code '{sic}' must be five digits")
    batch = DisposalBatch(
        recycler_id=recycler.id or 0,
        description=text[:500],
        ewc_code=ewc,
        sic_code=sic,
        created_by=actor,
        created_at=utc_now(),
    )
    change_status(batch, BatchStep.OPEN)
    return saved(session, batch)


def add_device(
    session: Session, *, batch_id: int, serial: str, actor: str, verifier: CertificateVerifier | None
) -> Outcome[DisposalBatch]:
    """Put a certified device into an open batch (``add_to_disposal``).

    :raises NotFound: no such batch or device.
    :raises Conflict: the batch is not open.
    :raises GuardRefused: the device is not certified for disposal (destinations.py).
    """
    # A battery does not make a device hazardous waste (lithium-ion is 16 06 05): the batch's code
    # is the transferor's classification; the flag only tells the note and the recycler.
    batch = _batch_for(session, batch_id, BatchStep.FILL, ", not open")
    device = get_device(session, serial)
    require_fit_for(session, device, verifier, "dispose")
    entries = change_state(
        session,
        [TransitionRequest(device.id or 0, Event.ADD_TO_DISPOSAL, evidence={"disposal_batch": batch.id})],
        actor=actor,
        verifier=verifier,
    )
    existing = session.exec(
        select(DisposalItem).where(DisposalItem.batch_id == batch.id, DisposalItem.device_id == device.id)
    ).first()
    item = existing or DisposalItem(batch_id=batch.id or 0, device_id=device.id or 0)
    item.removed = False
    session.add(item)
    if device.kind in BATTERY_KINDS:
        batch.contains_batteries = True
    return saved(session, batch, entries)


def remove_device(session: Session, *, batch_id: int, serial: str, reason: str, actor: str) -> Outcome[DisposalBatch]:
    """Take a device out of an open batch (``remove_from_disposal``).

    :raises NotFound: no such batch or device, or the device is not in the batch.
    :raises Conflict: the batch is not open.
    :raises InvalidInput: no reason.
    """
    batch = _batch_for(session, batch_id, BatchStep.FILL, ", not open")
    device = get_device(session, serial)
    item = session.exec(
        select(DisposalItem).where(
            DisposalItem.batch_id == batch.id,
            DisposalItem.device_id == device.id,
            DisposalItem.removed == False,  # noqa: E712
        )
    ).first()
    if item is None:
        raise NotFound(f"device {device.serial} is not in disposal batch {batch.id}")
    if not (reason or "").strip():
        raise InvalidInput("taking a device out of a disposal batch needs a reason")
    evidence = {"disposal_batch": batch.id, "reason": reason.strip()}
    entries = change_state(
        session, [TransitionRequest(device.id or 0, Event.REMOVE_FROM_DISPOSAL, evidence=evidence)], actor=actor
    )
    item.removed = True
    session.add(item)
    batch.contains_batteries = any(d.kind in BATTERY_KINDS for _, d in batch_devices(session, batch))
    return saved(session, batch, entries)


def collect(
    session: Session,
    *,
    batch_id: int,
    transfer: WasteTransfer,
    actor: str,
    site: str,
    verifier: CertificateVerifier | None,
) -> Outcome[DisposalBatch]:
    """The recycler collects: the signed waste transfer note is rendered, stored and hashed.

    :raises NotFound: no such batch.
    :raises Conflict: the batch is not open, or empty; or its consignment note code is already
        on another batch.
    :raises InvalidInput: a missing note field, a bad signature or the same image for both
        parties, a malformed carrier registration or consignment note code, a consignment note
        for non-hazardous waste, or a bad collection time.
    :raises GuardRefused: no waste hierarchy declaration, a hazardous EWC code without a hazardous
        waste consignment note code, or a device that is not certified for disposal.
    """
    batch = _batch_for(session, batch_id, BatchStep.COLLECT, ", not open")
    devices = batch_devices(session, batch)
    if not devices:
        raise Conflict(f"disposal batch {batch.id} is empty")
    checked = checked_transfer(batch, transfer)
    _refuse_reused_consignment_code(session, batch, checked.consignment_code)
    recycler = linked(session, Custodian, batch.recycler_id)
    note = _store_transfer_note(session, batch, devices, transfer, recycler, checked, actor=actor, site=site)
    # The hand-off to the recycler is a custody event for every device, with the note's hash.
    evidence = {"disposal_batch": batch.id, "waste_transfer_note": document_ref(note)}
    entries = _to_recycler(session, devices, Event.COLLECT, recycler, evidence, actor=actor, verifier=verifier)
    batch.containment = transfer.containment.strip()[:200]
    batch.place = transfer.place.strip()[:500]
    batch.hierarchy_declaration = True
    batch.transferor_name = transfer.transferor_name.strip()[:200]
    batch.transferee_name = recycler.name
    batch.carrier_name = transfer.carrier_name.strip()[:200]
    batch.carrier_registration = checked.carrier_registration[:64]
    batch.recycler_permit = transfer.recycler_permit.strip()[:64]
    batch.hazardous_note_reference = checked.consignment_code
    batch.collected_at = checked.collected_at
    batch.wtn_document_id = note.id
    change_status(batch, BatchStep.COLLECT)
    return saved(session, batch, entries, document=note)


def _refuse_reused_consignment_code(session: Session, batch: DisposalBatch, code: str | None) -> None:
    """:raises Conflict: another batch was consigned under the same code (each consignment has its own)."""
    if code is None:
        return
    other = session.exec(
        select(DisposalBatch.id).where(DisposalBatch.hazardous_note_reference == code, DisposalBatch.id != batch.id)
    ).first()
    if other is not None:
        raise Conflict(
            f"consignment note code {code} is already on disposal batch {other}: each consignment has its own"
        )


def _store_transfer_note(
    session: Session,
    batch: DisposalBatch,
    devices: Items,
    transfer: WasteTransfer,
    recycler: Custodian,
    checked: CheckedTransfer,
    *,
    actor: str,
    site: str,
) -> EvidenceDocument:
    ours = store_document(session, DocumentKind.SIGNATURE, transfer.transferor_signature, actor=actor)
    theirs = store_document(session, DocumentKind.SIGNATURE, transfer.transferee_signature, actor=actor)
    transferor = f"{transfer.transferor_name.strip()} ({site})"
    tier = carrier_tier(checked.carrier_registration)
    registered = f"registered waste carrier ({tier})" if tier else "registered waste carrier"
    pdf = render_waste_transfer_note(
        WasteTransferNote(
            batch_id=batch.id or 0,
            description=batch.description,
            ewc_code=batch.ewc_code,
            quantity=len(devices),
            containment=transfer.containment.strip(),
            transferor=Party(transferor, transfer.transferor_address.strip(), ours.sha256),
            transferee=Party(recycler.name, recycler.address, theirs.sha256),
            carrier=f"{transfer.carrier_name.strip()}, {registered}, registration {checked.carrier_registration}",
            recycler_permit=transfer.recycler_permit.strip(),
            sic_code=batch.sic_code,
            hierarchy_declaration=True,
            place=transfer.place.strip(),
            collected_at=checked.collected_at,
            contains_batteries=batch.contains_batteries,
            hazardous_note_reference=checked.consignment_code,
            device_serials=[d.serial for _, d in devices],
            hazardous=is_hazardous(batch.ewc_code),
            ewc_entry=DEVICE_WASTE_CODES.get(batch.ewc_code, ""),
        )
    )
    return store_pdf(session, DocumentKind.WASTE_TRANSFER_NOTE, pdf, f"wtn-batch-{batch.id}.pdf", actor=actor)


def record_recycler_certificate(
    session: Session,
    *,
    batch_id: int,
    serials: Sequence[str],
    actor: str,
    verifier: CertificateVerifier | None,
    reference: str | None = None,
    document: Upload | None = None,
) -> Outcome[DisposalBatch]:
    """Record the recycler's certificate (once per batch) and dispose of the devices it accounts for.

    Called again with further serials (and no reference) when the recycler accounts for the rest.

    :raises NotFound: no such batch.
    :raises Conflict: the batch is not collected, or has a different certificate already.
    :raises GuardRefused: no certificate recorded or given, a serial not in the batch, or a device guard.
    :raises InvalidInput: no device left to account for, or a bad certificate document.
    """
    batch = _batch_for(session, batch_id, BatchStep.ACCOUNT, ": only a collected batch can be accounted for")
    _record_certificate_ref(session, batch, (reference or "").strip() or None, document, actor=actor)
    by_serial = {d.serial: (i, d) for i, d in batch_devices(session, batch)}
    wanted = pick_scanned(by_serial, serials, f"disposal batch {batch.id}")
    chosen = [(i, d) for i, d in wanted if i.disposed_seq is None]
    if not chosen:
        raise InvalidInput(f"disposal batch {batch.id}: no device to account for")
    evidence: dict[str, object] = {
        "disposal_batch": batch.id,
        "recycler_certificate": batch.recycler_certificate_ref,
        "waste_transfer_note": document_ref(get_document(session, batch.wtn_document_id or 0)),
    }
    if batch.recycler_certificate_document_id is not None:
        certificate = get_document(session, batch.recycler_certificate_document_id)
        evidence["recycler_certificate_document"] = document_ref(certificate)
    if batch.hazardous_note_reference:
        evidence["hazardous_consignment_note"] = batch.hazardous_note_reference
    recycler = linked(session, Custodian, batch.recycler_id)
    entries = _to_recycler(session, chosen, Event.DISPOSE, recycler, evidence, actor=actor, verifier=verifier)
    return saved(session, batch, entries)


def _record_certificate_ref(
    session: Session, batch: DisposalBatch, ref: str | None, document: Upload | None, *, actor: str
) -> None:
    if batch.recycler_certificate_ref is None:
        if ref is None:
            raise GuardRefused(
                f"disposal batch {batch.id}: no recycler's recycling/destruction certificate recorded; "
                "devices cannot be disposed without one"
            )
        batch.recycler_certificate_ref = ref[:128]
        if document is not None:
            batch.recycler_certificate_document_id = store_document(
                session, DocumentKind.RECYCLER_CERTIFICATE, document, actor=actor
            ).id
    elif ref is not None and ref != batch.recycler_certificate_ref:
        raise Conflict(f"disposal batch {batch.id} already has recycler certificate {batch.recycler_certificate_ref}")


def close_batch(session: Session, *, batch_id: int, actor: str) -> Outcome[DisposalBatch]:
    """Close a collected batch once the recycler has accounted for every device in it.

    :raises NotFound: no such batch.
    :raises Conflict: the batch is not collected.
    :raises GuardRefused: a device is not accounted for.
    """
    batch = _batch_for(session, batch_id, BatchStep.CLOSE, ": only a collected batch can be closed")
    missing = [d.serial for i, d in batch_devices(session, batch) if i.disposed_seq is None]
    if missing:
        raise GuardRefused(
            f"disposal batch {batch.id} cannot close: {len(missing)} device(s) not accounted for by the recycler: "
            f"{', '.join(missing)}"
        )
    change_status(batch, BatchStep.CLOSE)
    batch.closed_at = utc_now()
    return saved(session, batch)


def _batch_for(session: Session, batch_id: int, step: BatchStep, refusal: str) -> DisposalBatch:
    """The batch, if the step is allowed from its status (else Conflict, ``refusal`` after its status)."""
    batch = get_batch(session, batch_id)
    require(batch, step, f"disposal batch {batch.id} is {batch.status}{refusal}")
    return batch


def _to_recycler(
    session: Session,
    items: Items,
    event: Event,
    recycler: Custodian,
    evidence: dict[str, object],
    *,
    actor: str,
    verifier: CertificateVerifier | None,
) -> list[CustodyEntry]:
    """Each device goes to the recycler (collected, then disposed); its item keeps the entry's seq."""
    to = party_label(recycler)
    for _item, device in items:
        require_fit_for(session, device, verifier, "dispose")
    requests = [TransitionRequest(d.id or 0, event, to_custodian=to, evidence=evidence) for _, d in items]
    entries = change_state(session, requests, actor=actor, verifier=verifier)
    for (item, _device), entry in zip(items, entries, strict=True):
        if event == Event.COLLECT:
            item.collected_seq = entry.seq
        else:
            item.disposed_seq = entry.seq
        session.add(item)
    return entries
