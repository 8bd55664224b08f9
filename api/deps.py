"""FastAPI dependencies: the app context, a unit-of-work session, the caller and role checks."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from factory.app_context import AppContext
from factory.db.engine import read_scope, session_scope
from factory.errors import PermissionDenied, Unauthenticated
from factory.models.users import Role, User
from factory.users import authenticate_token_readonly

_bearer = HTTPBearer(auto_error=False, description="API token from 'factory users add'")


async def get_context(request: Request) -> AppContext:
    return request.app.state.context  # type: ignore[no-any-return]


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(ctx: ContextDep) -> Iterator[Session]:
    with session_scope(ctx.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_current_user(
    ctx: ContextDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("missing bearer token")
    # A read-only connection of its own: authentication never shares or blocks the caller's writes.
    with read_scope(ctx.engine) as conn:
        return authenticate_token_readonly(conn, credentials.credentials)


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_roles(*roles: Role) -> Callable[[User], Coroutine[None, None, User]]:
    allowed = {r.value for r in roles} | {Role.ADMIN.value}

    async def check(user: CurrentUser) -> User:  # no I/O: async avoids a thread-pool hop
        if user.role not in allowed:
            raise PermissionDenied(f"role '{user.role}' may not do this")
        return user

    return check


TechnicianUser = Annotated[User, Depends(require_roles(Role.TECHNICIAN))]
AuditorUser = Annotated[User, Depends(require_roles(Role.AUDITOR))]
AnyUser = CurrentUser
