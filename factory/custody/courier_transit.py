"""A packed consignment on its way: the hand-over scan when the courier collects (``dispatch``),
proof of delivery with the officers' old devices collected in the same visit (``deliver`` and
``return``, one for one, or no old device under an approved four-eyes exception, as at the
counter), failed delivery, and the return to the factory (``undeliverable``).

Seals are checked at hand-over and at delivery against those scanned at packing; a consignment
goes in transit only with every device scanned.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from factory.custody.allocation import mark_returned
from factory.custody.consignments import (
    Items,
    check_seals,
    consignment_for,
    scanned_items,
    stamp,
    with_courier,
)
from factory.custody.documents import DocumentKind, Upload, document_ref, store_document
from factory.custody.issue import exception_ref, usable_exceptions
from factory.custody.lookups import get_allocation, get_document, linked
from factory.custody.models import Approval, Consignment, Officer
from factory.custody.outcome import Outcome, saved
from factory.custody.people import officer_label
from factory.custody.statuses import AllocationStep, ConsignmentStep, change_status
from factory.custody.views import consignment_items, seal_list
from factory.intake.views import FACTORY_CUSTODIAN, get_device
from factory.kernel import clock
from factory.kernel.clock import format_utc, parse_utc, uk_time, utc_now
from factory.kernel.errors import Conflict, GuardRefused, InvalidInput
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device


def hand_over(
    session: Session,
    *,
    reference: str,
    scanned_serials: Sequence[str],
    scanned_seals: Sequence[str],
    actor: str,
    verifier: CertificateVerifier | None,
) -> Outcome[Consignment]:
    """The courier collects: with every device and every seal scanned, all go in transit together.

    :raises NotFound: no such consignment.
    :raises Conflict: it was already handed over.
    :raises InvalidInput: nothing scanned.
    :raises GuardRefused: a device not scanned (each named), a scanned device not in the
        consignment, a seal not scanned or not its own, or a device guard refuses.
    """
    consignment = consignment_for(session, reference, ConsignmentStep.HAND_OVER, ": it was already handed over")
    items = consignment_items(session, consignment)
    scanned = scanned_items(items, scanned_serials, consignment)
    missing = [d.serial for i, d in items if (i, d) not in scanned]
    if missing:
        raise GuardRefused(
            f"consignment {consignment.reference}: {len(missing)} of {len(items)} devices not scanned: "
            f"{', '.join(missing)}; it goes in transit only with every device"
        )
    seals = check_seals(consignment, scanned_seals, "hand-over")
    manifest = get_document(session, consignment.manifest_document_id or 0)
    evidence: dict[str, object] = {
        "consignment": consignment.reference,
        "courier": consignment.courier,
        "seals": seal_list(consignment),
        "seals_checked": seals,
        "manifest": document_ref(manifest),
        "scanned_by": actor,
    }
    to = f"courier:{consignment.courier}"
    entries = change_state(
        session,
        [
            TransitionRequest(d.id or 0, Event.DISPATCH, to_custodian=to, location=f"in transit with {to}",
                              evidence=evidence)
            for _, d in scanned
        ],
        actor=actor,
        verifier=verifier,
    )  # fmt: skip
    stamp(session, consignment, scanned, AllocationStep.HAND_OVER, utc_now())
    change_status(consignment, ConsignmentStep.HAND_OVER)
    return saved(session, consignment, entries)


def deliver(
    session: Session,
    *,
    reference: str,
    recipient_name: str,
    signature: Upload,
    scanned_seals: Sequence[str],
    old_serials: Sequence[str],
    actor: str,
    delivered_at: datetime | None = None,
    scanned_serials: Sequence[str] | None = None,
) -> Outcome[Consignment]:
    """Proof of delivery: seals intact, recipient name, signature, time; each scanned device goes
    to its officer and, in the same visit, one old device of that officer comes back for each. A
    device whose allocation has an approved, unused exception (approved by someone other than
    ``actor``) may go with no old device: the deliver entry records the exception, used once.

    :raises NotFound: no such consignment or old device.
    :raises Conflict: not in transit, or a scanned device is not with the courier.
    :raises InvalidInput: no recipient name, a time without zone, in the future or before the
        hand-over, a bad signature.
    :raises GuardRefused: a scanned device is not in the consignment, a seal is wrong or missing,
        or the old devices are not one for each new device of the same officer without an exception.
    """
    consignment = consignment_for(session, reference, ConsignmentStep.DELIVER, ", not in transit")
    name = (recipient_name or "").strip()
    if not name:
        raise InvalidInput("proof of delivery needs the recipient's name")
    when = format_utc(_delivery_moment(delivered_at, consignment))
    travelling, chosen = _delivered_items(session, consignment, scanned_serials)
    seals = check_seals(consignment, scanned_seals, "delivery")
    officers = {d.id: linked(session, Officer, get_allocation(session, i.allocation_id).officer_id) for i, d in chosen}
    exceptions = usable_exceptions(session, [i.allocation_id for i, _ in chosen], actor)
    excused = {d.id: exceptions[i.allocation_id] for i, d in chosen if i.allocation_id in exceptions}
    exchange = _old_devices(session, chosen, officers, old_serials, excused)
    pod = store_document(session, DocumentKind.PROOF_OF_DELIVERY, signature, actor=actor)
    evidence = {"consignment": consignment.reference, "recipient_name": name, "delivered_at": when,
                "seals_checked": seals, "proof_of_delivery": document_ref(pod)}  # fmt: skip
    requests = [
        request
        for _, d in chosen
        for request in _handed(consignment, d, officers[d.id], exchange.get(d.id) or excused[d.id], evidence)
    ]
    entries = change_state(session, requests, actor=actor)
    for old in exchange.values():
        mark_returned(session, old.id or 0)
    _use_exceptions(session, entries, {d: a for d, a in excused.items() if d not in exchange})
    stamp(session, consignment, chosen, AllocationStep.DELIVER, when)
    consignment.pod_recipient_name = name[:200]
    consignment.pod_document_id = pod.id
    still_out = [i for i, _ in travelling if i not in [c for c, _ in chosen]]
    change_status(consignment, ConsignmentStep.DELIVER_PART if still_out else ConsignmentStep.DELIVER)
    return saved(session, consignment, entries)


def _handed(
    consignment: Consignment, device: Device, officer: Officer, given_for: Device | Approval, evidence: dict[str, Any]
) -> list[TransitionRequest]:
    """The device going to its officer and, when it goes for the officer's old device, that device
    going back with the courier; else the deliver entry names the exception it goes under."""
    given: dict[str, object]
    if isinstance(given_for, Approval):
        given = {"exception": exception_ref(given_for)}
    else:
        given = {"exchange_for": given_for.serial}
    delivered = TransitionRequest(device.id or 0, Event.DELIVER, to_custodian=officer_label(officer),
                                  location=consignment.recipient_address[:200],
                                  evidence={**evidence, "officer": officer.staff_number, **given})  # fmt: skip
    if isinstance(given_for, Approval):
        return [delivered]
    collected = TransitionRequest(
        given_for.id or 0, Event.RETURN, to_custodian=f"courier:{consignment.courier}",
        location=f"with courier {consignment.courier}, on the way back to the factory",
        evidence={"consignment": consignment.reference, "exchanged_for": device.serial,
                  "officer": officer.staff_number, "collected_at": evidence["delivered_at"]},
    )  # fmt: skip
    return [delivered, collected]


def _use_exceptions(session: Session, entries: Sequence[CustodyEntry], used: dict[int | None, Approval]) -> None:
    """Each exception a device went under is used, once: it names the device's deliver entry."""
    for entry in entries:
        approval = used.get(entry.device_id)
        if approval is not None and entry.event == Event.DELIVER.value:
            approval.used_seq = entry.seq
            session.add(approval)


