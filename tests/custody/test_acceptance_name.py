"""The officer's acceptance carries their own name: a typed name that is not theirs is refused
(it was accepted: "Alice Jonez" for Alice Jones)."""

from __future__ import annotations

import pytest
from harness.custody_data import accept, allocated, entry_count
from harness.domain import verifier

from factory.custody.acceptance import names_match
from factory.custody.service import approve_exception, issue_device, register_officer, request_exception
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import GuardRefused


def test_names_match_ignores_case_spacing_dots_and_a_rank() -> None:
    assert names_match("Alice Jones", "Alice Jones")
    assert names_match("  pc  alice   JONES ", "Alice Jones")
    assert names_match("Sgt. Alice Jones", "Alice Jones")
    assert not names_match("Alice Jonez", "Alice Jones")
    assert not names_match("Alice", "Alice Jones")
    assert not names_match("PC", "Alice Jones")


def test_an_acceptance_in_another_name_is_refused_and_nothing_is_issued(ctx) -> None:
    with session_scope(ctx.engine) as s:
        register_officer(s, staff_number="PC5001", name="Alice Jones")
    allocation_id = allocated(ctx, "NAME-1", "PC5001")
    with session_scope(ctx.engine) as s:
        approval = request_exception(s, allocation_id=allocation_id, reason="new", requested_by="tech.two").record
        approve_exception(s, approval_id=approval.id or 0, approver="admin.one")
    before = entry_count(ctx)
    with (
        pytest.raises(GuardRefused, match="not the name registered for officer PC5001"),
        session_scope(ctx.engine) as s,
    ):
        issue_device(s, allocation_id=allocation_id, acceptance=accept("Alice Jonez"), actor="tech.one",
                     verifier=verifier(ctx), approval_id=approval.id)  # fmt: skip
    assert entry_count(ctx) == before
    with session_scope(ctx.engine) as s:
        issue_device(s, allocation_id=allocation_id, acceptance=accept("PC Alice Jones"), actor="tech.one",
                     verifier=verifier(ctx), approval_id=approval.id)  # fmt: skip
    assert entry_count(ctx) == before + 1
