"""The custody status tables: every status reachable, one edge per (step, status), and the one
writer refusing anything off the table."""

from __future__ import annotations

import pytest

from factory.custody.errors import StatusChangeRefused, StepNotAllowed
from factory.custody.models import Allocation, Consignment, DisposalBatch
from factory.custody.statuses import (
    ALLOCATION_EDGES,
    BATCH_EDGES,
    CONSIGNMENT_EDGES,
    AllocationStatus,
    AllocationStep,
    BatchStep,
    ConsignmentStatus,
    ConsignmentStep,
    DisposalStatus,
    allows,
    change_status,
    require,
    sources,
)

TABLES = [
    (AllocationStatus, ALLOCATION_EDGES),
    (ConsignmentStatus, CONSIGNMENT_EDGES),
    (DisposalStatus, BATCH_EDGES),
]


@pytest.mark.parametrize(("statuses", "edges"), TABLES)
def test_every_status_is_reachable_and_every_edge_is_unique(statuses, edges) -> None:
    assert {e.target for e in edges} == set(statuses)
    keys = [(e.step, e.source) for e in edges]
    assert len(keys) == len(set(keys))


def test_a_new_record_takes_the_status_its_creating_step_gives() -> None:
    swapped, allocated = Allocation(), Allocation()
    change_status(swapped, AllocationStep.SWAP)
    change_status(allocated, AllocationStep.ALLOCATE)
    assert (swapped.status, allocated.status) == ("issued", "allocated")
    batch = DisposalBatch()
    change_status(batch, BatchStep.OPEN)
    assert batch.status == "open"


def test_the_writer_refuses_a_step_off_the_table() -> None:
    released = Allocation(id=7, status="released")
    with pytest.raises(StatusChangeRefused, match="allocation 7: step 'issue' is not allowed from status 'released'"):
        change_status(released, AllocationStep.ISSUE)
    assert released.status == "released"
    with pytest.raises(StepNotAllowed, match="not allocated"):
        require(released, AllocationStep.ISSUE, "allocation 7 is released, not allocated")


def test_what_a_consignment_allows_in_each_status() -> None:
    def allowed(status: str) -> set[str]:
        c = Consignment(id=1, reference="CN-1", status=status)
        return {str(step) for step in ConsignmentStep if allows(c, step)}

    assert allowed("open") == {"hand_over"}
    assert allowed("in_transit") == {"deliver", "deliver_part", "fail"}
    assert allowed("failed") == {"deliver", "deliver_part", "return"}
    assert allowed("delivered") == allowed("returned") == set()
    assert sources(AllocationStep.RETURN) == ("in_transit", "issued")
