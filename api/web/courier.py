"""Courier dispatch pages: pack a consignment (shielding recorded, the wave's cap headroom shown
before saving, seals scanned), the manifest, the hand-over scan, proof of delivery with the old
devices collected, failed delivery and the return to the factory.

Every form post runs in one unit of work; a refusal shows the page again with the reason and
with everything that was typed or scanned, so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from api.deps import Caller, ContextDep, page_user
from api.params import Reference
from api.web.forms import parse_uk_moment, read_upload, scanned
from api.web.render import render
from factory.custody.service import (
    create_consignment,
    deliver,
    hand_over,
    record_failed_delivery,
    return_to_factory,
)
from factory.custody.views import (
    active_consignments,
    cap_headroom,
    consignable_allocations,
    consignment_detail,
    delivery_lines,
    get_consignment,
    get_document,
)
from factory.identity.models import Role
from factory.kernel import limits
from factory.kernel.context import AppContext
from factory.kernel.db.engine import Session, session_scope
from factory.kernel.errors import FactoryError, InvalidInput

router = APIRouter(include_in_schema=False)

CourierUser = Annotated[Caller, Depends(page_user(Role.COURIER))]

NOTICES = {
    "packed": "Consignment packed: its manifest is ready to print.",
    "handover": "Hand-over recorded: every device is in transit with the courier.",
    "delivered": "Delivery recorded: below, the old device collected for each device, or its exception.",
    "failed": "Failed delivery recorded: bring the devices back to the factory.",
    "back": "Return recorded: the devices are back in the factory.",
}


def _page_of(ref: str) -> str:
    return f"/courier/consignments/{quote(ref, safe='')}"


# ---------------------------------------------------------------- list and packing


@router.get("/courier/consignments")
def consignments(request: Request, ctx: ContextDep, me: CourierUser) -> HTMLResponse:
    with session_scope(ctx.engine) as session:
        return render(request, "courier_consignments.html", me, rows=active_consignments(session))


class PackForm(BaseModel):
    allocation: list[str] = []
    courier: str = ""
    recipient_name: str = ""
    recipient_address: str = ""
    seal: list[str] = []
    shielding_staff: list[str] = []
    shielding_ref: list[str] = []
    action: str = "check"

    def allocation_ids(self) -> list[int]:
        bad = [a for a in self.allocation if not a.isdigit() or len(a) > 18]
        if bad:
            raise InvalidInput(f"allocation '{bad[0][:20]}' is not an allocation number")
        return [int(a) for a in self.allocation]

    def shielding(self) -> dict[str, str]:
        return {s: r for s, r in zip(self.shielding_staff, self.shielding_ref, strict=False) if r.strip()}


def _pack_page(
    request: Request, ctx: AppContext, me: Caller, form: PackForm, status: int = 200, **extra: Any
) -> HTMLResponse:
    chosen = [int(a) for a in form.allocation if a.isdigit() and len(a) <= 18]
    with session_scope(ctx.engine) as session:
        rows = consignable_allocations(session)
        caps = cap_headroom(session, chosen)
    return render(
        request, "courier_new.html", me, status, rows=rows, caps=caps, form=form, chosen=set(chosen),
        seals=scanned(form.seal), shielding=form.shielding(), **extra,
    )  # fmt: skip


@router.get("/courier/consignments/new")
def pack_form(request: Request, ctx: ContextDep, me: CourierUser) -> HTMLResponse:
    return _pack_page(request, ctx, me, PackForm())


@router.post("/courier/consignments/new")
def pack(request: Request, ctx: ContextDep, me: CourierUser, form: Annotated[PackForm, Form()]) -> Response:
    if form.action != "save":
        return _pack_page(request, ctx, me, form, checked=True)
    try:
        with session_scope(ctx.engine) as session:
            ref = create_consignment(
                session, allocation_ids=form.allocation_ids(), courier=form.courier,
                recipient_name=form.recipient_name, recipient_address=form.recipient_address,
                seal_numbers=form.seal, shielding=form.shielding(), actor=me.name, site=ctx.settings.site_name,
            ).record.reference  # fmt: skip
    except FactoryError as exc:
        return _pack_page(request, ctx, me, form, exc.status_code, error=exc.reason)
    return RedirectResponse(f"{_page_of(ref)}?done=packed", status_code=303)


# ---------------------------------------------------------------- one consignment


def _consignment_page(
    request: Request, ctx: AppContext, me: Caller, reference: str, status: int = 200, **extra: Any
) -> HTMLResponse:
    with session_scope(ctx.engine) as session:
        try:
            detail = consignment_detail(session, reference)
            lines = delivery_lines(session, reference)
        except FactoryError as exc:
            return render(request, "forbidden.html", me, exc.status_code, reason=exc.reason)
        return render(
            request, "courier_consignment.html", me, status, c=detail.consignment, items=detail.items,
            lines=lines, **{"v": {}, **extra},
        )  # fmt: skip


@router.get("/courier/consignments/{reference}")
def consignment(request: Request, ctx: ContextDep, me: CourierUser, reference: Reference, done: str = "") -> Response:
    return _consignment_page(request, ctx, me, reference, notice=NOTICES.get(done))


@router.get("/courier/consignments/{reference}/manifest")
def manifest(ctx: ContextDep, _me: CourierUser, reference: Reference) -> Response:
    with session_scope(ctx.engine) as session:
        try:
            doc = get_document(session, get_consignment(session, reference).manifest_document_id or 0)
        except FactoryError as exc:
            return Response(exc.reason, status_code=exc.status_code, media_type="text/plain")
        return Response(
            doc.content,
            media_type=doc.media_type,
            headers={"Content-Disposition": f'attachment; filename="{quote(doc.filename or "manifest.pdf")}"'},
        )


def _courier_action(
    request: Request,
    ctx: AppContext,
    me: Caller,
    reference: str,
    done: str,
    action: Callable[[Session], object],
    values: dict[str, Any],
) -> Response:
    """A courier's form post: the action, then back to the consignment with a notice; or, refused,
    the consignment page again with the reason and what was typed and scanned (``values``)."""
    try:
        with session_scope(ctx.engine) as session:
            action(session)
    except FactoryError as exc:
        where = getattr(exc, "field", None)  # a form field's own error (api.web.forms.FieldError) marks it
        return _consignment_page(request, ctx, me, reference, exc.status_code, error=exc.reason, v=values, form=done,
                                 error_field=where)  # fmt: skip
    return RedirectResponse(f"{_page_of(reference)}?done={done}", status_code=303)


class HandoverForm(BaseModel):
    serial: list[str] = []
    seal: list[str] = []


@router.post("/courier/consignments/{reference}/handover")
def handover(
    request: Request, ctx: ContextDep, me: CourierUser, reference: Reference, form: Annotated[HandoverForm, Form()]
) -> Response:
    serials, seals = scanned(form.serial), scanned(form.seal)
    verifier = ctx.site_keys.verifier()  # before the unit of work: it may read the key registry

    def action(session: Session) -> object:
        return hand_over(session, reference=reference, scanned_serials=serials, scanned_seals=seals,
                         actor=me.name, verifier=verifier)  # fmt: skip

    values = {"serials": serials, "seals": seals}
    return _courier_action(request, ctx, me, reference, "handover", action, values)


class DeliveryForm(BaseModel):
    recipient_name: str = ""
    serial: list[str] = []
    seal: list[str] = []
    old_serial: list[str] = []
    delivered_on: str = ""  # day first, dd/mm/yyyy; empty with the time: now
    delivered_time: str = ""  # 24-hour HH:MM, UK time
    signature: UploadFile | None = None


@router.post("/courier/consignments/{reference}/deliver")
def delivered(
    request: Request, ctx: ContextDep, me: CourierUser, reference: Reference, form: Annotated[DeliveryForm, Form()]
) -> Response:
    upload = read_upload(form.signature)
    serials, seals, old = scanned(form.serial), scanned(form.seal), scanned(form.old_serial)

    def action(session: Session) -> object:
        when = parse_uk_moment(form.delivered_on, form.delivered_time, fields=("delivered_on", "delivered_time"),
                               label="Delivered")  # fmt: skip
        if upload is None:
            raise InvalidInput("proof of delivery needs the recipient's signature (PNG, JPEG or PDF)")
        return deliver(session, reference=reference, recipient_name=form.recipient_name, signature=upload,
                       scanned_seals=seals, old_serials=old, actor=me.name, delivered_at=when,
                       scanned_serials=serials or None)  # fmt: skip

    values = {"serials": serials, "seals": seals, "old": old, "recipient_name": form.recipient_name,
              "delivered_on": form.delivered_on[:10], "delivered_time": form.delivered_time[:5]}  # fmt: skip
    return _courier_action(request, ctx, me, reference, "delivered", action, values)


@router.post("/courier/consignments/{reference}/failed")
def failed(
    request: Request, ctx: ContextDep, me: CourierUser, reference: Reference, reason: Annotated[str, Form()] = ""
) -> Response:
    def action(session: Session) -> object:
        return record_failed_delivery(session, reference=reference, reason=reason[: limits.REASON], actor=me.name)

    return _courier_action(request, ctx, me, reference, "failed", action, {"reason": reason[: limits.REASON]})


@router.post("/courier/consignments/{reference}/return")
def returned(
    request: Request, ctx: ContextDep, me: CourierUser, reference: Reference, location: Annotated[str, Form()] = ""
) -> Response:
    def action(session: Session) -> object:
        return return_to_factory(session, reference=reference, actor=me.name, location=location[: limits.PARTY])

    return _courier_action(request, ctx, me, reference, "back", action, {"location": location[: limits.PARTY]})