def _old_devices(
    session: Session,
    chosen: Items,
    officers: dict[int | None, Officer],
    old_serials: Sequence[str],
    excused: dict[int | None, Approval],
) -> dict[int | None, Device]:
    """One old device of the same officer for each device delivered (one for one), paired in order;
    the devices with an exception (``excused``) are paired last and may go without one.

    :raises NotFound: an old serial that is no device.
    :raises GuardRefused: an old device not held by an officer of this delivery, or too few or too many.
    """
    wanted = list(dict.fromkeys(s.strip() for s in old_serials if s and s.strip()))
    new_serials = {d.serial for _, d in chosen}
    by_officer: dict[str, list[Device]] = {}
    for serial in wanted:
        if serial in new_serials:
            raise InvalidInput(f"device {serial} is being delivered: scan the officer's old device")
        old = get_device(session, serial)
        holders = [o for o in officers.values() if old.custodian == officer_label(o)]
        if not holders:
            raise GuardRefused(
                f"device {old.serial} is held by '{old.custodian or 'nobody'}', not by an officer receiving this "
                "delivery: it cannot be collected in exchange"
            )
        by_officer.setdefault(holders[0].staff_number, []).append(old)
    pairs: dict[int | None, Device] = {}
    problems = []
    for officer in sorted({o.staff_number: o for o in officers.values()}.values(), key=lambda o: o.staff_number):
        new = [d for _, d in chosen if officers[d.id].staff_number == officer.staff_number]
        free = [d for d in new if d.id in excused]
        old_ones = by_officer.get(officer.staff_number, [])
        if not len(new) - len(free) <= len(old_ones) <= len(new):
            problems.append(
                f"officer {officer.staff_number} receives {len(new)} and hands back {len(old_ones)}"
                + (f" ({len(free)} with an approved exception)" if free else "")
            )
        in_order = [d for d in new if d.id not in excused] + free
        pairs |= {d.id: o for d, o in zip(in_order, old_ones, strict=False)}
    if problems:
        raise GuardRefused(
            "a device is delivered only in exchange for the officer's old one, collected in the same visit, "
            "or under an exception approved by a second user: " + "; ".join(problems)
        )
    return pairs


