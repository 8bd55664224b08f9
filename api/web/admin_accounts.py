"""Admins' accounts page: add a user (with a first password; the API token is shown once) and
reset a user's password (their open browser sessions end). Disabling, enabling, tokens, sessions
and lockouts are on the users page (api/web/identity.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from api.deps import Caller, ContextDep, page_user
from api.web.render import render
from api.web.tech_pages import field_of
from factory.identity import service
from factory.identity.models import Role
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import FactoryError

router = APIRouter(prefix="/admin", include_in_schema=False)
AdminPage = Annotated[Caller, Depends(page_user(Role.ADMIN))]
ROLES = [r.value for r in Role]


class NewUserForm(BaseModel):
    name: str = ""
    role: str = Role.TECHNICIAN.value
    password: str = ""


class ResetForm(BaseModel):
    reset_name: str = ""
    new_password: str = ""


def _page(request: Request, me: Caller, status: int = 200, **extra: Any) -> HTMLResponse:
    context = {"v": {"role": Role.TECHNICIAN.value}, **extra}
    return render(request, "admin_accounts.html", me, status, roles=ROLES, **context)


@router.get("/accounts")
def accounts(request: Request, me: AdminPage) -> HTMLResponse:
    return _page(request, me)


def _run(request: Request, ctx: AppContext, me: Caller, values: dict[str, str], fields: dict[str, Any], default: str,
         action: Any) -> HTMLResponse:  # fmt: skip
    """One change in one unit of work; the page again with the outcome or the reason (never a
    redirect: the new user's token must not travel in a URL)."""
    try:
        with session_scope(ctx.engine) as session:
            done = action(session)
    except FactoryError as exc:
        where = field_of(exc, fields, default)
        return _page(request, me, exc.status_code, v=values, error=exc.reason, error_field=where)
    return _page(request, me, **done)


@router.post("/accounts/new")
def add(request: Request, ctx: ContextDep, me: AdminPage, form: Annotated[NewUserForm, Form()]) -> Response:
    def action(session: Any) -> dict[str, Any]:
        user, token = service.add_user(session, form.name, form.role, me.name, ctx.settings.token_days)
        service.set_password(session, user.name, form.password, me.name)
        return {"notice": f"User {user.name} ({user.role}) added.", "token_for": user.name, "token": token}

    fields = {"password": ("password",), "role": ("role",)}
    values = form.model_dump(exclude={"password"})
    return _run(request, ctx, me, values, fields, "name", action)


@router.post("/accounts/password")
def reset(request: Request, ctx: ContextDep, me: AdminPage, form: Annotated[ResetForm, Form()]) -> Response:
    def action(session: Any) -> dict[str, Any]:
        user = service.set_password(session, form.reset_name.strip(), form.new_password, me.name)
        return {"notice": f"Password of {user.name} reset: their browser sessions are ended."}

    values = {"reset_name": form.reset_name}
    return _run(request, ctx, me, values, {"new_password": ("password",)}, "reset_name", action)
