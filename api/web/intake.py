"""Intake pages: receiving devices at the bench, driven by a barcode scanner (keyboard input)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import Caller, ContextDep, page_user
from api.web.forms import MediaScanForm, device_or_none
from api.web.render import render
from factory.custody.views import get_officer
from factory.identity.models import Role
from factory.intake.service import receive_device
from factory.intake.views import get_device, media_elsewhere
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import FactoryError
from factory.kernel.models.device import DeviceKind, MediaType

router = APIRouter(prefix="/tech", include_in_schema=False)

TechUser = Annotated[Caller, Depends(page_user(Role.TECHNICIAN))]

KINDS = [k.value for k in DeviceKind]
MEDIA_TYPES = [m.value for m in MediaType]
# What the device is received for: reissue (the line provisions it), or one of the roles that
# leave the fleet after sanitising (the line's LEAVING_ROLES; their certificates name the destination).
ROLES = {
    "": "Reissue to officers",
    "redistribution": "Redistribution (external reuse)",
    "disposal": "Disposal (recycling)",
}
# Batch settings kept from one receive to the next, so a scanner-only loop stays possible.
STICKY = ("kind", "make", "model", "location", "from_custodian", "media_type", "role")


class ReceiveForm(MediaScanForm):
    """The receive form; every field but the checkbox is echoed back when it is refused."""

    serial: str = ""
    asset_tag: str = ""
    kind: str = DeviceKind.LAPTOP.value
    make: str = ""
    model: str = ""
    location: str = ""
    from_custodian: str = ""
    officer: str = ""  # staff number of the officer handing it back
    role: str = ""
    new_stock: bool = False

    def values(self) -> dict[str, Any]:
        return self.model_dump(exclude={"new_stock"})


def _receive_page(
    request: Request, me: Caller, values: dict[str, Any], status: int = 200, **extra: Any
) -> HTMLResponse:
    context = {"kinds": KINDS, "media_types": MEDIA_TYPES, "roles": ROLES}
    return render(request, "tech_receive.html", me, status, v={"more_media": [], **values}, **context, **extra)


@router.get("/receive")
def receive_form(request: Request, ctx: ContextDep, me: TechUser, received: str = "") -> HTMLResponse:
    values = {k: request.query_params.get(k, "") for k in STICKY}
    values["kind"] = values["kind"] or DeviceKind.LAPTOP.value
    values["media_type"] = values["media_type"] or MediaType.SATA_SSD.value
    device = device_or_none(ctx, received)
    notice = f"Received {device['serial']}: now {device['state']}" if device else None
    elsewhere = _media_elsewhere(ctx, received) if device else {}
    return _receive_page(request, me, values, device=device, notice=notice, elsewhere=elsewhere)


def _media_elsewhere(ctx: AppContext, serial: str) -> dict[str, list[str]]:
    """The device's media also recorded on other devices (medium serial -> their serials): receiving
    records them, and the page warns, naming the other devices."""
    with session_scope(ctx.engine) as session:
        return media_elsewhere(session, get_device(session, serial))


@router.post("/receive")
def receive(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[ReceiveForm, Form()]) -> Response:
    try:
        with session_scope(ctx.engine) as session:
            from_custodian = form.from_custodian
            if form.officer.strip():  # the officer must be registered; the ledger names them
                from_custodian = f"officer:{get_officer(session, form.officer).staff_number}"
            fields = form.model_dump(include={"serial", "kind", "make", "model", "location", "new_stock"})
            done = receive_device(
                session,
                **fields,
                from_custodian=from_custodian,
                role=form.role or None,
                asset_tag=form.asset_tag or None,
                media=form.media(),
                actor=me.name,
            ).serial
    except FactoryError as exc:
        where = "officer" if "officer" in exc.reason else "medium_serial" if "medi" in exc.reason else "serial"
        return _receive_page(request, me, form.values(), exc.status_code, error=exc.reason, error_field=where)
    values = form.values()
    sticky = {k: str(values[k]) for k in STICKY if values[k]}
    # The query names the device (a parameter name, not a state) and carries the batch settings.
    return RedirectResponse(f"/tech/receive?{urlencode(dict(received=done, **sticky))}", status_code=303)
