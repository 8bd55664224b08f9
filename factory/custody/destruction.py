"""Destruction (typically of devices whose erase failed): one user requests it with evidence
(photo or document, stored and hashed), a different user witnesses it; only then the ``destroy``
transition runs, with the evidence hash and both names in the ledger.
"""

from __future__ import annotations

from sqlmodel import Session, select

from factory.custody.documents import DocumentKind, Upload, document_ref, store_document
from factory.custody.lookups import get_destruction, get_document
from factory.custody.models import DestructionRecord
from factory.custody.outcome import Outcome, saved
from factory.intake.views import get_device
from factory.kernel.clock import utc_now
from factory.kernel.config import Settings
from factory.kernel.errors import Conflict, GuardRefused, InvalidInput, InvalidTransition
from factory.kernel.lifecycle.states import Event, State
from factory.kernel.lifecycle.table import find_edge
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device
from factory.sanitisation.service import Witnessed, issue_destruction_certificates


def request_destruction(
    session: Session, *, serial: str, method: str, reason: str, evidence: Upload, actor: str
) -> Outcome[DestructionRecord]:
    """Ask for a device's destruction, with evidence; a second person must witness it.

    :raises NotFound: no such device.
    :raises InvalidTransition: the device cannot be destroyed from its state.
    :raises InvalidInput: no method or reason, or bad evidence.
    :raises Conflict: a request is already waiting for a witness.
    """
    device = get_device(session, serial)
    source = State(device.state) if device.state else None
    if find_edge(Event.DESTROY, source) is None:
        raise InvalidTransition(device.serial, device.state, str(Event.DESTROY))
    how, why = (method or "").strip(), (reason or "").strip()
    if not how or not why:
        raise InvalidInput("a destruction request names the method and the reason")
    pending = session.exec(
        select(DestructionRecord).where(
            DestructionRecord.device_id == device.id,
            DestructionRecord.destroyed_seq == None,  # noqa: E711
        )
    ).first()
    if pending is not None:
        raise Conflict(f"device {device.serial} already has destruction request {pending.id} awaiting a witness")
    doc = store_document(session, DocumentKind.DESTRUCTION_EVIDENCE, evidence, actor=actor)
    record = DestructionRecord(
        device_id=device.id or 0,
        method=how[:64],
        reason=why[:500],
        requested_by=actor,
        requested_at=utc_now(),
        evidence_document_id=doc.id or 0,
    )
    return saved(session, record)


def witness_destruction(
    session: Session, *, record_id: int, witness: str, settings: Settings | None = None
) -> Outcome[DestructionRecord]:
    """A second person witnesses the destruction: the ``destroy`` transition runs, and (with the
    site's ``settings``) each medium gets its signed destruction certificate.

    :raises NotFound: no such request.
    :raises Conflict: already witnessed.
    :raises GuardRefused: the witness requested it.
    """
    record = get_destruction(session, record_id)
    if record.destroyed_seq is not None:
        raise Conflict(f"destruction {record_id} was already witnessed by {record.witnessed_by}")
    if witness == record.requested_by:
        raise GuardRefused(f"destruction {record_id} needs a second person: {witness} requested it")
    doc = get_document(session, record.evidence_document_id)
    entries = change_state(
        session,
        [
            TransitionRequest(
                record.device_id,
                Event.DESTROY,
                evidence={
                    "destruction_id": record.id,
                    "method": record.method,
                    "reason": record.reason,
                    "evidence": document_ref(doc),
                },
            )
        ],
        actor=record.requested_by,
        witness=witness,
    )
    record.witnessed_by = witness
    record.destroyed_seq = entries[0].seq
    if settings is not None:
        witnessed = Witnessed(record.id or 0, record.method, record.reason, record.requested_by, witness,
                              (doc.sha256,), (entries[0].entry_hash, entries[0].seq))  # fmt: skip
        destroyed = session.get(Device, record.device_id)
        assert destroyed is not None  # devices are never deleted
        issue_destruction_certificates(session, settings, destroyed, witnessed)
    return saved(session, record, entries)
