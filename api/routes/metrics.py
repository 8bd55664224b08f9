"""Prometheus ``/metrics``: devices by state, bench-line job durations and wipe throughput.

Every value is computed from the database at scrape time (no in-process counters), so every API
process reports the same numbers and a restart loses nothing. Scraping needs an API token of any
role (Prometheus: ``authorization: {credentials: <token>}``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import Engine, case, func
from sqlmodel import Session, col, select

from api.deps import ContextDep, CurrentUser
from factory.kernel import clock
from factory.kernel.clock import format_utc
from factory.kernel.lifecycle.states import State
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.device import Device, StorageMedium
from factory.line.models import FINISHED_JOB_STATUSES, Job, JobStep, StepStatus
from factory.line.pipeline_rules import Step

# Bench jobs run from seconds (simulated disks) to hours (large HDD overwrites).
JOB_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
THROUGHPUT_WINDOW = timedelta(hours=1)


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class FactoryCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        with Session(self.engine) as session:
            yield self._devices(session)
            yield self._job_durations(session)
            yield from self._wipes(session)

    def _devices(self, session: Session) -> Metric:
        counts = {state.value: 0 for state in State}
        for state, n in session.exec(select(Device.state, func.count()).group_by(Device.state)).all():
            if state is not None:
                counts[state] = n
        gauge = GaugeMetricFamily("factory_devices", "Devices by lifecycle state.", labels=["state"])
        for state, n in sorted(counts.items()):
            gauge.add_metric([state], n)
        return gauge

    def _job_durations(self, session: Session) -> Metric:
        """Finished jobs' start-to-end seconds, by pipeline and outcome (buckets counted in SQL)."""
        duration = col(Job.ended_epoch) - col(Job.started_epoch)
        bucket_counts = [func.sum(case((duration <= le, 1), else_=0)) for le in JOB_BUCKETS]
        rows = session.exec(
            select(Job.pipeline, Job.status, func.count(), func.sum(duration), *bucket_counts)  # type: ignore[call-overload]
            .where(
                col(Job.started_epoch).is_not(None),
                col(Job.ended_epoch).is_not(None),
                col(Job.status).in_(sorted(FINISHED_JOB_STATUSES)),
            )
            .group_by(Job.pipeline, Job.status)
        ).all()
        histogram = HistogramMetricFamily(
            "factory_job_duration_seconds",
            "Bench-line job durations from start to end, by pipeline and final status.",
            labels=["pipeline", "status"],
        )
        for pipeline, status, count, total, *cumulative in rows:
            buckets = [(floatToGoString(le), float(n or 0)) for le, n in zip(JOB_BUCKETS, cumulative, strict=True)]
            buckets.append(("+Inf", float(count)))
            histogram.add_metric([pipeline, status], buckets, float(total or 0.0))
        return histogram

    def _wipes(self, session: Session) -> Iterator[Metric]:
        certified = session.exec(
            select(func.count(), func.coalesce(func.sum(StorageMedium.capacity_bytes), 0))
            .select_from(Certificate)
            .join(StorageMedium, col(StorageMedium.id) == col(Certificate.medium_id))
        ).one()
        media = CounterMetricFamily("factory_media_certified", "Storage media with a sanitisation certificate.")
        media.add_metric([], float(certified[0]))
        yield media
        erased = CounterMetricFamily(
            "factory_wipe_bytes", "Capacity of the storage media certified as sanitised, in bytes."
        )
        erased.add_metric([], float(certified[1]))
        yield erased
        yield from self._throughput(session)

    def _throughput(self, session: Session) -> Iterator[Metric]:
        """Bytes per second of the bench line's successful sanitise steps (device media capacity
        over the step's wall-clock time), all-time totals and over the last hour."""
        capacity = (
            select(StorageMedium.device_id, func.sum(StorageMedium.capacity_bytes).label("bytes"))
            .group_by(StorageMedium.device_id)
            .subquery()
        )
        rows = session.exec(
            select(JobStep.started_at, JobStep.ended_at, capacity.c.bytes)
            .select_from(JobStep)
            .join(Job, col(Job.id) == col(JobStep.job_id))
            .join(capacity, capacity.c.device_id == col(Job.device_id))
            .where(
                JobStep.kind == Step.SANITISE.value,
                JobStep.status == StepStatus.SUCCEEDED.value,
                col(JobStep.started_at).is_not(None),
                col(JobStep.ended_at).is_not(None),
            )
        ).all()
        recent_from = format_utc(clock.now() - THROUGHPUT_WINDOW)
        total_bytes = total_seconds = recent_bytes = recent_seconds = 0.0
        for started, ended, size in rows:
            seconds = max((_parse(ended) - _parse(started)).total_seconds(), 0.0)
            total_bytes += float(size or 0)
            total_seconds += seconds
            if ended >= recent_from:
                recent_bytes += float(size or 0)
                recent_seconds += seconds
        line_bytes = CounterMetricFamily("factory_line_wipe_bytes", "Bytes sanitised by bench-line sanitise steps.")
        line_bytes.add_metric([], total_bytes)
        yield line_bytes
        line_seconds = CounterMetricFamily(
            "factory_line_wipe_seconds", "Wall-clock seconds spent in successful bench-line sanitise steps."
        )
        line_seconds.add_metric([], total_seconds)
        yield line_seconds
        rate = GaugeMetricFamily(
            "factory_line_wipe_throughput_bytes_per_second",
            "Sanitise throughput of steps that ended in the last hour (0 when none did).",
        )
        rate.add_metric([], recent_bytes / recent_seconds if recent_seconds > 0 else 0.0)
        yield rate


router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(ctx: ContextDep, _user: CurrentUser) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FactoryCollector(ctx.engine))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
