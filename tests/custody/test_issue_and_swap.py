"""Issue in exchange (paired, atomic), four-eyes exceptions, acceptance evidence, walk-in swap."""

from __future__ import annotations

import pytest
from harness.custody_data import (
    accept,
    allocated,
    entries,
    entry_count,
    issue_first,
    last_evidence,
    ledger_ok,
    officer,
    pooled,
)
from harness.domain import move, state_of, verifier
from sqlmodel import select

from factory.custody.models import AcceptanceRecord, Allocation
from factory.custody.service import Acceptance, approve_exception, issue_device, request_exception, walk_in_swap
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import GuardRefused, InvalidTransition
from factory.kernel.lifecycle.states import Event


def test_issue_in_exchange_returns_the_old_device_in_the_same_transaction(ctx) -> None:
    pc = officer(ctx)
    issue_first(ctx, "OLD-1", pc)
    allocation_id = allocated(ctx, "NEW-1", pc)
    with session_scope(ctx.engine) as s:
        result = issue_device(s, allocation_id=allocation_id, acceptance=accept(), actor="tech.one",
                              verifier=verifier(ctx), old_serial="OLD-1")  # fmt: skip
        record_hash = result.acceptance.record_sha256
    new, old = entries(ctx, "NEW-1")[-1], entries(ctx, "OLD-1")[-1]
    assert (new.event, new.to_state, new.to_custodian) == ("issue", "issued", "officer:PC1001")
    assert (old.event, old.from_state, old.to_state, old.to_custodian) == ("return", "issued", "returned", "factory")
    assert old.seq == new.seq + 1 or new.seq == old.seq + 1  # one call, adjacent entries
    evidence = last_evidence(ctx, "NEW-1")
    assert evidence["exchange_for"] == "OLD-1"
    assert evidence["acceptance"]["sha256"] == record_hash and evidence["acceptance"]["method"] == "signature"
    assert last_evidence(ctx, "OLD-1")["exchanged_for"] == "NEW-1"
    with session_scope(ctx.engine) as s:
        record = s.exec(select(AcceptanceRecord).where(AcceptanceRecord.record_sha256 == record_hash)).one()
        assert '"accepted_name":"PC Jane Smith"' in record.record
    assert ledger_ok(ctx)


def test_issue_without_old_device_or_exception_is_refused(ctx) -> None:
    pc = officer(ctx)
    allocation_id = allocated(ctx, "NEW-2", pc)
    before = entry_count(ctx)
    with pytest.raises(GuardRefused, match="only in exchange for officer PC1001"), session_scope(ctx.engine) as s:
        issue_device(s, allocation_id=allocation_id, acceptance=accept(), actor="tech.one", verifier=verifier(ctx))
    assert entry_count(ctx) == before and state_of(ctx, "NEW-2") == "allocated"


def test_paired_exchange_is_all_or_nothing(ctx) -> None:
    pc = officer(ctx)
    issue_first(ctx, "OLD-3", pc)
    move(ctx, entries(ctx, "OLD-3")[-1].device_id, Event.REPORT_LOST)  # still names the officer, cannot be returned
    allocation_id = allocated(ctx, "NEW-3", pc)
    before = entry_count(ctx)
    with pytest.raises(InvalidTransition, match="OLD-3: event 'return'"), session_scope(ctx.engine) as s:
        issue_device(s, allocation_id=allocation_id, acceptance=accept(), actor="tech.one", verifier=verifier(ctx),
                     old_serial="OLD-3")  # fmt: skip
    assert entry_count(ctx) == before
    assert state_of(ctx, "NEW-3") == "allocated" and state_of(ctx, "OLD-3") == "lost"
    with session_scope(ctx.engine) as s:
        assert s.exec(select(AcceptanceRecord)).all().__len__() == 1  # only the first issue's; rolled back


def test_old_device_of_someone_else_is_refused(ctx) -> None:
    issue_first(ctx, "THEIRS", officer(ctx, "PC2"))
    allocation_id = allocated(ctx, "NEW-4", officer(ctx, "PC1"))
    with pytest.raises(GuardRefused, match="not officer PC1"), session_scope(ctx.engine) as s:
        issue_device(s, allocation_id=allocation_id, acceptance=accept(), actor="tech.one", verifier=verifier(ctx),
                     old_serial="THEIRS")  # fmt: skip


