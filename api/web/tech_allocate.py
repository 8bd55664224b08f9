"""Allocation page: reserve a ready device for an officer (in person or by courier, with the wave)
or for a vehicle, by scanning the device and the holder's number; release an allocation."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from api.deps import Caller, ContextDep
from api.web.forms import device_or_none
from api.web.tech_pages import TechUser, act, field_of, page
from factory.custody.models import ALLOCATION_CHANNELS, AllocationChannel
from factory.custody.service import allocate
from factory.kernel.db.engine import Session
from factory.kernel.errors import FactoryError, InvalidInput

router = APIRouter(prefix="/tech", include_in_schema=False)
CHANNELS = [c.value for c in ALLOCATION_CHANNELS]


class AllocateForm(BaseModel):
    serial: str = ""
    holder: str = ""  # an officer's staff number, or a vehicle's fleet number for the vehicle channel
    channel: str = AllocationChannel.IN_PERSON.value
    wave: str = ""


def _allocate_page(request: Request, me: Caller, status: int = 200, **extra: Any) -> HTMLResponse:
    context = {"v": {"channel": AllocationChannel.IN_PERSON.value}, **extra}
    return page(request, me, "tech_allocate.html", status, channels=CHANNELS, **context)


@router.get("/allocate")
def allocate_form(request: Request, ctx: ContextDep, me: TechUser, serial: str = "") -> HTMLResponse:
    device = device_or_none(ctx, serial)
    notice = f"{device['serial']} allocated: now {device['state']}" if device else None
    return _allocate_page(request, me, device=device, notice=notice)


def _holder(form: AllocateForm) -> dict[str, Any]:
    channel = next((c for c in ALLOCATION_CHANNELS if c.value == form.channel), None)
    if channel is None:
        raise InvalidInput(f"'{form.channel[:20]}' is not a delivery channel")
    holder = form.holder.strip()
    if not holder:
        raise InvalidInput("scan the officer's staff number (or the vehicle's fleet number)")
    if channel is AllocationChannel.VEHICLE:
        return {"fleet_number": holder, "channel": channel}
    return {"staff_number": holder, "channel": channel}


@router.post("/allocate")
def allocate_device(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[AllocateForm, Form()]) -> Response:
    def action(session: Session) -> str:
        holder = _holder(form)
        done = allocate(session, serial=form.serial, actor=me.name, wave=form.wave.strip() or None, **holder)
        return form.serial.strip() if done.record.id else ""

    def refused(exc: FactoryError) -> Response:
        fields = {"holder": ("officer", "vehicle", "staff", "fleet"), "wave": ("wave",), "channel": ("channel",)}
        where = field_of(exc, fields, "serial")
        if f"device {form.serial.strip()}" in exc.reason or "no device" in exc.reason:
            where = "serial"
        return _allocate_page(request, me, exc.status_code, v=form.model_dump(), error=exc.reason, error_field=where)

    return act(ctx, action, lambda serial: f"/tech/allocate?{urlencode({'serial': serial})}", refused)
