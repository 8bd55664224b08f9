"""Prometheus ``/metrics``: devices by state, bench-line job durations and wipe throughput.

Every value is computed from the database at scrape time (``factory.line.views.factory_metrics``;
no in-process counters), so every API process reports the same numbers and a restart loses
nothing. This module only formats them. Scraping needs an API token of any role (Prometheus:
``authorization: {credentials: <token>}``).
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from api.deps import ContextDep, CurrentUser
from factory.kernel.context import AppContext
from factory.line.views import JOB_DURATION_BUCKETS, FactoryMetrics, factory_metrics


def _counter(name: str, documentation: str, value: float) -> Metric:
    counter = CounterMetricFamily(name, documentation)
    counter.add_metric([], value)
    return counter


def _job_durations(m: FactoryMetrics) -> Metric:
    histogram = HistogramMetricFamily(
        "factory_job_duration_seconds",
        "Bench-line job durations from start to end, by pipeline and final status.",
        labels=["pipeline", "status"],
    )
    for row in m.job_durations:
        buckets = [(floatToGoString(le), float(n)) for le, n in zip(JOB_DURATION_BUCKETS, row.cumulative, strict=True)]
        buckets.append(("+Inf", float(row.count)))
        histogram.add_metric([row.pipeline, row.status], buckets, row.total_seconds)
    return histogram


def metric_families(m: FactoryMetrics) -> Iterator[Metric]:
    devices = GaugeMetricFamily("factory_devices", "Devices by lifecycle state.", labels=["state"])
    for state, n in sorted(m.devices_by_state.items()):
        devices.add_metric([state], n)
    yield devices
    yield _job_durations(m)
    yield _counter("factory_media_certified", "Storage media with a sanitisation certificate.", m.media_certified)
    yield _counter(
        "factory_wipe_bytes", "Capacity of the storage media certified as sanitised, in bytes.", m.certified_bytes
    )
    wipes = m.line_wipes
    yield _counter("factory_line_wipe_bytes", "Bytes sanitised by bench-line sanitise steps.", wipes.total_bytes)
    yield _counter(
        "factory_line_wipe_seconds", "Wall-clock seconds spent in successful bench-line sanitise steps.",
        wipes.total_seconds,
    )  # fmt: skip
    rate = GaugeMetricFamily(
        "factory_line_wipe_throughput_bytes_per_second",
        "Sanitise throughput of steps that ended in the last hour (0 when none did).",
    )
    rate.add_metric([], wipes.recent_rate)
    yield rate


class FactoryCollector(Collector):
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(factory_metrics(self.ctx.engine))


router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(ctx: ContextDep, _user: CurrentUser) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FactoryCollector(ctx))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
