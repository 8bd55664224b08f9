"""Contingency pool walk-in swap: a ready spare from the Tech Bar's pool (pool.py) out to the
officer and the faulty device back into the returned pipeline, in one ``change_state`` call (both
swap entries or neither).
"""

from __future__ import annotations

from sqlmodel import Session

from factory.custody.acceptance import Acceptance, acceptance_ref, record_acceptance
from factory.custody.allocation import mark_returned
from factory.custody.lookups import get_officer, get_wave
from factory.custody.models import Allocation, AllocationChannel, Officer, Wave
from factory.custody.outcome import Outcome, stored
from factory.custody.people import officer_label
from factory.custody.pool import take_for_swap
from factory.custody.statuses import AllocationStep, change_status
from factory.intake.views import FACTORY_CUSTODIAN, get_device
from factory.kernel.clock import utc_now
from factory.kernel.errors import GuardRefused, InvalidInput
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device


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
) -> Outcome[Allocation]:
    """Swap an officer's faulty device for a ready spare at the counter.

    :raises NotFound: no such officer, device or wave.
    :raises InvalidInput: no fault, the same device twice, different kinds, or a bad acceptance.
    :raises GuardRefused: the faulty device is not the officer's, the spare is not in a contingency
        pool, or the acceptance is refused.
    """
    officer = get_officer(session, staff_number)
    faulty, spare = get_device(session, faulty_serial), get_device(session, spare_serial)
    fault_text = (fault or "").strip()
    _check_swap(officer, faulty, spare, fault_text)
    wave_row = get_wave(session, wave) if wave else None
    pool = take_for_swap(session, spare)
    context: dict[str, object] = {"contingency_pool": f"{pool.site}/{pool.kind}"}
    if wave_row:
        context["wave"] = wave_row.name
    record = record_acceptance(
        session, device=spare, officer=officer, acceptance=acceptance, context={"swap_for": faulty.serial}, actor=actor
    )
    common = {"officer": officer.staff_number, "fault": fault_text, **context}
    spare_evidence = {"swap_for": faulty.serial, "acceptance": acceptance_ref(record), **common}
    out = TransitionRequest(spare.id or 0, Event.SWAP, to_custodian=officer_label(officer), evidence=spare_evidence)
    back_evidence = {"swapped_for": spare.serial, **common}
    back = TransitionRequest(faulty.id or 0, Event.SWAP, to_custodian=FACTORY_CUSTODIAN, evidence=back_evidence)
    entries = change_state(session, [out, back], actor=actor, verifier=verifier)
    mark_returned(session, faulty.id or 0)
    spare_entry = next(e for e in entries if e.device_id == spare.id)
    allocation = _spare_allocation(session, spare, officer, wave_row, spare_entry.seq, actor)
    return Outcome(allocation, entries, acceptance=record, handed_over=spare.serial)


def _check_swap(officer: Officer, faulty: Device, spare: Device, fault_text: str) -> None:
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


def _spare_allocation(
    session: Session, spare: Device, officer: Officer, wave: Wave | None, seq: int, actor: str
) -> Allocation:
    """The spare's hand-over is recorded as an issued allocation, so waves and "who holds what" see it."""
    allocation = Allocation(
        device_id=spare.id or 0,
        officer_id=officer.id,
        wave_id=wave.id if wave else None,
        channel=AllocationChannel.IN_PERSON.value,
        device_kind=spare.kind,
        allocated_seq=seq,
        created_by=actor,
        created_at=utc_now(),
    )
    change_status(allocation, AllocationStep.SWAP)
    return stored(session, allocation)
