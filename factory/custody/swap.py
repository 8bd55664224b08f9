"""Contingency pool walk-in swap: a ready spare out to the officer and the faulty device back
into the returned pipeline, in one ``change_state`` call (both swap entries or neither).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from factory.custody.acceptance import Acceptance, record_acceptance
from factory.custody.allocation import get_wave, mark_returned
from factory.custody.models import AcceptanceRecord, Allocation, AllocationChannel, AllocationStatus
from factory.custody.people import get_officer, officer_label
from factory.intake.views import FACTORY_CUSTODIAN, get_device
from factory.kernel.clock import utc_now
from factory.kernel.errors import GuardRefused, InvalidInput
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.custody_entry import CustodyEntry


@dataclass(frozen=True)
class SwapResult:
    entries: list[CustodyEntry]
    acceptance: AcceptanceRecord
    allocation: Allocation


def walk_in_swap(
    session: Session,
    *,
    staff_number: str,
    faulty_serial: str,
    spare_serial: str,
    fault: str,
    acceptance: Acceptance,
    actor: str,
    verifier: CertificateVerifier | None,
    wave: str | None = None,
) -> SwapResult:
    officer = get_officer(session, staff_number)
    faulty = get_device(session, faulty_serial)
    spare = get_device(session, spare_serial)
    fault_text = (fault or "").strip()
    if not fault_text:
        raise InvalidInput("a walk-in swap records the fault")
    if faulty.id == spare.id:
        raise InvalidInput("the spare and the faulty device are the same device")
    if faulty.custodian != officer_label(officer):
        raise GuardRefused(
            f"device {faulty.serial} is held by '{faulty.custodian or 'nobody'}', not officer {officer.staff_number}"
        )
    if spare.kind != faulty.kind:
        raise InvalidInput(f"spare {spare.serial} is a {spare.kind}; the faulty device is a {faulty.kind}")
    wave_row = get_wave(session, wave) if wave else None
    context: dict[str, object] = {"wave": wave_row.name} if wave_row else {}
    record = record_acceptance(
        session, device=spare, officer=officer, acceptance=acceptance, context={"swap_for": faulty.serial}, actor=actor
    )
    entries = change_state(
        session,
        [
            TransitionRequest(
                spare.id or 0,
                Event.SWAP,
                to_custodian=officer_label(officer),
                evidence={
                    "officer": officer.staff_number,
                    "swap_for": faulty.serial,
                    "fault": fault_text,
                    "acceptance": {"record_id": record.id, "sha256": record.record_sha256, "method": record.method},
                    **context,
                },
            ),
            TransitionRequest(
                faulty.id or 0,
                Event.SWAP,
                to_custodian=FACTORY_CUSTODIAN,
                evidence={"officer": officer.staff_number, "swapped_for": spare.serial, "fault": fault_text, **context},
            ),
        ],
        actor=actor,
        verifier=verifier,
    )
    mark_returned(session, faulty.id or 0)
    spare_entry = next(e for e in entries if e.device_id == spare.id)
    # The spare's hand-over is recorded as an issued allocation, so waves and "who holds what" see it.
    allocation = Allocation(
        device_id=spare.id or 0,
        officer_id=officer.id,
        wave_id=wave_row.id if wave_row else None,
        channel=AllocationChannel.IN_PERSON.value,
        status=AllocationStatus.ISSUED.value,
        device_kind=spare.kind,
        allocated_seq=spare_entry.seq,
        created_by=actor,
        created_at=utc_now(),
    )
    session.add(allocation)
    session.flush()
    return SwapResult(entries=entries, acceptance=record, allocation=allocation)
