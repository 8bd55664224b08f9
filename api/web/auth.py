"""Web login and logout: username + password (Argon2id), server-side sessions.

The session cookie carries a random id (HttpOnly, SameSite=Lax); the database keeps only its
hash, with an absolute and an idle expiry, and logout revokes it. Checking the session, the role
and every POST form's CSRF token is api/deps.py's (``page_user``); the login form, which has no
session yet, uses a double-submit cookie of its own here.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import ANY, SESSION_COOKIE, Caller, ContextDep, LoginRequired, page_user
from api.web.render import render
from factory.identity.errors import Throttled
from factory.identity.models import Role
from factory.identity.service import (
    SESSION_LIFETIME,
    check_password,
    close_web_session,
    directory_sign_in,
    login_attempt,
    open_web_session,
)
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import Unauthenticated

LOGIN_CSRF_COOKIE = "df_login_csrf"

HOME_BY_ROLE: dict[str, str] = {
    Role.TECHNICIAN.value: "/tech/receive",
    Role.COURIER.value: "/courier/consignments",
    Role.AUDITOR.value: "/audit/search",
    Role.ADMIN.value: "/tech/receive",
}

SignedIn = Annotated[Caller, Depends(page_user(ANY))]


def safe_next(value: str | None, identity_role: str) -> str:
    """Only same-site absolute paths; anything else goes to the role's home page."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return HOME_BY_ROLE.get(identity_role, "/")


router = APIRouter(include_in_schema=False)


def _login_page(request: Request, next_path: str, error: str | None, status: int, username: str = "") -> HTMLResponse:
    """The sign-in form; after a refusal it offers the user name typed again (WCAG 3.3.7), never
    the password."""
    token = secrets.token_urlsafe(32)
    page = render(
        request, "login.html", None, status, login_csrf=token, next_path=next_path, error=error, username=username[:64]
    )
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
        return _login_page(request, next, "the login form expired: please try again", 400, username)
    address = request.client.host if request.client else None
    try:
        # Throttled per account and per address; refused at once while either is delayed or locked.
        with login_attempt(ctx.engine, username, address) as session:
            vouched = directory_sign_in(ctx, username, password)  # before the first query: network I/O
            user = check_password(session, username, password, vouched)
            cookie, _web = open_web_session(session, user)
            role = user.role
    except (Unauthenticated, Throttled) as exc:
        page = _login_page(request, next, exc.reason, exc.status_code, username)
        if isinstance(exc, Throttled) and exc.retry_after:
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
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
def logout(request: Request, ctx: ContextDep, _me: SignedIn) -> Response:
    with session_scope(ctx.engine) as session:
        close_web_session(session, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def home(me: SignedIn) -> Response:
    return RedirectResponse(HOME_BY_ROLE.get(me.role, "/login"), status_code=303)


def login_redirect(exc: LoginRequired) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)
