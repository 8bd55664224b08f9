"""Server-rendered web pages by area (Jinja2, plain forms, small JS): intake (receive), custody
(issue, swap), courier (consignments), audit (the auditors' pages), line (the bench board), identity
(the admins' users and access page), plus
login/logout (auth), rendering and form helpers."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from api.deps import LoginRequired, PageForbidden
from api.web import audit, auth, courier, custody, identity, intake, line
from api.web.render import WEB_DIR, render
from api.web.tech_routers import ROUTERS as TECH_ROUTERS


def install_web(app: FastAPI) -> None:
    """Mount the static files, the login routes and one router per area."""
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")

    @app.exception_handler(LoginRequired)
    async def login_required(_request: Request, exc: LoginRequired) -> Response:
        return auth.login_redirect(exc)

    @app.exception_handler(PageForbidden)
    async def page_forbidden(request: Request, exc: PageForbidden) -> Response:
        return render(request, "forbidden.html", exc.caller, 403, reason=exc.reason)

    for area in (auth, line, intake, custody, courier, audit, identity):
        app.include_router(area.router)
    for router in TECH_ROUTERS:
        app.include_router(router)
