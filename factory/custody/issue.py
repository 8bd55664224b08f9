"""Issuing an allocated device to an officer in person.

A new device goes out only in exchange for the officer's old one, scanned back in the same
``change_state`` call (issue + return: both entries or neither). Without an old device the issue
needs an exception: a reason from one user and approval by a different user (four eyes), used
once. The officer's acceptance is stored and its hash goes into the issue entry.

The same exception lets a courier deliver an allocated device with no old device collected (a new
starter has none): ``usable_exceptions`` finds the approved, unused ones for a delivery.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from factory.custody.acceptance import Acceptance, acceptance_ref, record_acceptance
from factory.custody.allocation import mark_returned
from factory.custody.lookups import get_allocation, get_approval, linked
from factory.custody.models import (
    Allocation,
    AllocationChannel,
    Approval,
    ApprovalKind,
    Officer,
    Wave,
)
from factory.custody.outcome import Outcome, saved
from factory.custody.people import officer_label
from factory.custody.personalisation import refuse_unless_personalised
from factory.custody.statuses import AllocationStep, change_status, require
from factory.intake.views import FACTORY_CUSTODIAN, get_device
from factory.kernel.clock import utc_now
from factory.kernel.errors import Conflict, GuardRefused, InvalidInput
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device

# The allocations handed to their officer by a person (at the counter or on the doorstep): the
# ones that take an old device back, or else go under an exception.
EXCHANGED_CHANNELS = frozenset({AllocationChannel.IN_PERSON.value, AllocationChannel.COURIER.value})
_HANDED = {AllocationChannel.IN_PERSON.value: "in person", AllocationChannel.COURIER.value: "by courier"}


def request_exception(session: Session, *, allocation_id: int, reason: str, requested_by: str) -> Outcome[Approval]:
    """Ask to issue (or deliver) without taking an old device back; a different user must approve it.

    :raises NotFound: no such allocation.
    :raises InvalidInput: not an in-person or courier allocation to an officer, or no reason.
    """
    allocation = _allocation_to_officer(session, allocation_id, EXCHANGED_CHANNELS)
    text = (reason or "").strip()
    if not text:
        raise InvalidInput("an exception to the exchange rule needs a reason")
    approval = Approval(
        kind=ApprovalKind.ISSUE_WITHOUT_EXCHANGE.value,
        allocation_id=allocation.id or 0,
        reason=text[:500],
        requested_by=requested_by,
        requested_at=utc_now(),
    )
    return saved(session, approval)


def approve_exception(session: Session, *, approval_id: int, approver: str) -> Outcome[Approval]:
    """Approve a request to issue without exchange, as a second user.

    :raises NotFound: no such request.
    :raises Conflict: already approved.
    :raises GuardRefused: the approver asked for it.
    """
    approval = get_approval(session, approval_id)
    if approval.approved_by is not None:
        raise Conflict(f"exception {approval_id} was already approved by {approval.approved_by}")
    if approver == approval.requested_by:
        raise GuardRefused(
            f"exception {approval_id} needs a second user: {approver} asked for it, so cannot approve it"
        )
    approval.approved_by = approver
    approval.approved_at = utc_now()
    return saved(session, approval)


def issue_device(
    session: Session,
    *,
    allocation_id: int,
    acceptance: Acceptance,
    actor: str,
    verifier: CertificateVerifier | None,
    old_serial: str | None = None,
    approval_id: int | None = None,
) -> Outcome[Allocation]:
    """Hand an allocated device to its officer, taking the old one back in the same transaction.

    :raises NotFound: no such allocation, old device or exception.
    :raises Conflict: the allocation is not ``allocated``.
    :raises GuardRefused: no exchange and no usable exception, the old device is not the officer's, or
        the officer has assistive-technology needs and the device's personalisation QA has not passed.
    :raises InvalidInput: both an old device and an exception, or a bad acceptance.
    """
    allocation = _in_person_allocation(session, allocation_id)
    require(allocation, AllocationStep.ISSUE, f"allocation {allocation_id} is {allocation.status}, not allocated")
    officer, device = linked(session, Officer, allocation.officer_id), linked(session, Device, allocation.device_id)
    refuse_unless_personalised(session, allocation, officer, device)
    old, approval = _exchange_or_exception(session, allocation, device, officer, old_serial, approval_id, actor)
    context = _wave_context(session, allocation)
    evidence: dict[str, object] = {"allocation_id": allocation.id, "officer": officer.staff_number, **context}
    if old is not None:
        evidence["exchange_for"] = old.serial
    elif approval is not None:
        evidence["exception"] = exception_ref(approval)
    record = record_acceptance(
        session, device=device, officer=officer, acceptance=acceptance, context={"allocation_id": allocation.id},
        actor=actor,
    )  # fmt: skip
    evidence["acceptance"] = acceptance_ref(record)
    requests = [TransitionRequest(device.id or 0, Event.ISSUE, to_custodian=officer_label(officer), evidence=evidence)]
    if old is not None:
        requests.append(
            TransitionRequest(
                old.id or 0,
                Event.RETURN,
                to_custodian=FACTORY_CUSTODIAN,
                evidence={"exchanged_for": device.serial, "allocation_id": allocation.id, **context},
            )
        )
    entries = change_state(session, requests, actor=actor, verifier=verifier)
    change_status(allocation, AllocationStep.ISSUE)
    session.add(allocation)
    if old is not None:
        mark_returned(session, old.id or 0)
    if approval is not None:
        approval.used_seq = entries[0].seq
        session.add(approval)
    session.flush()
    return Outcome(allocation, entries, acceptance=record, handed_over=device.serial)


def _exchange_or_exception(
    session: Session,
    allocation: Allocation,
    device: Device,
    officer: Officer,
    old_serial: str | None,
    approval_id: int | None,
    actor: str,
) -> tuple[Device | None, Approval | None]:
    """The officer's old device taken back, or else the approved exception the issue goes under."""
    if old_serial is None and approval_id is None:
        raise GuardRefused(
            f"device {device.serial} is issued only in exchange for officer {officer.staff_number}'s old device: "
            "scan the old device back in, or use an approved exception"
        )
    if old_serial is not None and approval_id is not None:
        raise InvalidInput("give either the old device or an approved exception, not both")
    if old_serial is not None:
        return _exchanged_device(session, old_serial, device, officer), None
    return None, _usable_approval(session, approval_id or 0, allocation, actor)


