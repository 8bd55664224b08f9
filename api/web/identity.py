"""The admins' page of who may get in: users (disable, enable), API tokens (revoke), browser
sessions (end), sign-in and PIN lockouts (unlock), and the latest identity audit rows.

Every button is a small POST form with the session's CSRF token, named for what it acts on (for
screen readers) and answered with a redirect back to the page and a notice; every change is
audited with the admin's name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import Caller, ContextDep, page_user
from api.params import RowId as Id
from api.params import UserName as Name
from api.web.render import render
from factory.identity import service, views
from factory.identity.models import Role
from factory.kernel import limits
from factory.kernel.context import AppContext
from factory.kernel.db.engine import Session, session_scope
from factory.kernel.errors import FactoryError

router = APIRouter(prefix="/admin", include_in_schema=False)

AdminPage = Annotated[Caller, Depends(page_user(Role.ADMIN))]
PAGE = "/admin/users"

# What a redirect's ``done`` code says (fixed texts: the query string cannot put words on the page).
NOTICES = {
    "disabled": "{target} is disabled: their sessions ended and their API tokens are refused within {bound} s.",
    "enabled": "{target} is enabled again.",
    "revoked": "API token {target} is revoked: refused everywhere within {bound} s.",
    "ended": "Browser session {target} has ended.",
    "unlocked": "{target} is unlocked.",
    "unchanged": "Nothing was counted against {target}.",
}


def _snapshot(session: Session) -> dict[str, Any]:
    return {
        "users": views.list_users(session),
        "tokens": [t for t in views.list_tokens(session) if t.live],
        "sessions": views.open_sessions(session),
        "locks": views.throttled(session),
        "trail": views.audit_trail(session, limit=50),
    }


def _page(request: Request, ctx: AppContext, me: Caller, status: int = 200, **extra: Any) -> HTMLResponse:
    with session_scope(ctx.engine) as session:
        data = _snapshot(session)
    return render(request, "admin_users.html", me, status, **data, **extra)


@router.get("/users")
def users_page(request: Request, ctx: ContextDep, me: AdminPage, done: str = "", target: str = "") -> HTMLResponse:
    notice = NOTICES.get(done)
    bound = f"{ctx.settings.token_cache_seconds:g}"
    return _page(request, ctx, me, notice=notice.format(target=target[:200], bound=bound) if notice else None)


def _act(request: Request, ctx: AppContext, me: Caller, action: Callable[[Session], tuple[str, str]]) -> Response:
    """One change in one unit of work, then back to the page with a notice (or the reason it was refused)."""
    try:
        with session_scope(ctx.engine) as session:
            done, target = action(session)
    except FactoryError as exc:
        return _page(request, ctx, me, exc.status_code, error=exc.reason)
    return RedirectResponse(f"{PAGE}?{urlencode({'done': done, 'target': target})}", status_code=303)


@router.post("/users/{name}/disable")
def disable(request: Request, ctx: ContextDep, me: AdminPage, name: Name) -> Response:
    return _act(request, ctx, me, lambda s: ("disabled", service.set_disabled(s, name, True, me.name)[0].name))


@router.post("/users/{name}/enable")
def enable(request: Request, ctx: ContextDep, me: AdminPage, name: Name) -> Response:
    return _act(request, ctx, me, lambda s: ("enabled", service.set_disabled(s, name, False, me.name)[0].name))


@router.post("/tokens/{token_id}/revoke")
def revoke(request: Request, ctx: ContextDep, me: AdminPage, token_id: Id) -> Response:
    return _act(request, ctx, me, lambda s: ("revoked", str(service.revoke_token(s, token_id, me.name).id)))


@router.post("/sessions/{session_id}/end")
def end(request: Request, ctx: ContextDep, me: AdminPage, session_id: Id) -> Response:
    return _act(request, ctx, me, lambda s: ("ended", str(service.end_session(s, session_id, me.name).id)))


@router.post("/locks/unlock")
def unlock(
    request: Request,
    ctx: ContextDep,
    me: AdminPage,
    kind: Annotated[str, Form(max_length=16)] = "",
    subject: Annotated[str, Form(max_length=limits.LOCK_SUBJECT)] = "",
) -> Response:
    def action(session: Session) -> tuple[str, str]:
        lifted = service.unlock(session, kind, subject, me.name)
        return ("unlocked" if lifted else "unchanged"), f"{kind} {subject}"

    return _act(request, ctx, me, action)
