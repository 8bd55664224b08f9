"""Technician pages: receive, issue and swap, driven by a barcode scanner (keyboard input)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api.deps import ContextDep
from api.web.auth import form_user, page_user
from api.web.forms import acceptance_from_form, verifier
from api.web.render import WebIdentity, render
from factory.custody.allocation import open_in_person_allocation
from factory.custody.issue import issue_device
from factory.custody.swap import walk_in_swap
from factory.identity.models import Role
from factory.intake.service import MediaSpec, receive_device
from factory.intake.views import device_view, get_device
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import FactoryError, InvalidInput
from factory.kernel.models.device import DeviceKind, MediaType

router = APIRouter(prefix="/tech", include_in_schema=False)

TechPage = Annotated[WebIdentity, Depends(page_user(Role.TECHNICIAN))]
TechForm = Annotated[WebIdentity, Depends(form_user(Role.TECHNICIAN))]

KINDS = [k.value for k in DeviceKind]
MEDIA_TYPES = [m.value for m in MediaType]
# Batch settings kept from one receive to the next, so a scanner-only loop stays possible.
STICKY = ("kind", "make", "model", "location", "from_custodian", "media_type")


def _device_or_none(ctx: ContextDep, serial: str) -> dict[str, Any] | None:
    if not serial:
        return None
    with session_scope(ctx.engine) as session:
        try:
            return device_view(session, get_device(session, serial))
        except FactoryError:
            return None


# ---------------------------------------------------------------- receive
def _receive_page(
    request: Request, me: WebIdentity, values: dict[str, str], status: int = 200, **extra: Any
) -> HTMLResponse:
    return render(request, "tech_receive.html", me, status, v=values, kinds=KINDS, media_types=MEDIA_TYPES, **extra)


@router.get("/receive")
def receive_form(request: Request, ctx: ContextDep, me: TechPage, received: str = "") -> HTMLResponse:
    values = {k: request.query_params.get(k, "") for k in STICKY}
    values["kind"] = values["kind"] or DeviceKind.LAPTOP.value
    values["media_type"] = values["media_type"] or MediaType.SATA_SSD.value
    device = _device_or_none(ctx, received)
    notice = f"Received {device['serial']}: now {device['state']}" if device else None
    return _receive_page(request, me, values, device=device, notice=notice)


@router.post("/receive")
def receive(
    request: Request,
    ctx: ContextDep,
    me: TechForm,
    serial: Annotated[str, Form()] = "",
    asset_tag: Annotated[str, Form()] = "",
    medium_serial: Annotated[str, Form()] = "",
    media_type: Annotated[str, Form()] = MediaType.SATA_SSD.value,
    kind: Annotated[str, Form()] = DeviceKind.LAPTOP.value,
    make: Annotated[str, Form()] = "",
    model: Annotated[str, Form()] = "",
    location: Annotated[str, Form()] = "",
    from_custodian: Annotated[str, Form()] = "",
    new_stock: Annotated[bool, Form()] = False,
) -> Response:
    values = {
        "serial": serial,
        "asset_tag": asset_tag,
        "medium_serial": medium_serial,
        "media_type": media_type,
        "kind": kind,
        "make": make,
        "model": model,
        "location": location,
        "from_custodian": from_custodian,
    }
    media = [MediaSpec(media_type, medium_serial.strip())] if medium_serial.strip() else []
    try:
        with session_scope(ctx.engine) as session:
            device = receive_device(
                session,
                serial=serial,
                kind=kind,
                make=make,
                model=model,
                asset_tag=asset_tag or None,
                from_custodian=from_custodian,
                location=location,
                new_stock=new_stock,
                media=media,
                actor=me.name,
            )
            done = device.serial
    except FactoryError as exc:
        return _receive_page(request, me, values, exc.status_code, error=exc.reason)
    sticky = {k: values[k] for k in STICKY if values[k]}
    return RedirectResponse(f"/tech/receive?{urlencode({'received': done, **sticky})}", status_code=303)


# ---------------------------------------------------------------- walk-in swap
@router.get("/swap")
def swap_form(request: Request, ctx: ContextDep, me: TechPage, spare: str = "") -> HTMLResponse:
    device = _device_or_none(ctx, spare)
    notice = f"Swap recorded: {device['serial']} is now {device['state']}" if device else None
    return render(request, "tech_swap.html", me, v={}, device=device, notice=notice)


@router.post("/swap")
def swap(
    request: Request,
    ctx: ContextDep,
    me: TechForm,
    staff_number: Annotated[str, Form()] = "",
    faulty_serial: Annotated[str, Form()] = "",
    spare_serial: Annotated[str, Form()] = "",
    fault: Annotated[str, Form()] = "",
    accepted_name: Annotated[str, Form()] = "",
    pin: Annotated[str, Form()] = "",
    signature: Annotated[UploadFile | None, File()] = None,
) -> Response:
    values = {
        "staff_number": staff_number,
        "faulty_serial": faulty_serial,
        "spare_serial": spare_serial,
        "fault": fault,
        "accepted_name": accepted_name,
    }
    try:
        with session_scope(ctx.engine) as session:
            result = walk_in_swap(
                session,
                staff_number=staff_number,
                faulty_serial=faulty_serial,
                spare_serial=spare_serial,
                fault=fault,
                acceptance=acceptance_from_form(accepted_name, pin, signature),
                actor=me.name,
                verifier=verifier(ctx),
            )
            spare = next(e.device_serial for e in result.entries if e.to_state == "issued")
    except FactoryError as exc:
        return render(request, "tech_swap.html", me, exc.status_code, v=values, error=exc.reason)
    return RedirectResponse(f"/tech/swap?{urlencode({'spare': spare})}", status_code=303)


# ---------------------------------------------------------------- issue in person
def _allocation_for(session: Session, serial: str) -> int:
    return open_in_person_allocation(session, serial).id or 0


def _approval_number(text: str) -> int | None:
    value = text.strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 12:
        raise InvalidInput(f"exception approval number '{value[:20]}' must be a whole number")
    return int(value)


@router.get("/issue")
def issue_form(request: Request, ctx: ContextDep, me: TechPage, issued: str = "") -> HTMLResponse:
    device = _device_or_none(ctx, issued)
    notice = f"Issued {device['serial']} to {device['custodian']}" if device else None
    return render(request, "tech_issue.html", me, v={}, device=device, notice=notice)


@router.post("/issue")
def issue(
    request: Request,
    ctx: ContextDep,
    me: TechForm,
    device_serial: Annotated[str, Form()] = "",
    old_serial: Annotated[str, Form()] = "",
    approval: Annotated[str, Form()] = "",
    accepted_name: Annotated[str, Form()] = "",
    pin: Annotated[str, Form()] = "",
    signature: Annotated[UploadFile | None, File()] = None,
) -> Response:
    values = {
        "device_serial": device_serial,
        "old_serial": old_serial,
        "approval": approval,
        "accepted_name": accepted_name,
    }
    try:
        approval_id = _approval_number(approval)
        with session_scope(ctx.engine) as session:
            result = issue_device(
                session,
                allocation_id=_allocation_for(session, device_serial),
                acceptance=acceptance_from_form(accepted_name, pin, signature),
                actor=me.name,
                verifier=verifier(ctx),
                old_serial=old_serial.strip() or None,
                approval_id=approval_id,
            )
            issued = result.entries[0].device_serial
    except FactoryError as exc:
        return render(request, "tech_issue.html", me, exc.status_code, v=values, error=exc.reason)
    return RedirectResponse(f"/tech/issue?{urlencode({'issued': issued})}", status_code=303)
