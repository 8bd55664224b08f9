"""Redistribution to external organisations (e.g. schools): only devices whose every storage
medium has a valid certificate that serves external reuse (the one rule in destinations.py), with
a PDF transfer note.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from factory.custody.destinations import require_fit_for
from factory.custody.documents import DocumentKind, document_ref, store_pdf
from factory.custody.lookups import get_party
from factory.custody.models import EvidenceDocument, Transfer, TransferItem
from factory.custody.outcome import Outcome
from factory.custody.pdf import TransferLine, TransferNote, render_transfer_note
from factory.custody.people import party_label
from factory.intake.views import get_device
from factory.kernel.clock import utc_now
from factory.kernel.errors import InvalidInput
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device
from factory.kernel.models.parties import Custodian, CustodianKind

RECIPIENT_KINDS = (CustodianKind.SCHOOL, CustodianKind.ORGANISATION)


def redistribute(
    session: Session,
    *,
    organisation_reference: str,
    serials: Sequence[str],
    actor: str,
    site: str,
    verifier: CertificateVerifier | None,
) -> Outcome[Transfer]:
    """Hand certified devices to a school or organisation, with a transfer note (``redistribute``).

    :raises NotFound: no such organisation or device.
    :raises InvalidInput: no devices, or a device listed twice.
    :raises GuardRefused: a device without valid certificates that serve external reuse.
    """
    organisation = get_party(session, RECIPIENT_KINDS, organisation_reference)
    wanted = [s.strip() for s in serials if s.strip()]
    if not wanted:
        raise InvalidInput("a transfer needs at least one device")
    if len(set(wanted)) != len(wanted):
        raise InvalidInput("a device is listed twice in the transfer")
    devices = [get_device(session, s) for s in wanted]
    lines = [_transfer_line(session, device, verifier) for device in devices]
    # The note needs the transfer id and the transfer row needs the note: reserve the id first.
    transfer = Transfer(organisation_id=organisation.id or 0, created_by=actor, created_at=utc_now())
    session.add(transfer)
    session.flush()
    note = _store_note(session, transfer, organisation, lines, actor=actor, site=site)
    transfer.note_document_id = note.id
    session.add(transfer)
    evidence = {"transfer_id": transfer.id, "organisation": organisation.reference, "transfer_note": document_ref(note)}
    entries = change_state(
        session,
        [
            TransitionRequest(
                device.id or 0,
                Event.REDISTRIBUTE,
                to_custodian=party_label(organisation),
                evidence={**evidence, "certificates": [cid for cid, _ in line.certificates]},
            )
            for device, line in zip(devices, lines, strict=True)
        ],
        actor=actor,
        verifier=verifier,
    )
    for device in devices:
        session.add(TransferItem(transfer_id=transfer.id or 0, device_id=device.id or 0))
    session.flush()
    return Outcome(transfer, entries, document=note)


def _transfer_line(session: Session, device: Device, verifier: CertificateVerifier | None) -> TransferLine:
    # The lifecycle guard's check plus the destination rule, done first so the note can list the certificates.
    certs = require_fit_for(session, device, verifier, "redistribute")
    return TransferLine(
        serial=device.serial,
        asset_tag=device.asset_tag or "",
        make_model=f"{device.make} {device.model}".strip(),
        certificates=[(c.id, c.digest_sha256) for c in sorted(certs, key=lambda c: c.id)],
    )


def _store_note(
    session: Session, transfer: Transfer, organisation: Custodian, lines: list[TransferLine], *, actor: str, site: str
) -> EvidenceDocument:
    pdf = render_transfer_note(
        TransferNote(
            transfer_id=transfer.id or 0,
            site=site,
            organisation_name=organisation.name,
            organisation_reference=organisation.reference,
            organisation_address=organisation.address,
            created_at=transfer.created_at,
            created_by=actor,
            lines=lines,
        )
    )
    return store_pdf(session, DocumentKind.TRANSFER_NOTE, pdf, f"transfer-{transfer.id}.pdf", actor=actor)
