"""Every custody entry records where the device is after the event: a device that changes hands
is no longer in the bench slot it was last seen in (issue, redistribution and the rest once
carried the last slot)."""

from __future__ import annotations

from harness.custody_data import accept, entries, officer
from harness.domain import certify_all, move, receive, verifier

from factory.custody.service import (
    allocate,
    approve_exception,
    issue_device,
    redistribute,
    register_party,
    request_exception,
)
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.parties import CustodianKind
from imaging.certificate import Destination

SLOT = "B2-S4"


def test_an_issue_of_a_device_last_on_a_bench_leaves_the_slot_behind(ctx) -> None:
    device_id = receive(ctx, "LOC-2", new_stock=True)
    move(ctx, device_id, Event.START_PROVISION, new_stock=True, location=SLOT)
    move(ctx, device_id, Event.PROVISIONED)
    officer(ctx, "PC4002")
    with session_scope(ctx.engine) as s:
        allocation = allocate(s, serial="LOC-2", actor="tech.one", staff_number="PC4002").record
        approval = request_exception(s, allocation_id=allocation.id or 0, reason="new", requested_by="t1").record
        approve_exception(s, approval_id=approval.id or 0, approver="admin.one")
    assert entries(ctx, "LOC-2")[-1].location == SLOT  # allocated on the shelf: still where it was
    with session_scope(ctx.engine) as s:
        issue_device(s, allocation_id=allocation.id or 0, acceptance=accept(), actor="tech.one",
                     verifier=verifier(ctx), approval_id=approval.id)  # fmt: skip
    issued = entries(ctx, "LOC-2")[-1]
    assert (issued.event, issued.to_custodian, issued.location) == ("issue", "officer:PC4002", "officer:PC4002")


def test_a_redistribution_records_the_school(ctx) -> None:
    device_id = receive(ctx, "LOC-3")
    move(ctx, device_id, Event.START_SANITISE, location=SLOT)
    certify_all(ctx, device_id, Destination.EXTERNAL_REUSE)
    move(ctx, device_id, Event.SANITISED)
    assert entries(ctx, "LOC-3")[-1].location == SLOT
    with session_scope(ctx.engine) as s:
        register_party(s, kind=CustodianKind.SCHOOL, reference="URN-4", name="Northtown Academy")
        redistribute(s, organisation_reference="URN-4", serials=["LOC-3"], actor="tech.one", site="test-site",
                     verifier=verifier(ctx))  # fmt: skip
    moved = entries(ctx, "LOC-3")[-1]
    assert moved.event == "redistribute" and moved.location == moved.to_custodian and SLOT not in moved.location


def test_collection_and_disposal_record_the_recycler(ctx) -> None:
    device_id = receive(ctx, "LOC-4")
    move(ctx, device_id, Event.START_SANITISE, location=SLOT)
    certify_all(ctx, device_id, Destination.RECYCLING)
    move(ctx, device_id, Event.SANITISED)
    move(ctx, device_id, Event.ADD_TO_DISPOSAL)
    move(ctx, device_id, Event.COLLECT, to_custodian="recycler:WEEE-1")
    move(ctx, device_id, Event.DISPOSE)
    collected, disposed = entries(ctx, "LOC-4")[-2:]
    assert (collected.event, collected.location) == ("collect", "recycler:WEEE-1")
    assert (disposed.event, disposed.location) == ("dispose", "recycler:WEEE-1")
