"""Web login: username + password (Argon2id), server-side sessions, CSRF, role checks.

The session cookie carries a random id (HttpOnly, SameSite=Lax); the database keeps only its
hash, with an absolute and an idle expiry, and logout revokes it. Every POST form carries the
session's CSRF token; the login form, which has no session yet, uses a double-submit cookie.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import ContextDep
from api.web.render import WebIdentity, render
from factory.identity.models import Role
from factory.identity.service import (
    SESSION_LIFETIME,
    check_password,
    close_web_session,
    open_web_session,
    web_session_user,
)
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import Unauthenticated

SESSION_COOKIE = "df_session"
LOGIN_CSRF_COOKIE = "df_login_csrf"
CSRF_FIELD = "csrf_token"

HOME_BY_ROLE: dict[str, str] = {
    Role.TECHNICIAN.value: "/tech/receive",
    Role.COURIER.value: "/courier/consignments",
    Role.AUDITOR.value: "/audit/search",
    Role.ADMIN.value: "/tech/receive",
}


class LoginRequired(Exception):
    """No valid session: pages answer with a redirect to the login form."""

    def __init__(self, next_path: str, reason: str) -> None:
        super().__init__(reason)
        self.next_path = next_path
        self.reason = reason


class PageForbidden(Exception):
    """Logged in, but this role may not use this page or action (rendered as a 403 page)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _next_of(request: Request) -> str:
    # After login, come back to the page asked for; a POST target is not re-sent, so go to its page.
    return request.url.path if request.method == "GET" else "/"


def web_identity(request: Request, ctx: ContextDep) -> WebIdentity:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise LoginRequired(_next_of(request), "please log in")
    with session_scope(ctx.engine) as session:
        try:
            user, web = web_session_user(session, cookie)
        except Unauthenticated as exc:
            raise LoginRequired(_next_of(request), exc.reason) from None
        return WebIdentity(name=user.name, role=user.role, csrf_token=web.csrf_token)


WebUserDep = Annotated[WebIdentity, Depends(web_identity)]


def page_user(*roles: Role) -> Callable[[WebIdentity], WebIdentity]:
    """A GET page for these roles (admins may use every page)."""

    def check(identity: WebUserDep) -> WebIdentity:
        if roles and not identity.has(*roles):
            raise PageForbidden(f"role '{identity.role}' may not use this page")
        return identity

    return check


def form_user(*roles: Role) -> Callable[[Request, WebIdentity], Coroutine[Any, Any, WebIdentity]]:
    """A POST action for these roles; the form must carry the session's CSRF token."""

    async def check(request: Request, identity: WebUserDep) -> WebIdentity:
        if roles and not identity.has(*roles):
            raise PageForbidden(f"role '{identity.role}' may not do this")
        form = await request.form()
        sent = form.get(CSRF_FIELD)
        if not isinstance(sent, str) or not hmac.compare_digest(sent, identity.csrf_token):
            raise PageForbidden("the form's security token is missing or stale: reload the page and try again")
        return identity

    return check


def safe_next(value: str | None, identity_role: str) -> str:
    """Only same-site absolute paths; anything else goes to the role's home page."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return HOME_BY_ROLE.get(identity_role, "/")


router = APIRouter(include_in_schema=False)


def _login_page(request: Request, next_path: str, error: str | None, status: int) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    page = render(request, "login.html", None, status, login_csrf=token, next_path=next_path, error=error)
    secure = request.url.scheme == "https"
    page.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/login")
    return page


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return _login_page(request, next, None, 200)


@router.post("/login")
def login(
    request: Request,
    ctx: ContextDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie_token or not hmac.compare_digest(cookie_token, csrf_token):
        return _login_page(request, next, "the login form expired: please try again", 400)
    try:
        with session_scope(ctx.engine) as session:
            user = check_password(session, username, password)
            cookie, _web = open_web_session(session, user)
            role = user.role
    except Unauthenticated as exc:
        return _login_page(request, next, exc.reason, 401)
    response = RedirectResponse(safe_next(next, role), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, ctx: ContextDep, _me: Annotated[WebIdentity, Depends(form_user())]) -> Response:
    with session_scope(ctx.engine) as session:
        close_web_session(session, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def home(me: WebUserDep) -> Response:
    return RedirectResponse(HOME_BY_ROLE.get(me.role, "/login"), status_code=303)


def login_redirect(exc: LoginRequired) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)
