"""The reference apps ``benchmarks/audit.py`` measures the search against, served by uvicorn as
``benchmarks.audit_apps:bare_app`` and ``benchmarks.audit_apps:auth_only_app``."""

from __future__ import annotations

from fastapi import FastAPI

from api.deps import AuditorUser
from api.errors import install_error_handlers
from factory.kernel.context import AppContext

bare_app = FastAPI()


@bare_app.get("/bare")
def bare() -> dict[str, str]:
    return {"status": "ok"}


@bare_app.get("/bare-async")
async def bare_async() -> dict[str, str]:
    return {"status": "ok"}


def auth_only_app() -> FastAPI:
    """The project's bearer-token auth and role check in front of a constant: what a request
    costs before the search itself runs. ``/auth-only-async`` is the search's reference (the
    practical limit for an async route with that auth); ``/auth-only`` is its sync twin."""
    app = FastAPI()
    app.state.context = AppContext.from_env()
    install_error_handlers(app)

    @app.get("/auth-only")
    def auth_only(_user: AuditorUser) -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/auth-only-async")
    async def auth_only_async(_user: AuditorUser) -> dict[str, str]:
        # The reference for the search, which is async too: same auth, no query, no thread hop.
        return {"status": "ok"}

    return app
