"""Status tables of the custody records: allocation, consignment, disposal batch and pool member.

Like the device lifecycle (``factory/kernel/lifecycle/table.py``), each record's statuses and the
steps between them are one flat tuple of edges. Read a row as: the STEP takes a record in
SOURCE to TARGET. ``None`` as SOURCE means the record is being created. A row whose source and
target are equal is a step the record allows without moving (adding a device to an open batch),
so a table answers "what can be done to this record now" in one place.

``change_status`` is the only code that assigns a custody record's ``status``, and only along an
edge; ``require`` is the one pre-check the workflows make before they touch anything; ``allows``
is the same question as a flag for views. Stored values are the enum values (no migration).
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple, Protocol

from factory.custody.errors import StatusChangeRefused, StepNotAllowed


class AllocationStatus(StrEnum):
    ALLOCATED = "allocated"
    """Reserved for one officer or one vehicle; the device is still in the factory."""
    ISSUED = "issued"
    """With its officer or in its vehicle: handed over in person, delivered by courier, or installed."""
    IN_TRANSIT = "in_transit"
    """Collected by the courier, not yet delivered."""
    RELEASED = "released"
    """Given back to stock before it went out; the allocation is over."""
    RETURNED = "returned"
    """The device came back (exchanged, swapped, undeliverable, vehicle decommissioned)."""


class AllocationStep(StrEnum):
    ALLOCATE = "allocate"
    ENROL = "enrol"  # a device imported as already with its officer is recorded as issued to them
    SWAP = "swap"  # the spare handed over at the counter is recorded as issued at once
    RELEASE = "release"
    ISSUE = "issue"
    INSTALL = "install"
    CONSIGN = "consign"
    HAND_OVER = "hand_over"
    DELIVER = "deliver"
    RETURN = "return"


class ConsignmentStatus(StrEnum):
    OPEN = "open"
    """Packed with its manifest, waiting for the courier to collect it."""
    IN_TRANSIT = "in_transit"
    """Collected by the courier; some devices may be delivered already."""
    DELIVERED = "delivered"
    """Every device that travelled was delivered."""
    FAILED = "failed"
    """A delivery attempt failed; the devices are still with the courier."""
    RETURNED = "returned"
    """The courier brought the undelivered devices back to the factory."""


class ConsignmentStep(StrEnum):
    CREATE = "create"
    HAND_OVER = "hand_over"
    DELIVER_PART = "deliver_part"  # some devices delivered, others still with the courier
    DELIVER = "deliver"
    FAIL = "fail"
    RETURN = "return"


class DisposalStatus(StrEnum):
    OPEN = "open"
    """Being filled with certified devices; devices may still be taken out."""
    COLLECTED = "collected"
    """The recycler collected it under a signed waste transfer note; devices are being accounted for."""
    CLOSED = "closed"
    """Every device in it was accounted for by the recycler's certificate."""


class BatchStep(StrEnum):
    OPEN = "open"
    FILL = "fill"  # add or remove a device
    COLLECT = "collect"
    ACCOUNT = "account"  # record the recycler's certificate for some devices
    CLOSE = "close"


class PoolMemberStatus(StrEnum):
    STOCKED = "stocked"
    """On the Tech Bar's shelf: a ready spare a walk-in swap may hand out."""
    SWAPPED_OUT = "swapped_out"
    """Handed to an officer in a walk-in swap; it left the pool."""
    WITHDRAWN = "withdrawn"
    """Taken out of the pool by a technician (for allocation elsewhere, or found faulty)."""


class PoolStep(StrEnum):
    STOCK = "stock"
    SWAP_OUT = "swap_out"
    WITHDRAW = "withdraw"


class Edge(NamedTuple):
    step: StrEnum
    source: StrEnum | None
    target: StrEnum


A, AS = AllocationStatus, AllocationStep
C, CS = ConsignmentStatus, ConsignmentStep
D, DS = DisposalStatus, BatchStep
P, PS = PoolMemberStatus, PoolStep

# fmt: off
ALLOCATION_EDGES: tuple[Edge, ...] = (
    Edge(AS.ALLOCATE,   None,          A.ALLOCATED),
    Edge(AS.ENROL,      None,          A.ISSUED),     # already in the field (bulk import)
    Edge(AS.SWAP,       None,          A.ISSUED),
    Edge(AS.RELEASE,    A.ALLOCATED,   A.RELEASED),
    Edge(AS.ISSUE,      A.ALLOCATED,   A.ISSUED),
    Edge(AS.INSTALL,    A.ALLOCATED,   A.ISSUED),
    Edge(AS.CONSIGN,    A.ALLOCATED,   A.ALLOCATED),
    Edge(AS.HAND_OVER,  A.ALLOCATED,   A.IN_TRANSIT),
    Edge(AS.DELIVER,    A.IN_TRANSIT,  A.ISSUED),
    Edge(AS.RETURN,     A.IN_TRANSIT,  A.RETURNED),   # undeliverable
    Edge(AS.RETURN,     A.ISSUED,      A.RETURNED),   # exchanged, swapped, vehicle decommissioned
)

