"""Every expected failure becomes a JSON 4xx with a reason; nothing leaks as a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from factory.kernel.db.errors import StorageError, as_factory_error
from factory.kernel.errors import FactoryError, Unauthenticated

log = logging.getLogger("api")


def _body(code: str, reason: str) -> dict[str, str]:
    return {"error": code, "reason": reason}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FactoryError)
    async def factory_error(_request: Request, exc: FactoryError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
        return JSONResponse(_body(exc.code, exc.reason), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg")))
        return JSONResponse(_body("invalid_input", "; ".join(parts) or "invalid request"), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(_body("http_error", str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    # A refusal by the database (value out of range, uniqueness race): the kernel says what it means.
    @app.exception_handler(StorageError)
    async def storage_error(request: Request, exc: StorageError) -> JSONResponse:
        typed = as_factory_error(exc)
        if typed is not None:
            return await factory_error(request, typed)
        log.error("database statement failed: %s", exc)
        return JSONResponse(_body("internal_error", "the request could not be completed"), status_code=500)

    @app.exception_handler(OverflowError)
    async def overflow_error(_request: Request, _exc: OverflowError) -> JSONResponse:
        return JSONResponse(_body("invalid_input", "a number is out of the supported range"), status_code=422)
