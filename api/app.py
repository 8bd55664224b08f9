"""The FastAPI application: transport only; every rule lives in factory/."""

from __future__ import annotations

from fastapi import FastAPI

from api.docs import install_docs
from api.errors import install_error_handlers
from api.middleware import AdmissionGate, SecurityHeaders
from api.observability import install_observability
from api.routes import audit, custody, identity, intake, ledger, line, metrics, netboot
from api.schemas.common import ErrorBody
from api.web import install_web
from factory.kernel.context import AppContext

_ERRORS = {
    code: {"model": ErrorBody, "content": {"application/problem+json": {}}}
    for code in (400, 401, 403, 404, 409, 422, 503)
}


def create_app(context: AppContext | None = None) -> FastAPI:
    # /docs and /redoc serve their assets from this process (api/docs.py): no CDN on an air-gapped site.
    app = FastAPI(title="Device Factory", version="0.1.0", responses=_ERRORS, docs_url=None, redoc_url=None)  # type: ignore[arg-type]
    app.state.context = context or AppContext.from_env()
    install_error_handlers(app)
    # The last added runs first: security headers go on every response, the gate's 503s included.
    app.add_middleware(AdmissionGate, capacity=app.state.context.settings.capacity)
    app.add_middleware(SecurityHeaders)
    install_observability(app)  # outermost: request ids, access log and HTTP metrics for every answer

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # Routes match in order: the auditors' certificate search is the hottest read, so it goes first.
    for area in (audit, intake, ledger, custody, metrics, line, identity, netboot):
        app.include_router(area.router)
    install_web(app)
    install_docs(app)
    return app