def test_four_eyes_exception(ctx) -> None:
    pc = officer(ctx)
    allocation_id = allocated(ctx, "NEW-5", pc)
    with session_scope(ctx.engine) as s:
        approval_id = request_exception(
            s, allocation_id=allocation_id, reason="first device", requested_by="tech.one"
        ).record.id
    with pytest.raises(GuardRefused, match="needs a second user"), session_scope(ctx.engine) as s:
        approve_exception(s, approval_id=approval_id or 0, approver="tech.one")
    with pytest.raises(GuardRefused, match="not been approved"), session_scope(ctx.engine) as s:
        issue_device(s, allocation_id=allocation_id, acceptance=accept(), actor="tech.one", verifier=verifier(ctx),
                     approval_id=approval_id)  # fmt: skip
    with session_scope(ctx.engine) as s:
        approve_exception(s, approval_id=approval_id or 0, approver="admin.one")
    with pytest.raises(GuardRefused, match="cannot also issue"), session_scope(ctx.engine) as s:
        issue_device(s, allocation_id=allocation_id, acceptance=accept(), actor="admin.one", verifier=verifier(ctx),
                     approval_id=approval_id)  # fmt: skip
    with session_scope(ctx.engine) as s:
        issue_device(s, allocation_id=allocation_id, acceptance=accept(), actor="tech.one", verifier=verifier(ctx),
                     approval_id=approval_id)  # fmt: skip
    exception = last_evidence(ctx, "NEW-5")["exception"]
    assert exception == {"approval_id": approval_id, "reason": "first device", "requested_by": "tech.one",
                         "approved_by": "admin.one"}  # fmt: skip
    second = allocated(ctx, "NEW-6", pc)
    with pytest.raises(GuardRefused, match="is for allocation"), session_scope(ctx.engine) as s:
        issue_device(s, allocation_id=second, acceptance=accept(), actor="tech.one", verifier=verifier(ctx),
                     approval_id=approval_id)  # fmt: skip
    assert ledger_ok(ctx)


def test_acceptance_by_pin(ctx) -> None:
    pc = officer(ctx, pin="4821")
    allocation_id = allocated(ctx, "PIN-1", pc)
    with session_scope(ctx.engine) as s:
        approval = request_exception(s, allocation_id=allocation_id, reason="first", requested_by="tech.one").record
        approve_exception(s, approval_id=approval.id or 0, approver="admin.one")
        approval_id = approval.id
    with pytest.raises(GuardRefused, match="PIN does not match"), session_scope(ctx.engine) as s:
        issue_device(s, allocation_id=allocation_id, acceptance=Acceptance("Jane Smith", pin="0000"),
                     actor="tech.one", verifier=verifier(ctx), approval_id=approval_id)  # fmt: skip
    with session_scope(ctx.engine) as s:
        issue_device(s, allocation_id=allocation_id, acceptance=Acceptance("Jane Smith", pin="4821"),
                     actor="tech.one", verifier=verifier(ctx), approval_id=approval_id)  # fmt: skip
    assert last_evidence(ctx, "PIN-1")["acceptance"]["method"] == "pin"


def test_walk_in_swap_is_one_step_and_faulty_goes_to_returned(ctx) -> None:
    pc = officer(ctx)
    issue_first(ctx, "FAULTY", pc)
    pooled(ctx, "SPARE")
    with session_scope(ctx.engine) as s:
        result = walk_in_swap(s, staff_number=pc, faulty_serial="FAULTY", spare_serial="SPARE", fault="screen cracked",
                              acceptance=accept(), actor="tech.one", verifier=verifier(ctx))  # fmt: skip
        assert {e.device_serial for e in result.entries} == {"FAULTY", "SPARE"}
        record_hash = result.acceptance.record_sha256
    assert state_of(ctx, "SPARE") == "issued" and state_of(ctx, "FAULTY") == "returned"
    spare = last_evidence(ctx, "SPARE")
    assert spare["swap_for"] == "FAULTY" and spare["acceptance"]["sha256"] == record_hash
    assert spare["contingency_pool"] == "test-site/laptop"
    assert last_evidence(ctx, "FAULTY")["fault"] == "screen cracked"
    with session_scope(ctx.engine) as s:
        statuses = {a.device_id: a.status for a in s.exec(select(Allocation)).all()}
    assert sorted(statuses.values()) == ["issued", "returned"]
    assert ledger_ok(ctx)


def test_swap_with_a_spare_that_is_not_ready_writes_nothing(ctx) -> None:
    pc = officer(ctx)
    issue_first(ctx, "FAULTY-2", pc)
    allocated(ctx, "NOT-SPARE", pc)  # allocated, not in the pool
    before = entry_count(ctx)
    with pytest.raises(GuardRefused, match="NOT-SPARE is not in a contingency pool"), session_scope(ctx.engine) as s:
        walk_in_swap(s, staff_number=pc, faulty_serial="FAULTY-2", spare_serial="NOT-SPARE", fault="battery",
                     acceptance=accept(), actor="tech.one", verifier=verifier(ctx))  # fmt: skip
    assert entry_count(ctx) == before and state_of(ctx, "FAULTY-2") == "issued"