def _delivery_moment(delivered_at: datetime | None, consignment: Consignment) -> datetime:
    """When the devices were delivered: now, or a time given (recorded after the visit), which is
    neither in the future nor before the courier collected them (to the minute people type)."""
    moment = delivered_at or clock.now()
    if moment.tzinfo is None:
        raise InvalidInput("the delivery time must carry a time zone")
    if moment > clock.now() + timedelta(minutes=5):
        raise InvalidInput("the delivery time is in the future")
    collected = parse_utc(consignment.handed_over_at) if consignment.handed_over_at else None
    if collected is not None and moment < collected.replace(second=0, microsecond=0):
        raise InvalidInput(
            f"the delivery time is before the courier collected the consignment ({uk_time(consignment.handed_over_at)})"
        )
    return moment


def _delivered_items(
    session: Session, consignment: Consignment, scanned_serials: Sequence[str] | None
) -> tuple[Items, Items]:
    """The devices with the courier, and those of them being delivered (all, or the scanned ones)."""
    items = consignment_items(session, consignment)
    travelling = with_courier(items)
    if scanned_serials is None:
        chosen = travelling
    else:
        chosen = scanned_items(items, scanned_serials, consignment)
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
    consignment = consignment_for(session, reference, ConsignmentStep.FAIL, ", not in transit")
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
    consignment = consignment_for(session, reference, ConsignmentStep.RETURN, ": record the failed delivery first")
    out = with_courier(consignment_items(session, consignment))
    if not out:
        raise Conflict(f"consignment {consignment.reference} has no device to return")
    evidence = {"consignment": consignment.reference, "failure": consignment.failure_reason or ""}
    entries = change_state(
        session,
        [
            TransitionRequest(d.id or 0, Event.UNDELIVERABLE, to_custodian=FACTORY_CUSTODIAN,
                              location=location.strip() or FACTORY_CUSTODIAN, evidence=evidence)
            for _, d in out
        ],
        actor=actor,
    )  # fmt: skip
    stamp(session, consignment, out, AllocationStep.RETURN, utc_now())
    change_status(consignment, ConsignmentStep.RETURN)
    return saved(session, consignment, entries)
