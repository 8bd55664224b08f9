"""Prometheus ``/metrics``: devices by state, bench-line job durations and wipe throughput.

Every value is computed from the database at scrape time (``factory.line.views.factory_metrics``;
no in-process counters), so every API process reports the same numbers and a restart loses
nothing. This module only formats them, beside this process's HTTP request counters
(api/observability.py).

Who may scrape: a bearer token equal to the one in ``FACTORY_METRICS_TOKEN_FILE`` (a token that
opens nothing else), an API token of any role, or a client on the loopback interface with no token
at all. A request that came through a proxy (``Forwarded``/``X-Forwarded-For``) is not treated as
local, since a proxy on the same host would otherwise make every caller look local.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from api.deps import ContextDep, Credentials, Via, resolve_caller
from api.observability import HttpMetrics
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


log = logging.getLogger("api")
PROXY_HEADERS = (b"forwarded", b"x-forwarded-for")


def _scrape_token_matches(path: Path | None, token: str) -> bool:
    if path is None:
        return False
    try:  # read at each scrape, so a rotated token takes effect without a restart
        expected = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("FACTORY_METRICS_TOKEN_FILE %s is unreadable: %s", path, exc)
        return False
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


def _from_loopback(request: Request) -> bool:
    if request.client is None or any(name in PROXY_HEADERS for name, _ in request.scope["headers"]):
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:  # not an address (a test client's "testclient", a unix socket)
        return False


async def may_scrape(request: Request, credentials: Credentials) -> None:
    """The scrape token, a token of any role, or a local client without one; 401 otherwise."""
    token = credentials.credentials if credentials is not None and credentials.scheme.lower() == "bearer" else ""
    if token and _scrape_token_matches(request.app.state.context.settings.metrics_token_file, token):
        return
    if not token and _from_loopback(request):
        return
    await resolve_caller(request, credentials, Via.BEARER, None)


router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(ctx: ContextDep, request: Request, _scraper: Annotated[None, Depends(may_scrape)]) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FactoryCollector(ctx))
    http: HttpMetrics = request.app.state.http_metrics
    registry.register(http.requests)
    registry.register(http.latency)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
