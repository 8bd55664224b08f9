"""Redistribution page: hand certified devices to a school or organisation by scanning them (all or
none; a device whose certificates do not serve external reuse is refused by name and the list
kept), with the transfer note PDF to print and sign."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from api.deps import Caller, ContextDep
from api.params import RowId
from api.web.forms import scanned
from api.web.tech_pages import TechUser, act, field_of, page, pdf_download
from factory.custody.service import redistribute
from factory.custody.views import transfer_note
from factory.kernel.db.engine import Session
from factory.kernel.errors import FactoryError

router = APIRouter(prefix="/tech/redistribute", include_in_schema=False)


class TransferForm(BaseModel):
    organisation: str = ""
    serial: list[str] = []


def _page(request: Request, me: Caller, status: int = 200, **extra: Any) -> HTMLResponse:
    return page(request, me, "tech_redistribute.html", status, **{"v": {}, "scans": [], **extra})


@router.get("")
def form(request: Request, me: TechUser, transfer: int = 0) -> HTMLResponse:
    notice = f"Transfer {transfer} recorded: print the transfer note for the school to sign." if transfer else None
    return _page(request, me, transfer=transfer, notice=notice)


@router.post("")
def transfer(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[TransferForm, Form()]) -> Response:
    serials = scanned(form.serial)
    verifier = ctx.site_keys.verifier()

    def action(session: Session) -> str:
        done = redistribute(session, organisation_reference=form.organisation, serials=serials, actor=me.name,
                            site=ctx.settings.site_name, verifier=verifier)  # fmt: skip
        return str(done.record.id)

    def refused(exc: FactoryError) -> Response:
        where = field_of(exc, {"organisation": ("school or organisation",)}, "serial")
        values = {"organisation": form.organisation}
        return _page(request, me, exc.status_code, v=values, scans=serials, error=exc.reason, error_field=where)

    return act(ctx, action, lambda transfer_id: f"/tech/redistribute?transfer={transfer_id}", refused)


@router.get("/{transfer_id}/note")
def note(ctx: ContextDep, _me: TechUser, transfer_id: RowId) -> Response:
    def pdf(session: Session) -> tuple[bytes, str]:
        doc = transfer_note(session, transfer_id)
        return doc.content, doc.filename or "transfer-note.pdf"

    return pdf_download(ctx, pdf)
