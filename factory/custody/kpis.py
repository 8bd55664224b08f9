"""Refresh-wave and bench KPIs (reads).

Per-wave KPIs come from the custody ledger alone: for each device allocated in the wave, its
entries from the moment it last came into the factory (received or returned) up to now.
Per-bench KPIs come from the line's jobs table (factory/line/models.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from factory.custody.lookups import get_wave
from factory.custody.models import Allocation, AllocationStatus
from factory.kernel import clock
from factory.kernel.clock import parse_utc
from factory.kernel.lifecycle.states import Event, State
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device
from factory.line.models import Bench, Job, JobStatus

HAND_OVER_EVENTS = frozenset({Event.ISSUE.value, Event.DELIVER.value, Event.SWAP.value, Event.INSTALL.value})
INTAKE_STATES = frozenset({State.RECEIVED.value, State.RETURNED.value})
ATTEMPT_EVENTS = frozenset({Event.START_SANITISE.value, Event.START_PROVISION.value})


@dataclass(frozen=True)
class WaveKpis:
    wave: str
    cohort: str
    target_devices: int
    allocated: int
    handed_over: int
    progress_percent: float
    devices_per_hour: float | None  # hand-overs per hour between the first and the last
    mean_seconds_in_state: dict[str, float]
    first_time_pass_rate: float | None  # share of devices whose factory steps never failed
    queue_lengths: dict[str, int]  # wave devices in each state now


@dataclass(frozen=True)
class BenchKpis:
    bench: str
    jobs_finished: int
    devices_per_hour: float | None
    mean_job_seconds: float | None
    first_time_pass_rate: float | None  # succeeded at attempt 1, among finished devices
    queue_length: int  # queued jobs now
    running: int
    by_status: dict[str, int] = field(default_factory=dict)


def wave_kpis(session: Session, name: str, *, now: datetime | None = None) -> WaveKpis:
    wave = get_wave(session, name)
    moment = now or clock.now()
    allocations = session.exec(
        select(Allocation).where(Allocation.wave_id == wave.id, Allocation.status != AllocationStatus.RELEASED.value)
    ).all()
    device_ids = sorted({a.device_id for a in allocations})
    entries_by_device: dict[int, list[CustodyEntry]] = defaultdict(list)
    if device_ids:
        for e in session.exec(
            select(CustodyEntry)
            .where(CustodyEntry.device_id.in_(device_ids))  # type: ignore[attr-defined]
            .order_by(CustodyEntry.seq)  # type: ignore[arg-type]
        ).all():
            entries_by_device[e.device_id].append(e)
    first_seq = {d: min(a.allocated_seq for a in allocations if a.device_id == d) for d in device_ids}
    seconds: dict[str, list[float]] = defaultdict(list)
    hand_overs: list[datetime] = []
    attempted = passed = 0
    for device_id in device_ids:
        window = _window(entries_by_device[device_id], first_seq[device_id])
        for here, after in zip(window, [*window[1:], None], strict=True):
            end = parse_utc(after.occurred_at) if after else moment
            seconds[here.to_state].append((end - parse_utc(here.occurred_at)).total_seconds())
        hand_overs += [parse_utc(e.occurred_at) for e in window if e.event in HAND_OVER_EVENTS]
        if any(e.event in ATTEMPT_EVENTS for e in window):
            attempted += 1
            passed += not any(e.event == Event.FAIL.value for e in window)
    handed_over = sum(1 for a in allocations if a.status == AllocationStatus.ISSUED.value)
    states = session.exec(select(Device.state).where(Device.id.in_(device_ids))).all() if device_ids else []  # type: ignore[union-attr]
    per_hour = None
    if len(hand_overs) >= 2:
        span = (max(hand_overs) - min(hand_overs)).total_seconds() / 3600
        per_hour = round(len(hand_overs) / span, 3) if span > 0 else None
    return WaveKpis(
        wave=wave.name,
        cohort=wave.cohort,
        target_devices=wave.target_devices,
        allocated=len(device_ids),
        handed_over=handed_over,
        progress_percent=round(100 * handed_over / wave.target_devices, 1) if wave.target_devices else 0.0,
        devices_per_hour=per_hour,
        mean_seconds_in_state={k: round(sum(v) / len(v), 3) for k, v in sorted(seconds.items())},
        first_time_pass_rate=round(passed / attempted, 4) if attempted else None,
        queue_lengths=dict(sorted(Counter(s for s in states if s).items())),
    )


def _window(entries: list[CustodyEntry], allocated_seq: int) -> list[CustodyEntry]:
    """The device's entries since it last came into the factory before its wave allocation."""
    start = 0
    for i, e in enumerate(entries):
        if e.seq <= allocated_seq and e.to_state in INTAKE_STATES:
            start = i
    return entries[start:]


def bench_kpis(session: Session) -> list[BenchKpis]:
    """Throughput and quality per bench from the line's jobs."""
    out = []
    for bench in session.exec(select(Bench).order_by(Bench.name)).all():  # type: ignore[arg-type]
        jobs = session.exec(select(Job).where(Job.bench_id == bench.id)).all()
        by_status = Counter(j.status for j in jobs)
        done = [j for j in jobs if j.status == JobStatus.SUCCEEDED and j.started_epoch and j.ended_epoch]
        per_hour = None
        if len(done) >= 2:
            span = (max(j.ended_epoch or 0 for j in done) - min(j.started_epoch or 0 for j in done)) / 3600
            per_hour = round(len(done) / span, 3) if span > 0 else None
        durations = [(j.ended_epoch or 0) - (j.started_epoch or 0) for j in done]
        finished_devices: dict[str, list[Job]] = defaultdict(list)
        for j in jobs:
            if j.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
                finished_devices[j.device_serial or f"job-{j.id}"].append(j)
        first_ok = sum(
            1 for js in finished_devices.values() if any(j.attempt == 1 and j.status == JobStatus.SUCCEEDED for j in js)
        )
        out.append(
            BenchKpis(
                bench=bench.name,
                jobs_finished=sum(len(v) for v in finished_devices.values()),
                devices_per_hour=per_hour,
                mean_job_seconds=round(sum(durations) / len(durations), 3) if durations else None,
                first_time_pass_rate=round(first_ok / len(finished_devices), 4) if finished_devices else None,
                queue_length=by_status.get(JobStatus.QUEUED.value, 0),
                running=by_status.get(JobStatus.RUNNING.value, 0),
                by_status=dict(sorted(by_status.items())),
            )
        )
    return out
