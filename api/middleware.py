"""Two transport guards around every request: an admission queue and security headers.

``AdmissionGate`` handles at most ``api_concurrency`` requests at once; up to ``api_queue`` more
wait their turn, in order, for up to ``api_queue_seconds``; anything beyond that is answered at
once with a 503 problem and ``Retry-After`` (api/errors.py). So an overload degrades into quick,
retryable refusals rather than a 30 s stall or a 500, and what is admitted never needs more
threads or database connections than the process has (``factory/kernel/capacity.py``). The
health check and the board's long-lived event streams (which share one reader, see
api/routes/line.py) are not queued.

``SecurityHeaders`` gives every response the headers pages have (api/web/render.py) where the
route set none: no sniffing, no framing, same-origin referrers; JSON, problem and event-stream
bodies also get a CSP that allows nothing and ``Cache-Control: no-store``; HSTS when served over
TLS (``scheme`` is https: uvicorn with a certificate, or behind a proxy with ``--proxy-headers``).
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import busy
from factory.kernel.capacity import Capacity

UNQUEUED_PATHS = frozenset({"/healthz", "/api/board/events"})
HSTS = "max-age=31536000"
ALWAYS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}
FOR_DATA = {"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'", "Cache-Control": "no-store"}
DATA_TYPES = ("application/json", "application/problem+json", "text/event-stream", "text/plain")


class AdmissionGate:
    def __init__(self, app: ASGIApp, capacity: Capacity) -> None:
        self.app = app
        self.capacity = capacity
        self.waiting = 0
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNQUEUED_PATHS:
            await self.app(scope, receive, send)
            return
        if self._slots is None:  # made on first use, inside the server's event loop
            self._slots = asyncio.Semaphore(self.capacity.api_concurrency)
        slots = self._slots
        if slots.locked() or self.waiting:
            if self.waiting >= self.capacity.api_queue:
                await busy("the server is at capacity: retry shortly")(scope, receive, send)
                return
            self.waiting += 1
            try:
                await asyncio.wait_for(slots.acquire(), self.capacity.api_queue_seconds)
            except TimeoutError:
                await busy("the server is at capacity: retry shortly")(scope, receive, send)
                return
            finally:
                self.waiting -= 1
        else:
            await slots.acquire()
        try:
            await self.app(scope, receive, send)
        finally:
            slots.release()


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(MutableHeaders(scope=message), tls)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_security_headers(headers: MutableHeaders, tls: bool) -> None:
    """Set each security header the response does not set itself."""
    wanted = dict(ALWAYS)
    if headers.get("content-type", "").split(";")[0].strip() in DATA_TYPES:
        wanted.update(FOR_DATA)
    if tls:
        wanted["Strict-Transport-Security"] = HSTS
    for name, value in wanted.items():
        if name not in headers:
            headers[name] = value
