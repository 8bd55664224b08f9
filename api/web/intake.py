"""Intake pages: receiving devices at the bench, driven by a barcode scanner (keyboard input)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from api.deps import Caller, ContextDep, page_user
from api.web.forms import device_or_none
from api.web.render import render
from factory.identity.models import Role
from factory.intake.service import MediaSpec, receive_device
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import FactoryError
from factory.kernel.models.device import DeviceKind, MediaType

router = APIRouter(prefix="/tech", include_in_schema=False)

TechUser = Annotated[Caller, Depends(page_user(Role.TECHNICIAN))]

KINDS = [k.value for k in DeviceKind]
MEDIA_TYPES = [m.value for m in MediaType]
# Batch settings kept from one receive to the next, so a scanner-only loop stays possible.
STICKY = ("kind", "make", "model", "location", "from_custodian", "media_type")


class ReceiveForm(BaseModel):
    """The receive form; every field but the checkbox is echoed back when it is refused."""

    serial: str = ""
    asset_tag: str = ""
    medium_serial: str = ""
    media_type: str = MediaType.SATA_SSD.value
    kind: str = DeviceKind.LAPTOP.value
    make: str = ""
    model: str = ""
    location: str = ""
    from_custodian: str = ""
    new_stock: bool = False

    def values(self) -> dict[str, str]:
        return self.model_dump(exclude={"new_stock"})


def _receive_page(
    request: Request, me: Caller, values: dict[str, str], status: int = 200, **extra: Any
) -> HTMLResponse:
    return render(request, "tech_receive.html", me, status, v=values, kinds=KINDS, media_types=MEDIA_TYPES, **extra)


@router.get("/receive")
def receive_form(request: Request, ctx: ContextDep, me: TechUser, received: str = "") -> HTMLResponse:
    values = {k: request.query_params.get(k, "") for k in STICKY}
    values["kind"] = values["kind"] or DeviceKind.LAPTOP.value
    values["media_type"] = values["media_type"] or MediaType.SATA_SSD.value
    device = device_or_none(ctx, received)
    notice = f"Received {device['serial']}: now {device['state']}" if device else None
    return _receive_page(request, me, values, device=device, notice=notice)


@router.post("/receive")
def receive(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[ReceiveForm, Form()]) -> Response:
    medium = form.medium_serial.strip()
    try:
        with session_scope(ctx.engine) as session:
            done = receive_device(
                session,
                **form.model_dump(exclude={"medium_serial", "media_type", "asset_tag"}),
                asset_tag=form.asset_tag or None,
                media=[MediaSpec(form.media_type, medium)] if medium else [],
                actor=me.name,
            ).serial
    except FactoryError as exc:
        return _receive_page(request, me, form.values(), exc.status_code, error=exc.reason)
    values = form.values()
    sticky = {k: values[k] for k in STICKY if values[k]}
    # The query names the device (a parameter name, not a state) and carries the batch settings.
    return RedirectResponse(f"/tech/receive?{urlencode(dict(received=done, **sticky))}", status_code=303)
