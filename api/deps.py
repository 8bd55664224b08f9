"""FastAPI dependencies: the app context, a unit-of-work session and the ONE way a caller is known.

Every route names who may call it with ``caller(...)`` (JSON) or ``page_user(...)`` (web pages):

- Roles: the roles listed, plus admins (who may do everything); ``ANY`` means every signed-in
  user. Naming no role is an error, so "admins only" is written ``Role.ADMIN``, never ``()``.
- Credentials: a bearer token (API tokens from ``factory users add``) or the web login's session
  cookie. The JSON API takes bearer tokens; the routes the board page calls from a browser also
  take the cookie (EventSource cannot send headers); pages take the cookie only.
- CSRF: a cookie-authenticated unsafe request must carry the session's CSRF token, in the form
  field ``csrf_token`` (pages) or the ``X-CSRF-Token`` header (JSON). A bearer token is not sent
  by browsers on their own, so it needs none.
- Failures: JSON routes answer 401/403 problem details (api/errors.py); pages send a caller
  without a session to ``/login?next=...`` and render the 403 page (api/web/__init__.py).

A JSON route's unit of work runs on one thread: a router that hands out ``SessionDep`` is made
with ``route_class=UnitOfWorkRoute``, which commits (or rolls back) the session on the thread that
ran the route, before the response is serialised. FastAPI validates a sync route's response model
on a second trip through the shared 40-thread pool; a session still open then held SQLite's write
lock or a pooled connection while waiting for a thread, and with more than 40 requests in flight
the holders waited for threads held by requests waiting for them (issue 16).
"""

from __future__ import annotations

import functools
import hmac
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from factory.identity.models import Role
from factory.identity.service import web_session_user
from factory.identity.views import verified_tokens
from factory.kernel.context import AppContext
from factory.kernel.db.engine import Session, session_scope
from factory.kernel.errors import PermissionDenied, Unauthenticated

SESSION_COOKIE = "df_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(auto_error=False, description="API token from 'factory users add'")


class Anyone(Enum):
    """Every signed-in user, whatever the role."""

    ANY = "any"


ANY = Anyone.ANY


class Via(Enum):
    """Which credentials a route takes (see the module docstring)."""

    BEARER = "bearer token"
    BEARER_OR_COOKIE = "bearer token or web session"
    PAGE = "web session"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller as routes and templates see them (a detached copy, no ORM state).
    ``csrf_token`` is the web session's, None for a bearer token."""

    name: str
    role: str
    csrf_token: str | None = None

    def has(self, *roles: Role) -> bool:
        return self.role == Role.ADMIN.value or self.role in {r.value for r in roles}


class LoginRequired(Exception):
    """A page without a valid session: answered with a redirect to the login form."""

    def __init__(self, next_path: str, reason: str) -> None:
        super().__init__(reason)
        self.next_path = next_path
        self.reason = reason


