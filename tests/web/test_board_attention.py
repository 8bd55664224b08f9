"""The bench board shows what docs/operations.md says it does: a device pulled out of its slot
mid-job, and a device whose erase failed, stay under "Needs attention" after they left the slot
(the list showed only jobs whose device was still in its slot)."""

from __future__ import annotations

from harness.board_data import pulled_job
from harness.domain import move, receive

from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.states import Event
from factory.line.views import attention_view


def test_pulled_and_failed_devices_need_attention_after_leaving_the_slot(ctx) -> None:
    pulled = receive(ctx, "ATT-PULLED")
    move(ctx, pulled, Event.START_SANITISE)
    move(ctx, pulled, Event.FAIL)
    job_id = pulled_job(ctx, "ATT-PULLED", pulled)
    failed = receive(ctx, "ATT-FAILED")  # failed a remote erase: never on a bench
    move(ctx, failed, Event.START_SANITISE)
    move(ctx, failed, Event.FAIL)
    receive(ctx, "ATT-FINE")
    with session_scope(ctx.engine) as s:
        rows = {r["device_serial"]: r for r in attention_view(s)}
    assert set(rows) == {"ATT-PULLED", "ATT-FAILED"}
    assert (rows["ATT-PULLED"]["id"], rows["ATT-PULLED"]["slot"], rows["ATT-PULLED"]["pulled"]) == (
        job_id, "bench-9/slot-1", True)  # fmt: skip
    assert rows["ATT-PULLED"]["reason"].startswith("device removed from slot")
    assert rows["ATT-FAILED"]["id"] is None and rows["ATT-FAILED"]["status"] == "sanitise_failed"
    assert "destruction" in rows["ATT-FAILED"]["action"]
