"""Request ids, the access log and HTTP metrics: one ASGI middleware around every request.

- Request id: a caller's ``X-Request-ID`` (1-128 characters of ``A-Z a-z 0-9 . _ : -``) is kept, so a
  proxy's id follows the request; anything else gets a fresh one. It goes back in the response's
  ``X-Request-ID`` and, through ``factory.kernel.logs.REQUEST_ID``, into every log line written
  while the request runs.
- Access log: one line per request on the ``api.access`` logger once the response has ended:
  method, route template (``/api/devices/{serial}``, never the raw path or query string, which
  could carry a serial's neighbours or a token), status, duration, request id and the signed-in
  user's name when the route knew it. No header or body is ever logged.
- Metrics: ``factory_http_requests_total`` and ``factory_http_request_duration_seconds`` by
  method, route template and status class (2xx...), counted in this process (unlike the domain
  families, which come from the database); ``/metrics`` (api/routes/metrics.py) reports both.
  A path no route matched counts as route ``unmatched``, so scanning for URLs cannot grow the
  label set without bound.

It is the outermost middleware, so the admission gate's 503s are logged and counted too.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from factory.kernel.logs import REQUEST_ID

access_log = logging.getLogger("api.access")

REQUEST_ID_HEADER = "X-Request-ID"
_GOOD_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LABELS = ("method", "route", "status")
UNMATCHED = "unmatched"
CALLER_KEY = "factory.caller"  # a scope key api/deps.py sets once it knows who is calling


class HttpMetrics:
    """This process's request counters, registered into each scrape's registry by /metrics."""

    def __init__(self) -> None:
        self.requests = Counter(
            "factory_http_requests", "HTTP requests answered, by method, route template and status class.",
            LABELS, registry=None,
        )  # fmt: skip
        self.latency = Histogram(
            "factory_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by method, route template and status class.",
            LABELS, buckets=LATENCY_BUCKETS, registry=None,
        )  # fmt: skip

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, f"{status // 100}xx")
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)


def request_id_from(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            sent = value.decode("latin-1")
            if _GOOD_ID.fullmatch(sent):
                return sent
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class Observability:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before it starts a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            method, route = scope["method"], route_template(scope)
            self.metrics.observe(method, route, status, seconds)
            access_log.info(
                "%s %s %s", method, route, status,
                extra={
                    "method": method, "route": route, "status": status,
                    "duration_ms": round(seconds * 1000, 3), "user": scope.get(CALLER_KEY),
                },
            )  # fmt: skip
            REQUEST_ID.reset(token)


def install_observability(app: FastAPI) -> None:
    """Adds the middleware (call it after the other middlewares: the last added runs first)."""
    app.state.http_metrics = HttpMetrics()
    app.add_middleware(Observability, metrics=app.state.http_metrics)
