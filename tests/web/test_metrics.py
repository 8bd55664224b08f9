"""Prometheus /metrics: devices by state, job duration histogram, wipe throughput, all from the DB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from harness.audit_data import sanitised_device
from harness.domain import SIZE, receive
from harness.web import (  # noqa: F401 (cheap_password_hashing: autouse fixture)
    cheap_password_hashing,
    make_users,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from factory.kernel.clock import format_utc, utc_now
from factory.kernel.db.engine import session_scope
from factory.line.models import Bench, Job, JobStep, Slot


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _job(ctx, device_id: int, *, seconds: float, status: str, pipeline: str, step_seconds: float | None) -> None:
    now = utc_now()
    with session_scope(ctx.engine) as s:
        bench = s.exec(select(Bench)).first()
        if bench is None:
            bench = Bench(name="bench-1", created_at=now)
            s.add(bench)
            s.flush()
        slot = Slot(code=f"bench-1/slot-{device_id}", bench_id=bench.id, position=device_id, updated_at=now)
        s.add(slot)
        s.flush()
        job = Job(
            device_id=device_id,
            slot_id=slot.id or 0,
            bench_id=bench.id or 0,
            attachment_id=f"att-{device_id}",
            identification="returned",
            pipeline=pipeline,
            status=status,
            started_epoch=1000.0,
            ended_epoch=1000.0 + seconds,
            created_at=now,
            updated_at=now,
        )
        s.add(job)
        s.flush()
        if step_seconds is not None:
            end = datetime.now(UTC) - timedelta(minutes=5)
            s.add(
                JobStep(
                    job_id=job.id or 0,
                    position=1,
                    kind="sanitise",
                    name="sanitise",
                    status="succeeded",
                    started_at=format_utc(end - timedelta(seconds=step_seconds)),
                    ended_at=format_utc(end),
                )
            )


def test_metrics_need_a_token(client) -> None:
    assert client.get("/metrics").status_code == 401


def test_metrics_report_devices_jobs_and_wipes(ctx, client) -> None:
    tokens = make_users(ctx)
    first = receive(ctx, "MET-1", media=("MET-1-A", "MET-1-B"))
    second = receive(ctx, "MET-2")
    sanitised_device(ctx, "MET-3", ("MET-3-M1",))
    _job(ctx, first, seconds=42.0, status="succeeded", pipeline="returned-laptop", step_seconds=8.0)
    _job(ctx, second, seconds=900.0, status="succeeded", pipeline="returned-laptop", step_seconds=None)
    r = client.get("/metrics", headers={"Authorization": f"Bearer {tokens['auditor']}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m = _samples(r.text)

    assert m[("factory_devices", (("state", "received"),))] == 2
    assert m[("factory_devices", (("state", "sanitised"),))] == 1
    assert m[("factory_devices", (("state", "disposed"),))] == 0  # every state is reported

    job = (("pipeline", "returned-laptop"), ("status", "succeeded"))
    assert m[("factory_job_duration_seconds_count", job)] == 2
    assert m[("factory_job_duration_seconds_sum", job)] == pytest.approx(942.0)
    for le, count in (("30.0", 0), ("60.0", 1), ("600.0", 1), ("1200.0", 2), ("+Inf", 2)):
        assert m[("factory_job_duration_seconds_bucket", (("le", le), *job))] == count, le

    assert m[("factory_media_certified_total", ())] == 1
    assert m[("factory_wipe_bytes_total", ())] == SIZE
    # MET-1's sanitise step: its two media (SIZE each) in 8 seconds, ended five minutes ago.
    assert m[("factory_line_wipe_bytes_total", ())] == 2 * SIZE
    assert m[("factory_line_wipe_seconds_total", ())] == pytest.approx(8.0)
    assert m[("factory_line_wipe_throughput_bytes_per_second", ())] == pytest.approx(2 * SIZE / 8.0)
