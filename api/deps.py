"""FastAPI dependencies: the app context, a unit-of-work session, the caller and role checks."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from factory.identity.models import Role, User
from factory.identity.views import verified_tokens
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import PermissionDenied, Unauthenticated

_bearer = HTTPBearer(auto_error=False, description="API token from 'factory users add'")


async def get_context(request: Request) -> AppContext:
    return request.app.state.context  # type: ignore[no-any-return]


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(ctx: ContextDep) -> Iterator[Session]:
    with session_scope(ctx.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_current_user(request: Request, credentials: Credentials) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("missing bearer token")
    # The context straight from the app, not as a sub-dependency: FastAPI spends ~10 us resolving each.
    ctx: AppContext = request.app.state.context
    tokens = verified_tokens(ctx)
    # Async so a token verified a moment ago (factory/identity/token_cache.py) costs no thread-pool hop;
    # only the database check (a read-only connection of its own) goes to a thread.
    user = tokens.get(credentials.credentials)
    if user is None:
        user = await run_in_threadpool(tokens.check, ctx.engine, credentials.credentials)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_roles(*roles: Role) -> Callable[[Request, Credentials], Coroutine[None, None, User]]:
    allowed = {r.value for r in roles} | {Role.ADMIN.value}

    # Authenticates itself rather than depending on CurrentUser: one resolution pass fewer.
    async def check(request: Request, credentials: Credentials) -> User:
        user = await get_current_user(request, credentials)
        if user.role not in allowed:
            raise PermissionDenied(f"role '{user.role}' may not do this")
        return user

    return check


TechnicianUser = Annotated[User, Depends(require_roles(Role.TECHNICIAN))]
AuditorUser = Annotated[User, Depends(require_roles(Role.AUDITOR))]
AnyUser = CurrentUser
