"""Every expected failure becomes a JSON 4xx with a reason; nothing leaks as a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

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

    # Input the schema admits but the database cannot store (an id beyond the column's range, a NUL
    # byte in text for PostgreSQL): the transaction has rolled back, so it is the caller's bad input.
    @app.exception_handler(DataError)
    async def data_error(_request: Request, exc: DataError) -> JSONResponse:
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "invalid value"
        return JSONResponse(_body("invalid_input", f"value cannot be stored: {first}"), status_code=422)

    # A uniqueness race the service's own checks could not see (two requests at once): nothing was stored.
    @app.exception_handler(IntegrityError)
    async def integrity_error(_request: Request, _exc: IntegrityError) -> JSONResponse:
        return JSONResponse(_body("conflict", "conflicts with a record stored meanwhile; retry"), status_code=409)

    @app.exception_handler(OverflowError)
    async def overflow_error(_request: Request, _exc: OverflowError) -> JSONResponse:
        return JSONResponse(_body("invalid_input", "a number is out of the supported range"), status_code=422)

    @app.exception_handler(StatementError)
    async def statement_error(request: Request, exc: StatementError) -> JSONResponse:
        if isinstance(exc.orig, (OverflowError, ValueError)):
            return JSONResponse(_body("invalid_input", "a value is out of the supported range"), status_code=422)
        log.error("database statement failed: %s", exc)
        return JSONResponse(_body("internal_error", "the request could not be completed"), status_code=500)