class PageForbidden(Exception):
    """Logged in, but this role may not use this page or action (rendered as a 403 page). ``caller``
    lets that page keep the navigation and sign-out every other page shows (WCAG 3.2.3)."""

    def __init__(self, reason: str, caller: Caller | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.caller = caller


async def get_context(request: Request) -> AppContext:
    return request.app.state.context  # type: ignore[no-any-return]


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_session(ctx: ContextDep) -> AsyncIterator[Session]:
    """A session for the route (no connection until its first query). ``UnitOfWorkRoute`` ends
    its transaction on the route's thread; only a route made without it leaves one open here."""
    session = Session(ctx.engine, expire_on_commit=False)  # as session_scope's
    try:
        yield session
        if session.in_transaction():
            await _off_pool(session.commit)
    except BaseException:
        if session.in_transaction():
            await _off_pool(session.rollback)
        raise
    finally:
        session.close()  # its transaction has ended by now, so this is no I/O


async def _off_pool(action: Callable[[], None]) -> None:
    # Like FastAPI's own dependency exit: a holder of the write lock or a pooled connection must
    # never wait for a token of the shared thread pool, so it gets a limiter of its own.
    await to_thread.run_sync(action, limiter=CapacityLimiter(1))


def _one_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The sync ``endpoint`` that ends its sessions' transactions itself, on its own thread.
    (A coroutine or generator endpoint is left as it is: its body does not end when it returns.)"""
    if getattr(endpoint, "one_thread_unit", False) or not inspect.isfunction(endpoint) or _is_lazy(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    def unit_of_work(*args: Any, **kwargs: Any) -> Any:
        sessions = [value for value in kwargs.values() if isinstance(value, Session)]
        try:
            result = endpoint(*args, **kwargs)
        except BaseException:
            for session in sessions:
                session.rollback()
            raise
        for session in sessions:
            session.commit()  # a refusal at commit is raised here, before any response is made
        return result

    unit_of_work.one_thread_unit = True  # type: ignore[attr-defined]
    return unit_of_work


def _is_lazy(endpoint: Callable[..., Any]) -> bool:
    return (
        inspect.iscoroutinefunction(endpoint)
        or inspect.isgeneratorfunction(endpoint)
        or inspect.isasyncgenfunction(endpoint)
    )


class UnitOfWorkRoute(APIRoute):
    """A JSON route whose session's transaction begins and ends on one thread (see above)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _one_thread(endpoint), **kwargs)


SessionDep = Annotated[Session, Depends(get_session)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


# ---------------------------------------------------------------- the resolver


def _allowed(roles: tuple[Role | Anyone, ...]) -> frozenset[str] | None:
    """The role values allowed (admins always), or None for ANY."""
    if not roles:
        raise TypeError("name the roles allowed (admins always are) or ANY")
    if ANY in roles:
        return None
    return frozenset({r.value for r in roles if isinstance(r, Role)} | {Role.ADMIN.value})


def _session_caller(ctx: AppContext, cookie: str) -> Caller:
    with session_scope(ctx.engine) as session:
        user, web = web_session_user(session, cookie)
        return Caller(user.name, user.role, web.csrf_token)


async def _bearer_caller(ctx: AppContext, token: str) -> Caller:
    tokens = verified_tokens(ctx)
    # Async so a token verified a moment ago (factory/identity/token_cache.py) costs no thread-pool
    # hop; only the database check (a read-only connection of its own) goes to a thread.
    user = tokens.get(token)
    if user is None:
        user = await run_in_threadpool(tokens.check, ctx.engine, token)
    return Caller(user.name, user.role)


async def _csrf_sent(request: Request, via: Via) -> str:
    if via is Via.PAGE:
        sent = (await request.form()).get(CSRF_FIELD)  # Starlette keeps the parsed form for the route
        return sent if isinstance(sent, str) else ""
    return request.headers.get(CSRF_HEADER, "")


async def resolve_caller(
    request: Request, credentials: HTTPAuthorizationCredentials | None, via: Via, allowed: frozenset[str] | None
) -> Caller:
    """Who is calling, checked for role and (cookie sessions) CSRF.

    :raises Unauthenticated: no usable credentials, or an invalid, revoked or expired one.
    :raises PermissionDenied: the role is not allowed, or the CSRF token is missing or stale.
    """
    # The context straight from the app, not as a sub-dependency: FastAPI spends ~10 us resolving each.
    ctx: AppContext = request.app.state.context
    token = credentials.credentials if credentials is not None and credentials.scheme.lower() == "bearer" else ""
    if token and via is not Via.PAGE:
        caller = await _bearer_caller(ctx, token)
    elif via is Via.BEARER:
        raise Unauthenticated("missing bearer token")
    elif not (cookie := request.cookies.get(SESSION_COOKIE)):
        raise Unauthenticated(f"missing {via.value}")
    else:
        caller = await run_in_threadpool(_session_caller, ctx, cookie)
    request.scope["factory.caller"] = caller.name  # for the access log (api/observability.py)
    request.scope["factory.caller_seen"] = caller  # a refused page still shows who is signed in
    if allowed is not None and caller.role not in allowed:
        what = "use this page" if via is Via.PAGE and request.method in SAFE_METHODS else "do this"
        raise PermissionDenied(f"role '{caller.role}' may not {what}")
    if caller.csrf_token is not None and request.method not in SAFE_METHODS:
        sent = await _csrf_sent(request, via)
        # Bytes: compare_digest refuses non-ASCII text with a TypeError (a 500) instead of a mismatch.
        if not sent or not hmac.compare_digest(sent.encode(), caller.csrf_token.encode()):
            raise PermissionDenied(
                "the form's security token is missing or stale: reload the page and try again"
                if via is Via.PAGE
                else "missing or stale CSRF token (X-CSRF-Token)"
            )
    return caller


CallerCheck = Callable[..., Coroutine[Any, Any, Caller]]


def caller(*roles: Role | Anyone, via: Via = Via.BEARER) -> CallerCheck:
    """A JSON route's caller: these roles plus admins, or ANY; 401/403 problem details otherwise."""
    allowed = _allowed(roles)

    async def check(request: Request, credentials: Credentials) -> Caller:
        return await resolve_caller(request, credentials, via, allowed)

    return check


def page_user(*roles: Role | Anyone) -> CallerCheck:
    """A web page's (or form post's) user: these roles plus admins, or ANY; redirected to the
    login form without a session, shown the 403 page without the role or a valid CSRF token."""
    allowed = _allowed(roles)

    async def check(request: Request) -> Caller:
        try:
            return await resolve_caller(request, None, Via.PAGE, allowed)
        except Unauthenticated as exc:
            # After login, come back to the page asked for; a POST target is not re-sent, so go home.
            raise LoginRequired(request.url.path if request.method == "GET" else "/", exc.reason) from None
        except PermissionDenied as exc:
            raise PageForbidden(exc.reason, request.scope.get("factory.caller_seen")) from None

    return check


CurrentUser = Annotated[Caller, Depends(caller(ANY))]
TechnicianUser = Annotated[Caller, Depends(caller(Role.TECHNICIAN))]
CourierUser = Annotated[Caller, Depends(caller(Role.COURIER))]
AuditorUser = Annotated[Caller, Depends(caller(Role.AUDITOR))]
AdminUser = Annotated[Caller, Depends(caller(Role.ADMIN))]
AnyUser = CurrentUser
