"""Courier pages: the consignments to collect and deliver, hand-over scans and proof of delivery."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api.deps import ContextDep
from api.web.auth import form_user, page_user
from api.web.forms import read_upload, scanned, verifier
from api.web.render import WebIdentity, render
from factory.custody.consignments import (
    consignment_items,
    deliver,
    get_consignment,
    hand_over,
    list_consignments,
    record_failed_delivery,
)
from factory.custody.documents import Upload, get_document
from factory.custody.models import ConsignmentStatus
from factory.identity.models import Role
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import FactoryError, InvalidInput

router = APIRouter(prefix="/courier", include_in_schema=False)

CourierPage = Annotated[WebIdentity, Depends(page_user(Role.COURIER))]
CourierForm = Annotated[WebIdentity, Depends(form_user(Role.COURIER))]
Reference = Annotated[str, Path(min_length=1, max_length=64)]

ACTIVE = (ConsignmentStatus.OPEN, ConsignmentStatus.IN_TRANSIT, ConsignmentStatus.FAILED)


def _summaries(session: Session, statuses: Sequence[ConsignmentStatus]) -> list[dict[str, Any]]:
    return [{"c": c, "count": n} for c, n in list_consignments(session, [s.value for s in statuses])]


def _detail(session: Session, reference: str) -> dict[str, Any]:
    consignment = get_consignment(session, reference)
    items = [
        {
            "serial": device.serial,
            "asset_tag": device.asset_tag,
            "kind": device.kind,
            "state": device.state,
            "handed_over": item.handover_scanned_at,
            "delivered": item.delivery_scanned_at,
            "returned": item.returned_at,
        }
        for item, device in consignment_items(session, consignment)
    ]
    return {"c": consignment, "items": items, "seals": [s for s in consignment.seal_numbers.split(",") if s]}


@router.get("/consignments")
def consignments(request: Request, ctx: ContextDep, me: CourierPage) -> HTMLResponse:
    with session_scope(ctx.engine) as session:
        rows = _summaries(session, ACTIVE)
        return render(request, "courier_consignments.html", me, rows=rows)


def _consignment_page(
    request: Request, ctx: ContextDep, me: WebIdentity, reference: str, status: int = 200, **extra: Any
) -> HTMLResponse:
    with session_scope(ctx.engine) as session:
        try:
            detail = _detail(session, reference)
        except FactoryError as exc:
            return render(request, "forbidden.html", me, exc.status_code, reason=exc.reason)
        return render(request, "courier_consignment.html", me, status, **detail, **extra)


@router.get("/consignments/{reference}")
def consignment(request: Request, ctx: ContextDep, me: CourierPage, reference: Reference, done: str = "") -> Response:
    notices = {
        "handover": "Hand-over recorded: the scanned devices are in transit with you.",
        "delivered": "Delivery recorded.",
        "failed": "Failed delivery recorded: bring the devices back to the factory.",
    }
    return _consignment_page(request, ctx, me, reference, notice=notices.get(done))


@router.get("/consignments/{reference}/manifest")
def manifest(ctx: ContextDep, _me: CourierPage, reference: Reference) -> Response:
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


def _done(reference: str, what: str) -> RedirectResponse:
    return RedirectResponse(f"/courier/consignments/{quote(reference, safe='')}?done={what}", status_code=303)


@router.post("/consignments/{reference}/handover")
def handover(
    request: Request,
    ctx: ContextDep,
    me: CourierForm,
    reference: Reference,
    serial: Annotated[list[str] | None, Form()] = None,
) -> Response:
    try:
        with session_scope(ctx.engine) as session:
            hand_over(
                session,
                reference=reference,
                scanned_serials=scanned(serial or []),
                actor=me.name,
                verifier=verifier(ctx),
            )
    except FactoryError as exc:
        return _consignment_page(request, ctx, me, reference, exc.status_code, error=exc.reason)
    return _done(reference, "handover")


@router.post("/consignments/{reference}/deliver")
def delivered(
    request: Request,
    ctx: ContextDep,
    me: CourierForm,
    reference: Reference,
    recipient_name: Annotated[str, Form()] = "",
    serial: Annotated[list[str] | None, Form()] = None,
    signature: Annotated[UploadFile | None, File()] = None,
) -> Response:
    codes = scanned(serial or [])
    try:
        upload: Upload | None = read_upload(signature)
        if upload is None:
            raise InvalidInput("proof of delivery needs the recipient's signature (PNG, JPEG or PDF)")
        with session_scope(ctx.engine) as session:
            deliver(
                session,
                reference=reference,
                recipient_name=recipient_name,
                signature=upload,
                actor=me.name,
                scanned_serials=codes or None,
            )
    except FactoryError as exc:
        return _consignment_page(request, ctx, me, reference, exc.status_code, error=exc.reason)
    return _done(reference, "delivered")


@router.post("/consignments/{reference}/failed")
def failed(
    request: Request,
    ctx: ContextDep,
    me: CourierForm,
    reference: Reference,
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        with session_scope(ctx.engine) as session:
            record_failed_delivery(session, reference=reference, reason=reason, actor=me.name)
    except FactoryError as exc:
        return _consignment_page(request, ctx, me, reference, exc.status_code, error=exc.reason)
    return _done(reference, "failed")