CONSIGNMENT_EDGES: tuple[Edge, ...] = (
    Edge(CS.CREATE,        None,          C.OPEN),
    Edge(CS.HAND_OVER,     C.OPEN,        C.IN_TRANSIT),
    Edge(CS.DELIVER_PART,  C.IN_TRANSIT,  C.IN_TRANSIT),
    Edge(CS.DELIVER_PART,  C.FAILED,      C.IN_TRANSIT),
    Edge(CS.DELIVER,       C.IN_TRANSIT,  C.DELIVERED),
    Edge(CS.DELIVER,       C.FAILED,      C.DELIVERED),
    Edge(CS.FAIL,          C.IN_TRANSIT,  C.FAILED),
    Edge(CS.RETURN,        C.FAILED,      C.RETURNED),
)

BATCH_EDGES: tuple[Edge, ...] = (
    Edge(DS.OPEN,     None,         D.OPEN),
    Edge(DS.FILL,     D.OPEN,       D.OPEN),
    Edge(DS.COLLECT,  D.OPEN,       D.COLLECTED),
    Edge(DS.ACCOUNT,  D.COLLECTED,  D.COLLECTED),
    Edge(DS.CLOSE,    D.COLLECTED,  D.CLOSED),
)
POOL_EDGES: tuple[Edge, ...] = (
    Edge(PS.STOCK,     None,       P.STOCKED),
    Edge(PS.SWAP_OUT,  P.STOCKED,  P.SWAPPED_OUT),
    Edge(PS.WITHDRAW,  P.STOCKED,  P.WITHDRAWN),
)
# fmt: on

_TABLES: dict[type[StrEnum], tuple[str, tuple[Edge, ...]]] = {
    AllocationStep: ("allocation", ALLOCATION_EDGES),
    ConsignmentStep: ("consignment", CONSIGNMENT_EDGES),
    BatchStep: ("disposal batch", BATCH_EDGES),
    PoolStep: ("pool member", POOL_EDGES),
}

# Named groups, like the lifecycle's, as stored values (for queries).
OPEN_ALLOCATION = (A.ALLOCATED.value, A.IN_TRANSIT.value)  # at most one per device: not yet with its holder
WITH_HOLDER_OR_COURIER = (A.ISSUED.value, A.IN_TRANSIT.value)  # out of the factory under this allocation
OUT_WITH_COURIER = (C.IN_TRANSIT.value, C.FAILED.value)  # devices travelling; overdue if not delivered in time
UNFINISHED_CONSIGNMENT = (C.OPEN.value, C.IN_TRANSIT.value)  # an allocation may be in one of these only
ACTIVE_CONSIGNMENT = (C.OPEN.value, C.IN_TRANSIT.value, C.FAILED.value)  # what a courier still has to act on
IN_POOL = (P.STOCKED.value,)  # a spare on the shelf: counted in the stock level, offered to a swap


class StatusRecord(Protocol):
    """An allocation, consignment, disposal batch or pool member: the fields the tables read and write."""

    id: int | None
    status: str


def _edge(step: StrEnum, source: str | None) -> Edge | None:
    _kind, edges = _TABLES[type(step)]
    return next((e for e in edges if e.step == step and e.source == source), None)


def _source(record: StatusRecord) -> str | None:
    # A record not yet flushed has no status of its own: the model default is only a placeholder.
    return None if record.id is None else record.status


def allows(record: StatusRecord, step: StrEnum) -> bool:
    """Whether the record's table has an edge for this step from the record's status."""
    return _edge(step, _source(record)) is not None


def sources(step: StrEnum) -> tuple[str, ...]:
    """The stored status values from which the step is allowed (for queries)."""
    _kind, edges = _TABLES[type(step)]
    return tuple(str(e.source) for e in edges if e.step == step and e.source is not None)


def require(record: StatusRecord, step: StrEnum, refusal: str) -> None:
    """The workflows' one pre-check: refuse with ``refusal`` unless the step is allowed now.

    :raises StepNotAllowed: (a Conflict) no edge for the step from the record's status.
    """
    if not allows(record, step):
        raise StepNotAllowed(refusal)


def change_status(record: StatusRecord, step: StrEnum) -> None:
    """Move the record along the step's edge: the only assignment of a custody record's status.

    :raises StatusChangeRefused: no edge for the step from the record's status (a workflow
        skipped its ``require`` pre-check).
    """
    source = _source(record)
    edge = _edge(step, source)
    if edge is None:
        kind, _edges = _TABLES[type(step)]
        raise StatusChangeRefused(kind, getattr(record, "reference", None) or record.id, source, str(step))
    record.status = edge.target.value
