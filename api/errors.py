"""Every failure becomes an RFC 9457 problem (``application/problem+json``); nothing leaks as a
traceback.

A problem carries the RFC's members, ``type`` (``about:blank``: the status says what kind of
problem it is), ``title`` (the status phrase), ``status`` and ``detail`` (what went wrong, for a
person), and two members of our own that clients and tests have always read: ``error`` (a stable
machine code such as ``not_found`` or ``invalid_input``) and ``reason`` (the same text as
``detail``). Expected failures are 4xx; an overloaded server answers 503 with ``Retry-After``
(api/admission.py, and a database pool or write lock that cannot be had in time); anything else
is a 500 problem with no detail.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from factory.kernel.db.errors import BUSY_ERRORS, StorageError, as_factory_error, is_busy
from factory.kernel.errors import FactoryError, Unauthenticated

log = logging.getLogger("api")

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 1


def problem(status: int, code: str, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one way an error response is made."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": reason,
        "error": code,
        "reason": reason,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def busy(reason: str) -> JSONResponse:
    """503 with Retry-After: the server is at capacity now; the same request may succeed soon."""
    return problem(503, "overloaded", reason, {"Retry-After": str(RETRY_AFTER_SECONDS)})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FactoryError)
    async def factory_error(_request: Request, exc: FactoryError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else {}
        if retry_after := getattr(exc, "retry_after", None):  # identity's Throttled while a delay runs
            headers["Retry-After"] = str(retry_after)
        return problem(exc.status_code, exc.code, exc.reason, headers or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg")))
        return problem(422, "invalid_input", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "http_error", str(exc.detail), exc.headers)

    # A refusal by the database (value out of range, uniqueness race) is what the kernel says it
    # means; a database that cannot be had in time (pool, SQLite's write lock) is a 503 to retry.
    async def storage_error(request: Request, exc: Exception) -> JSONResponse:
        typed = as_factory_error(exc) if isinstance(exc, StorageError) else None
        if typed is not None:
            return await factory_error(request, typed)
        if is_busy(exc):
            return busy("the database is busy: retry shortly")
        log.error("database statement failed: %s", exc)
        return problem(500, "internal_error", "the request could not be completed")

    for kind in (StorageError, *BUSY_ERRORS):
        app.add_exception_handler(kind, storage_error)

    @app.exception_handler(OverflowError)
    async def overflow_error(_request: Request, _exc: OverflowError) -> JSONResponse:
        return problem(422, "invalid_input", "a number is out of the supported range")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Still a 500 (and logged with its traceback), but a problem body, never the traceback.
        # Starlette sends it from outside every middleware, so it gets its headers here.
        from api.middleware import add_security_headers  # the middleware module imports this one

        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        response = problem(500, "internal_error", "the request could not be completed")
        add_security_headers(response.headers, request.url.scheme == "https")
        return response
