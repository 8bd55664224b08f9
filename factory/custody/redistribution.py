"""Redistribution to external organisations (e.g. schools): only devices whose every storage
medium has a valid certificate naming the destination "external reuse", with a PDF transfer note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from factory.custody.documents import DocumentKind, document_ref, store_pdf
from factory.custody.models import EvidenceDocument, Transfer, TransferItem
from factory.custody.pdf import TransferLine, TransferNote, render_transfer_note
from factory.custody.people import get_party, party_label
from factory.intake.views import get_device
from factory.kernel.clock import utc_now
from factory.kernel.errors import InvalidInput
from factory.kernel.lifecycle.guards import CertificateVerifier, require_certified
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.parties import CustodianKind

EXTERNAL_REUSE = "external_reuse"
RECIPIENT_KINDS = (CustodianKind.SCHOOL, CustodianKind.ORGANISATION)


@dataclass(frozen=True)
class TransferResult:
    transfer: Transfer
    note: EvidenceDocument
    entries: list[CustodyEntry]


def redistribute(
    session: Session,
    *,
    organisation_reference: str,
    serials: Sequence[str],
    actor: str,
    site: str,
    verifier: CertificateVerifier | None,
) -> TransferResult:
    organisation = get_party(session, RECIPIENT_KINDS, organisation_reference)
    wanted = [s.strip() for s in serials if s.strip()]
    if not wanted:
        raise InvalidInput("a transfer needs at least one device")
    if len(set(wanted)) != len(wanted):
        raise InvalidInput("a device is listed twice in the transfer")
    devices = [get_device(session, s) for s in wanted]
    lines = []
    for device in devices:
        # The same check change_state makes, done first so the note can list the certificates.
        certs = require_certified(session, device, verifier, EXTERNAL_REUSE)
        lines.append(
            TransferLine(
                serial=device.serial,
                asset_tag=device.asset_tag or "",
                make_model=f"{device.make} {device.model}".strip(),
                certificates=[(c.id, c.digest_sha256) for c in sorted(certs, key=lambda c: c.id)],
            )
        )
    now = utc_now()
    # The note needs the transfer id and the transfer row needs the note: reserve the id first.
    transfer = Transfer(organisation_id=organisation.id or 0, created_by=actor, created_at=now)
    session.add(transfer)
    session.flush()
    pdf = render_transfer_note(
        TransferNote(
            transfer_id=transfer.id or 0,
            site=site,
            organisation_name=organisation.name,
            organisation_reference=organisation.reference,
            organisation_address=organisation.address,
            created_at=now,
            created_by=actor,
            lines=lines,
        )
    )
    note = store_pdf(session, DocumentKind.TRANSFER_NOTE, pdf, f"transfer-{transfer.id}.pdf", actor=actor)
    transfer.note_document_id = note.id
    session.add(transfer)
    entries = change_state(
        session,
        [
            TransitionRequest(
                device.id or 0,
                Event.REDISTRIBUTE,
                to_custodian=party_label(organisation),
                required_destination=EXTERNAL_REUSE,
                evidence={
                    "transfer_id": transfer.id,
                    "organisation": organisation.reference,
                    "transfer_note": document_ref(note),
                    "certificates": [cid for cid, _ in line.certificates],
                },
            )
            for device, line in zip(devices, lines, strict=True)
        ],
        actor=actor,
        verifier=verifier,
    )
    for device in devices:
        session.add(TransferItem(transfer_id=transfer.id or 0, device_id=device.id or 0))
    session.flush()
    return TransferResult(transfer=transfer, note=note, entries=entries)
