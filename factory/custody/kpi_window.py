"""Bench and wave KPIs over a date window (reads), for the technicians' KPI page.

Working time is what the figures are per: the union of the intervals in which a bench had a job
running, clipped to the window (a bench idle over lunch or at night is not working). A bench's
devices per hour are the devices it finished with success in the window over its working time; a
wave's are its devices handed over in the window over the site's working time (the union over
every bench). First-time pass rate: of the devices whose jobs finished in the window, the share
that succeeded at their first attempt. Queue lengths are now, not over the window.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from factory.custody.kpis import HAND_OVER_EVENTS
from factory.custody.models import Allocation, Wave
from factory.custody.statuses import AllocationStep, sources
from factory.kernel.clock import format_utc
from factory.kernel.errors import InvalidInput
from factory.kernel.models.custody_entry import CustodyEntry
from factory.line.models import Bench, Job, JobStatus

MAX_DAYS = 366


@dataclass(frozen=True)
class BenchWindow:
    bench: str
    devices_finished: int
    working_hours: float
    devices_per_hour: float | None
    first_time_pass_rate: float | None
    queued: int  # now
    running: int  # now
    held: int  # now: finished, waiting for a technician


@dataclass(frozen=True)
class WaveWindow:
    wave: str
    target_devices: int
    handed_over: int
    devices_per_hour: float | None
    allocated_waiting: int  # allocated, not yet handed over (now)


def _check(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("the window's dates carry a time zone")
    if end <= start:
        raise InvalidInput("the window must end after it starts")
    if (end - start).days > MAX_DAYS:
        raise InvalidInput(f"the window is at most {MAX_DAYS} days")


def working_hours(intervals: Iterable[tuple[float, float]], start: float, end: float) -> float:
    """Hours covered by the union of the intervals (epoch seconds), clipped to [start, end)."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in intervals if b > start and a < end)
    total, reach = 0.0, start
    for a, b in clipped:
        a = max(a, reach)
        if b > a:
            total, reach = total + (b - a), b
    return total / 3600


def _per_hour(count: int, hours: float) -> float | None:
    return round(count / hours, 3) if hours > 0 and count else None


def _intervals(jobs: Iterable[Job], now: float) -> list[tuple[float, float]]:
    return [(j.started_epoch, j.ended_epoch or now) for j in jobs if j.started_epoch]


def _bench(bench: Bench, jobs: list[Job], start: float, end: float, now: float) -> BenchWindow:
    in_window = [j for j in jobs if j.ended_epoch and start <= j.ended_epoch < end]
    finished = {j.device_serial or f"job-{j.id}" for j in in_window if j.status == JobStatus.SUCCEEDED}
    by_device: dict[str, list[Job]] = defaultdict(list)
    for j in in_window:
        by_device[j.device_serial or f"job-{j.id}"].append(j)
    first_ok = sum(
        1 for js in by_device.values() if any(j.attempt == 1 and j.status == JobStatus.SUCCEEDED for j in js)
    )
    hours = working_hours(_intervals(jobs, now), start, end)
    now_by_status = Counter(j.status for j in jobs)
    return BenchWindow(
        bench=bench.name,
        devices_finished=len(finished),
        working_hours=round(hours, 3),
        devices_per_hour=_per_hour(len(finished), hours),
        first_time_pass_rate=round(first_ok / len(by_device), 4) if by_device else None,
        queued=now_by_status.get(JobStatus.QUEUED.value, 0),
        running=now_by_status.get(JobStatus.RUNNING.value, 0),
        held=now_by_status.get(JobStatus.HELD.value, 0),
    )


def window_kpis(
    session: Session, start: datetime, end: datetime, now: datetime
) -> tuple[list[BenchWindow], list[WaveWindow]]:
    """Every bench's and every wave's figures over [start, end).

    :raises InvalidInput: a window without time zones, backwards, or longer than a year.
    """
    _check(start, end)
    s, e, n = start.timestamp(), end.timestamp(), now.timestamp()
    jobs_by_bench: dict[int, list[Job]] = defaultdict(list)
    for job in session.exec(select(Job)).all():
        jobs_by_bench[job.bench_id].append(job)
    benches = session.exec(select(Bench).order_by(col(Bench.name))).all()
    bench_rows = [_bench(b, jobs_by_bench[b.id or 0], s, e, n) for b in benches]
    site_hours = working_hours(_intervals((j for js in jobs_by_bench.values() for j in js), n), s, e)
    return bench_rows, _waves(session, format_utc(start), format_utc(end), site_hours)


def _waves(session: Session, start: str, end: str, site_hours: float) -> list[WaveWindow]:
    out = []
    for wave in session.exec(select(Wave).order_by(col(Wave.name))).all():
        allocations = session.exec(select(Allocation).where(Allocation.wave_id == wave.id)).all()
        device_ids = {a.device_id for a in allocations}
        handed = 0
        if device_ids:
            handed = len(
                session.exec(
                    select(CustodyEntry.device_id)
                    .where(col(CustodyEntry.device_id).in_(device_ids), col(CustodyEntry.event).in_(HAND_OVER_EVENTS))
                    .where(CustodyEntry.occurred_at >= start, CustodyEntry.occurred_at < end)
                    .distinct()
                ).all()
            )
        waiting = sum(1 for a in allocations if a.status in sources(AllocationStep.ISSUE))
        out.append(WaveWindow(wave.name, wave.target_devices, handed, _per_hour(handed, site_hours), waiting))
    return out
