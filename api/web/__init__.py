"""Server-rendered web pages for technicians, couriers and auditors (Jinja2, plain forms, small JS)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from api.web import auth, pages_auditor, pages_courier, pages_technician
from api.web.render import WEB_DIR, render


def install_web(app: FastAPI) -> None:
    """Mount the static files, the login routes and one router per user group."""
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")

    @app.exception_handler(auth.LoginRequired)
    async def login_required(_request: Request, exc: auth.LoginRequired) -> Response:
        return auth.login_redirect(exc)

    @app.exception_handler(auth.PageForbidden)
    async def page_forbidden(request: Request, exc: auth.PageForbidden) -> Response:
        return render(request, "forbidden.html", None, 403, reason=exc.reason)

    app.include_router(auth.router)
    app.include_router(pages_technician.router)
    app.include_router(pages_courier.router)
    app.include_router(pages_auditor.router)
