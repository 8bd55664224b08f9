"""Exceptions to the exchange rule, four eyes: a technician asks for one for a device allocated
to an officer who has no old device to give back (a new starter), in person or by courier; an
administrator other than the one who asked approves it; the counter issue or the courier
delivery then uses it, once. The rules are factory/custody/issue.py's."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from api.deps import Caller, ContextDep, page_user
from api.params import RowId
from api.web.tech_pages import TechUser, act, field_of, page, read
from factory.custody.service import approve_exception, request_exception
from factory.custody.views import exception_allocation, open_exceptions
from factory.identity.models import Role
from factory.kernel import limits
from factory.kernel.context import AppContext
from factory.kernel.db.engine import Session
from factory.kernel.errors import FactoryError

router = APIRouter(prefix="/tech", include_in_schema=False)
# Approving is an administrator's (the API's rule too).
ApproverUser = Annotated[Caller, Depends(page_user(Role.ADMIN))]


class ExceptionForm(BaseModel):
    serial: str = ""
    reason: str = ""


def _exceptions_page(request: Request, ctx: AppContext, me: Caller, status: int = 200, **extra: Any) -> HTMLResponse:
    rows = read(ctx, open_exceptions)
    return page(request, me, "tech_exceptions.html", status, rows=rows, can_approve=me.has(Role.ADMIN),
                **{"v": {}, **extra})  # fmt: skip


def _back(text: str) -> str:
    return f"/tech/exceptions?{urlencode({'done': text})}"


@router.get("/exceptions")
def exceptions(request: Request, ctx: ContextDep, me: TechUser, done: str = "") -> HTMLResponse:
    return _exceptions_page(request, ctx, me, notice=done[:200] or None)


@router.post("/exceptions")
def ask(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[ExceptionForm, Form()]) -> Response:
    def action(session: Session) -> str:
        allocation = exception_allocation(session, form.serial.strip())
        asked = request_exception(session, allocation_id=allocation.id or 0, reason=form.reason[: limits.REASON],
                                  requested_by=me.name).record  # fmt: skip
        return f"Exception {asked.id} asked for {form.serial.strip()}: an administrator other than you approves it"

    def refused(exc: FactoryError) -> Response:
        where = field_of(exc, {"reason": ("reason",)}, "serial")
        return _exceptions_page(request, ctx, me, exc.status_code, v=form.model_dump(), error=exc.reason,
                                error_field=where)  # fmt: skip

    return act(ctx, action, _back, refused)


@router.post("/exceptions/{approval_id}/approve")
def approve(request: Request, ctx: ContextDep, me: ApproverUser, approval_id: RowId) -> Response:
    def action(session: Session) -> str:
        approve_exception(session, approval_id=approval_id, approver=me.name)
        return f"Exception {approval_id} approved: it may be used once"

    def refused(exc: FactoryError) -> Response:
        return _exceptions_page(request, ctx, me, exc.status_code, error=exc.reason)

    return act(ctx, action, _back, refused)
