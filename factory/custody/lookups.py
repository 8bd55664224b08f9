"""One lookup per custody record, each raising ``RecordNotFound`` (a ``NotFound``) naming what was asked.

Records a user names (by id, reference, staff or fleet number) are found here and nowhere else;
rows reached through a foreign key of a row already found come from ``linked``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from sqlmodel import Session, SQLModel, select

from factory.custody.errors import RecordNotFound
from factory.custody.models import (
    Allocation,
    AllocationChannel,
    Approval,
    Consignment,
    DestructionRecord,
    DisposalBatch,
    EvidenceDocument,
    Officer,
    Vehicle,
    Wave,
)
from factory.kernel.errors import GuardRefused
from factory.kernel.models.parties import Custodian, CustodianKind

Row = TypeVar("Row", bound=SQLModel)
Picked = TypeVar("Picked")


def _found(row: Row | None, missing: str) -> Row:
    if row is None:
        raise RecordNotFound(missing)
    return row


def _by_key(session: Session, model: type[Row], column: Any, value: str, missing: str) -> Row:
    return _found(session.exec(select(model).where(column == (value or "").strip())).first(), missing)


def linked(session: Session, model: type[Row], row_id: int | None) -> Row:
    """The row a foreign key of a row already found points at (the constraint says it exists)."""
    row = session.get(model, row_id) if row_id is not None else None
    assert row is not None, f"{model.__name__} {row_id} is referenced but missing"
    return row


def get_allocation(session: Session, allocation_id: int, *, vehicle: bool = False) -> Allocation:
    """:raises NotFound: no such allocation (with ``vehicle``: no such allocation to a vehicle)."""
    allocation = session.get(Allocation, allocation_id)
    if vehicle and allocation is not None:
        if allocation.channel != AllocationChannel.VEHICLE or allocation.vehicle_id is None:
            allocation = None
    return _found(allocation, f"no {'vehicle ' if vehicle else ''}allocation with id {allocation_id}")


def get_approval(session: Session, approval_id: int) -> Approval:
    return _found(session.get(Approval, approval_id), f"no exception request with id {approval_id}")


def get_batch(session: Session, batch_id: int) -> DisposalBatch:
    return _found(session.get(DisposalBatch, batch_id), f"no disposal batch {batch_id}")


def get_destruction(session: Session, record_id: int) -> DestructionRecord:
    return _found(session.get(DestructionRecord, record_id), f"no destruction request {record_id}")


def get_document(session: Session, document_id: int) -> EvidenceDocument:
    return _found(session.get(EvidenceDocument, document_id), f"no evidence document with id {document_id}")


def get_consignment(session: Session, reference: str) -> Consignment:
    return _by_key(session, Consignment, Consignment.reference, reference, f"no consignment {reference}")


def get_wave(session: Session, name: str) -> Wave:
    return _by_key(session, Wave, Wave.name, name, f"no refresh wave named {name}")


def get_officer(session: Session, staff_number: str) -> Officer:
    return _by_key(session, Officer, Officer.staff_number, staff_number, f"no officer with staff number {staff_number}")


def get_vehicle(session: Session, fleet_number: str) -> Vehicle:
    return _by_key(session, Vehicle, Vehicle.fleet_number, fleet_number, f"no vehicle with fleet number {fleet_number}")


def get_party(session: Session, kinds: tuple[CustodianKind, ...], reference: str) -> Custodian:
    party = session.exec(
        select(Custodian).where(
            Custodian.kind.in_([str(k) for k in kinds]),  # type: ignore[attr-defined]
            Custodian.reference == (reference or "").strip(),
        )
    ).first()
    return _found(party, f"no {' or '.join(str(k) for k in kinds)} with reference {reference}")


def pick_scanned(by_serial: Mapping[str, Picked], serials: Iterable[str], container: str) -> list[Picked]:
    """The rows of the scanned serials, each once, in scan order.

    :raises GuardRefused: a serial is not in the container (named in the reason, e.g. "consignment CN-1").
    """
    wanted = list(dict.fromkeys(s.strip() for s in serials if s.strip()))
    stray = [s for s in wanted if s not in by_serial]
    if stray:
        raise GuardRefused(f"{container} does not contain {', '.join(stray)}")
    return [by_serial[s] for s in wanted]
