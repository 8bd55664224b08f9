"""Bench KPIs over a date window: devices per hour over working time (the union of the intervals
with a job running, clipped to the window), first-time pass rate, queue lengths now."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from factory.custody.views import window_kpis, working_hours
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import InvalidInput
from factory.line.models import Bench, Job, Slot

DAY = datetime(2026, 3, 2, tzinfo=UTC)


def _at(hour: float) -> float:
    return DAY.timestamp() + hour * 3600


def test_working_hours_is_the_union_clipped_to_the_window() -> None:
    assert working_hours([(_at(9), _at(10)), (_at(9.5), _at(10.5)), (_at(11), _at(14))], _at(8), _at(13)) == 3.5
    assert working_hours([(_at(1), _at(2))], _at(8), _at(13)) == 0


def test_bench_figures_over_a_window(ctx) -> None:
    with session_scope(ctx.engine) as s:
        bench = Bench(name="bench-1", created_at="2026-03-02T00:00:00.000000Z")
        s.add(bench)
        s.flush()
        slot = Slot(code="bench-1/slot-1", bench_id=bench.id or 0, position=1, updated_at="2026-03-02T00:00:00.000000Z")
        s.add(slot)
        s.flush()
        common = {"slot_id": slot.id or 0, "bench_id": bench.id or 0, "identification": "returned",
                  "pipeline": "returned", "created_at": "2026-03-02T00:00:00.000000Z",
                  "updated_at": "2026-03-02T00:00:00.000000Z"}  # fmt: skip
        for n, (serial, attempt, status, start, end) in enumerate(
            [
                ("A", 1, "succeeded", 9, 10),
                ("B", 1, "failed", 9.5, 10.5),
                ("B", 2, "succeeded", 11, 12),
                ("C", 1, "queued", None, None),
            ]
        ):
            s.add(Job(attachment_id=f"att-{n}", device_serial=serial, attempt=attempt, status=status,
                      started_epoch=_at(start) if start else None, ended_epoch=_at(end) if end else None,
                      **common))  # fmt: skip
    with session_scope(ctx.engine) as s:
        benches, waves = window_kpis(s, DAY.replace(hour=8), DAY.replace(hour=13), now=DAY.replace(hour=13))
    [row] = benches
    assert (row.devices_finished, row.working_hours, row.devices_per_hour) == (2, 2.5, 0.8)
    assert row.first_time_pass_rate == 0.5 and (row.queued, row.running) == (1, 0)
    assert waves == []
    with pytest.raises(InvalidInput, match="end after it starts"), session_scope(ctx.engine) as s:
        window_kpis(s, DAY, DAY, now=DAY)
