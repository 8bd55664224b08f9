"""Identity administration over JSON (admins only): users disabled and enabled, API tokens issued,
listed and revoked, browser sessions listed and ended, sign-in and PIN lockouts lifted, and the
identity audit read. Every change is audited with the admin's name (factory/identity/lifecycle.py).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import AdminUser, ContextDep, SessionDep, UnitOfWorkRoute
from api.params import RowId as Id
from api.params import UserName as Name
from api.schemas.identity import (
    AuditPublic,
    LockPublic,
    NewTokenPublic,
    RevokedPublic,
    SessionPublic,
    TokenIn,
    TokenPublic,
    UnlockedPublic,
    UnlockIn,
    UserChangePublic,
    UserPublic,
)
from factory.identity import service, views
from factory.kernel import limits

router = APIRouter(prefix="/api", tags=["identity"], route_class=UnitOfWorkRoute)


def _user(user: Any, ended: int | None = None) -> dict[str, Any]:
    out = {"name": user.name, "role": user.role, "disabled": user.disabled, "created_at": user.created_at}
    return out if ended is None else out | {"sessions_ended": ended}


@router.get("/users", response_model=list[UserPublic])
def list_users(session: SessionDep, _admin: AdminUser) -> list[dict[str, Any]]:
    return [_user(u) for u in views.list_users(session)]


@router.post("/users/{name}/disable", response_model=UserChangePublic)
def disable_user(name: Name, session: SessionDep, admin: AdminUser) -> dict[str, Any]:
    """Sessions end at once; the user's API tokens are refused within FACTORY_TOKEN_CACHE_SECONDS."""
    return _user(*service.set_disabled(session, name, True, admin.name))


@router.post("/users/{name}/enable", response_model=UserChangePublic)
def enable_user(name: Name, session: SessionDep, admin: AdminUser) -> dict[str, Any]:
    return _user(*service.set_disabled(session, name, False, admin.name))


@router.get("/users/{name}/tokens", response_model=list[TokenPublic])
def user_tokens(name: Name, session: SessionDep, _admin: AdminUser) -> list[dict[str, Any]]:
    return [asdict(t) for t in views.list_tokens(session, name)]


@router.post("/users/{name}/tokens", status_code=201, response_model=NewTokenPublic)
def issue_token(name: Name, body: TokenIn, session: SessionDep, ctx: ContextDep, admin: AdminUser) -> dict[str, Any]:
    user = service.get_user(session, name)
    token = service.issue_token(session, user, admin.name, body.days or ctx.settings.token_days)
    return {"user": user.name, "token": token}


@router.post("/users/{name}/tokens/revoke", response_model=RevokedPublic)
def revoke_user_tokens(name: Name, session: SessionDep, admin: AdminUser) -> dict[str, int]:
    return {"revoked": service.revoke_user_tokens(session, name, admin.name)}


@router.post("/tokens/{token_id}/revoke", response_model=RevokedPublic)
def revoke_token(token_id: Id, session: SessionDep, admin: AdminUser) -> dict[str, int]:
    """Refused by every API process within FACTORY_TOKEN_CACHE_SECONDS."""
    service.revoke_token(session, token_id, admin.name)
    return {"revoked": 1}


@router.get("/sessions", response_model=list[SessionPublic])
def list_sessions(
    session: SessionDep, _admin: AdminUser, user: Annotated[str | None, Query(max_length=limits.NAME)] = None
) -> list[dict[str, Any]]:
    return [asdict(w) for w in views.open_sessions(session, user)]


@router.post("/sessions/{session_id}/end", response_model=RevokedPublic)
def end_session(session_id: Id, session: SessionDep, admin: AdminUser) -> dict[str, int]:
    service.end_session(session, session_id, admin.name)
    return {"revoked": 1}


@router.get("/locks", response_model=list[LockPublic])
def list_locks(session: SessionDep, _admin: AdminUser) -> list[dict[str, Any]]:
    return [asdict(v) for v in views.throttled(session)]


@router.post("/locks/unlock", response_model=UnlockedPublic)
def unlock(body: UnlockIn, session: SessionDep, admin: AdminUser) -> dict[str, bool]:
    return {"unlocked": service.unlock(session, body.kind, body.subject, admin.name)}


@router.get("/identity/audit", response_model=list[AuditPublic])
def identity_audit(
    session: SessionDep,
    _admin: AdminUser,
    target: Annotated[str | None, Query(max_length=limits.PARTY)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    return [r.model_dump() for r in views.audit_trail(session, target, limit)]
