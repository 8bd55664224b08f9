"""Technicians' pages for devices that cannot go on: held and failed devices with the action to
take, quarantine triage, and destruction (requested with evidence by one technician, witnessed
by another on their own login)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from api.deps import Caller, ContextDep
from api.params import RowId
from api.web.forms import read_upload
from api.web.tech_pages import TechUser, act, field_of, page, read
from factory.custody.service import request_destruction, triage, witness_destruction
from factory.custody.views import held_devices, pending_destructions
from factory.kernel.context import AppContext
from factory.kernel.db.engine import Session
from factory.kernel.errors import FactoryError, InvalidInput

router = APIRouter(prefix="/tech", include_in_schema=False)


# ---------------------------------------------------------------- held and failed devices, triage
class TriageForm(BaseModel):
    serial: str = ""
    finding: str = ""


def _held_page(request: Request, ctx: AppContext, me: Caller, status: int = 200, **extra: Any) -> HTMLResponse:
    rows = read(ctx, held_devices)
    return page(request, me, "tech_held.html", status, rows=rows, **{"v": {}, **extra})


@router.get("/held")
def held(request: Request, ctx: ContextDep, me: TechUser, released: str = "") -> HTMLResponse:
    notice = f"{released} released to intake: the line takes it from here." if released else None
    return _held_page(request, ctx, me, notice=notice)


@router.post("/held/triage")
def release(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[TriageForm, Form()]) -> Response:
    def action(session: Session) -> str:
        return triage(session, serial=form.serial, finding=form.finding, actor=me.name).record.serial

    def refused(exc: FactoryError) -> Response:
        where = field_of(exc, {"finding": ("finding", "found")}, "serial")
        return _held_page(request, ctx, me, exc.status_code, v=form.model_dump(), error=exc.reason, error_field=where)

    return act(ctx, action, lambda serial: f"/tech/held?{urlencode({'released': serial})}", refused)


# ---------------------------------------------------------------- destruction (two technicians)
class DestructionForm(BaseModel):
    serial: str = ""
    method: str = ""
    reason: str = ""
    evidence: UploadFile | None = None


METHODS = ["shredded", "crushed", "degaussed and shredded", "drilled"]


def _destruction_page(request: Request, ctx: AppContext, me: Caller, status: int = 200, **extra: Any) -> HTMLResponse:
    pending = read(ctx, pending_destructions)
    return page(request, me, "tech_destruction.html", status, pending=pending, methods=METHODS, **{"v": {}, **extra})


@router.get("/destruction")
def destruction(
    request: Request, ctx: ContextDep, me: TechUser, serial: str = "", done: str = "", witnessed: str = ""
) -> HTMLResponse:
    notice = None
    if done:
        notice = f"Destruction of {done} requested: another technician witnesses it on their own login."
    elif witnessed:
        notice = f"Destruction of {witnessed} witnessed and recorded in the custody ledger."
    return _destruction_page(request, ctx, me, v={"serial": serial[:128]}, notice=notice)


@router.post("/destruction")
def request_it(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[DestructionForm, Form()]) -> Response:
    upload = read_upload(form.evidence)

    def action(session: Session) -> str:
        if upload is None:
            raise InvalidInput("a destruction request needs evidence: a photo (PNG or JPEG) or a PDF")
        done = request_destruction(
            session, serial=form.serial, method=form.method, reason=form.reason, evidence=upload, actor=me.name
        )
        return form.serial.strip() if done.record.id else ""

    def refused(exc: FactoryError) -> Response:
        fields = {"evidence": ("evidence", "document"), "reason": ("method and the reason",)}
        values = form.model_dump(exclude={"evidence"})
        where = field_of(exc, fields, "serial")
        return _destruction_page(request, ctx, me, exc.status_code, v=values, error=exc.reason, error_field=where)

    return act(ctx, action, lambda serial: f"/tech/destruction?{urlencode({'done': serial})}", refused)


@router.post("/destruction/{record_id}/witness")
def witness(request: Request, ctx: ContextDep, me: TechUser, record_id: RowId) -> Response:
    def action(session: Session) -> str:
        witness_destruction(session, record_id=record_id, witness=me.name, settings=ctx.settings)
        return next((p.serial for p in pending if p.id == record_id), str(record_id))

    def refused(exc: FactoryError) -> Response:
        return _destruction_page(request, ctx, me, exc.status_code, error=exc.reason)

    pending = read(ctx, pending_destructions)
    return act(ctx, action, lambda serial: f"/tech/destruction?{urlencode({'witnessed': serial})}", refused)
