"""A failed line audit explains itself: the history of every device it names, for a CI log."""

from __future__ import annotations

from harness.domain import move, receive
from harness.line_history import explain_audit

from factory.kernel.lifecycle.states import Event
from factory.line.consistency import audit_line


def test_a_device_left_in_progress_is_shown_with_its_custody_history(ctx) -> None:
    device_id = receive(ctx, "EXPLAIN-1", new_stock=True)
    receive(ctx, "QUIET-1", new_stock=True)
    move(ctx, device_id, Event.START_PROVISION)  # in progress, and no job runs it
    problems = audit_line(ctx.engine, ctx.settings)
    assert problems == ["device EXPLAIN-1 is 'provisioning' but no job is running for it"]
    text = explain_audit(ctx.engine, problems)
    assert text.startswith(problems[0])
    assert "== device EXPLAIN-1" in text and "QUIET-1" not in text
    assert "-> received by tech.one" in text and "start_provision -> provisioning by tech.one" in text