def exception_ref(approval: Approval) -> dict[str, object]:
    """What the issue (or delivery) entry records about the exception it went under."""
    return {"approval_id": approval.id} | approval.model_dump(include={"reason", "requested_by", "approved_by"})


def usable_exceptions(session: Session, allocation_ids: Sequence[int], actor: str | None = None) -> dict[int, Approval]:
    """The approved, unused exception of each allocation that has one, by allocation id (the first
    approved if several). With ``actor``, not one that ``actor`` approved: four eyes."""
    rows = session.exec(
        select(Approval)
        .where(
            col(Approval.allocation_id).in_(list(allocation_ids)),
            Approval.kind == ApprovalKind.ISSUE_WITHOUT_EXCHANGE.value,
            col(Approval.approved_by).is_not(None),
            col(Approval.used_seq).is_(None),
        )
        .order_by(col(Approval.id))
    ).all()
    usable: dict[int, Approval] = {}
    for approval in rows:
        if approval.approved_by != actor:
            usable.setdefault(approval.allocation_id, approval)
    return usable


def _in_person_allocation(session: Session, allocation_id: int) -> Allocation:
    return _allocation_to_officer(session, allocation_id, {AllocationChannel.IN_PERSON.value})


def _allocation_to_officer(session: Session, allocation_id: int, channels: frozenset[str] | set[str]) -> Allocation:
    allocation = get_allocation(session, allocation_id)
    if allocation.officer_id is None or allocation.channel not in channels:
        how = " or ".join(_HANDED[c] for c in sorted(channels))
        raise InvalidInput(f"allocation {allocation_id} is not an allocation handed to an officer {how}")
    return allocation


def _exchanged_device(session: Session, old_serial: str, device: Device, officer: Officer) -> Device:
    old = get_device(session, old_serial)
    if old.id == device.id:
        raise InvalidInput("the old device cannot be the device being issued")
    if old.custodian != officer_label(officer):
        raise GuardRefused(
            f"device {old.serial} is held by '{old.custodian or 'nobody'}', not officer {officer.staff_number}: "
            "it cannot be exchanged"
        )
    return old


def _usable_approval(session: Session, approval_id: int, allocation: Allocation, actor: str) -> Approval:
    approval = get_approval(session, approval_id)
    if approval.allocation_id != allocation.id:
        raise GuardRefused(f"exception {approval_id} is for allocation {approval.allocation_id}, not {allocation.id}")
    if approval.approved_by is None:
        raise GuardRefused(f"exception {approval_id} has not been approved by a second user")
    if approval.used_seq is not None:
        raise GuardRefused(f"exception {approval_id} was already used (ledger entry {approval.used_seq})")
    if approval.approved_by == actor:
        raise GuardRefused(f"exception {approval_id} was approved by {actor}, who cannot also issue under it")
    return approval


def _wave_context(session: Session, allocation: Allocation) -> dict[str, object]:
    if allocation.wave_id is None:
        return {}
    wave = session.get(Wave, allocation.wave_id)
    return {"wave": wave.name} if wave else {}
