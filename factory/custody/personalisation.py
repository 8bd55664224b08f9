"""Personalisation for the officer: which allocated device still needs its officer's assistive
technology applied and proven, the QA result of each attempt, and the issue guard.

A pass counts only for the device, the allocation and the exact profile it ran with (the profile's
digest): an officer whose needs change after the QA needs a new run before the device goes out.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from factory.custody.at_needs import AtNeeds, from_json, read_import
from factory.custody.errors import RecordNotFound
from factory.custody.lookups import get_officer
from factory.custody.models import Allocation, Officer, Personalisation
from factory.custody.outcome import stored
from factory.custody.statuses import AllocationStatus
from factory.kernel.clock import utc_now
from factory.kernel.errors import GuardRefused, InvalidInput
from factory.kernel.models.device import Device

# The kinds the line personalises (Ansible, playbooks/personalise.yml).
PERSONALISED_KINDS = frozenset({"laptop", "desktop"})


def needs_of(officer: Officer) -> AtNeeds:
    return from_json(officer.at_needs)


def set_at_needs(session: Session, officer: Officer, needs: AtNeeds) -> Officer:
    """Record an officer's needs (structured) and their words (``at_profile``)."""
    officer.at_needs = needs.to_json()
    officer.at_profile = needs.summary()[:200]
    session.add(officer)
    return officer


def import_at_needs(session: Session, text: str) -> list[tuple[str, str]]:
    """Set the needs of every officer in a CSV (``staff_number``, ``at_profile``); all or nothing.

    :raises InvalidInput: a malformed file or profile (with its line).
    :raises RecordNotFound: a staff number nobody registered (with its line).
    """
    rows = read_import(text)
    if not rows:
        raise InvalidInput("the import has no officers in it")
    done = []
    for row in rows:
        try:
            officer = get_officer(session, row.staff_number)
        except RecordNotFound as exc:
            raise RecordNotFound(f"line {row.line}: {exc.reason}") from exc
        set_at_needs(session, officer, row.needs)
        done.append((officer.staff_number, officer.at_profile))
    session.flush()
    return done


@dataclass(frozen=True)
class PersonaliseDue:
    """An allocated device whose officer has needs that no QA pass covers yet."""

    allocation_id: int
    device_id: int
    staff_number: str
    needs: AtNeeds


def personalisation_due(session: Session, device_id: int) -> PersonaliseDue | None:
    """The device's open allocation to an officer with needs and no passed QA for them; else None."""
    found = session.exec(
        select(Allocation, Officer)
        .join(Officer, col(Officer.id) == col(Allocation.officer_id))
        .where(Allocation.device_id == device_id, Allocation.status == AllocationStatus.ALLOCATED.value)
        .order_by(col(Allocation.id).desc())
    ).first()
    if found is None:
        return None
    allocation, officer = found
    needs = needs_of(officer)
    if not needs.any or _latest(session, allocation.id or 0, device_id, needs, passed=True) is not None:
        return None
    return PersonaliseDue(allocation.id or 0, device_id, officer.staff_number, needs)


def record_personalisation(
    session: Session,
    due: PersonaliseDue,
    *,
    passed: bool,
    missing: list[str],
    detail: str,
    job_id: int | None,
    actor: str,
) -> Personalisation:
    """Store one QA result (pass or fail) of a personalisation run."""
    row = Personalisation(
        allocation_id=due.allocation_id,
        device_id=due.device_id,
        needs=due.needs.to_json(),
        needs_digest=due.needs.digest(),
        passed=passed,
        missing="\n".join(missing),
        detail=detail[:2000],
        job_id=job_id,
        recorded_by=actor,
        recorded_at=utc_now(),
    )
    return stored(session, row)


def _latest(
    session: Session, allocation_id: int, device_id: int, needs: AtNeeds, *, passed: bool | None = None
) -> Personalisation | None:
    query = select(Personalisation).where(
        Personalisation.allocation_id == allocation_id,
        Personalisation.device_id == device_id,
        Personalisation.needs_digest == needs.digest(),
    )
    if passed is not None:
        query = query.where(Personalisation.passed == passed)
    return session.exec(query.order_by(col(Personalisation.id).desc())).first()


def refuse_unless_personalised(session: Session, allocation: Allocation, officer: Officer, device: Device) -> None:
    """The issue guard: an officer with needs gets the device only after its AT QA passed on it.

    :raises GuardRefused: naming the needs and what is missing (or that no run happened).
    """
    needs = needs_of(officer)
    if device.kind not in PERSONALISED_KINDS:
        return  # a tablet's AT comes with its device-management profile, not this step
    if not needs.any or _latest(session, allocation.id or 0, device.id or 0, needs, passed=True) is not None:
        return
    last = _latest(session, allocation.id or 0, device.id or 0, needs)
    if last is None:
        missing = "no personalisation has run on it for this profile: put it on a bench to personalise it"
    else:
        missing = f"its last personalisation QA failed: {'; '.join(last.missing.splitlines()) or last.detail}"
    raise GuardRefused(
        f"officer {officer.staff_number} needs assistive technology ({needs.summary()}): "
        f"device {device.serial} cannot be issued until its personalisation QA passes; {missing}"
    )
