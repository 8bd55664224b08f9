"""WEEE disposal batch pages: open a batch for a recycler, fill it by scanning certified devices,
take a device out again while the batch is open (scan it, give the reason),
hand it over under a signed waste transfer note (both parties' signatures, the carrier's
registration and the recycler's permit), record the recycler's certificate for the devices it
accounts for, and close it. The refusals are the disposal service's (factory/custody/disposal.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from api.deps import Caller, ContextDep, page_user
from api.params import RowId
from api.web.forms import read_upload, scanned
from api.web.tech_pages import act, field_of, page, pdf_download, read
from factory.custody.service import (
    WasteTransfer,
    add_device,
    close_batch,
    collect,
    open_batch,
    record_recycler_certificate,
    remove_device,
)
from factory.custody.views import disposal_batch, disposal_batches, get_document
from factory.identity.models import Role
from factory.kernel import limits
from factory.kernel.context import AppContext
from factory.kernel.db.engine import Session
from factory.kernel.errors import FactoryError, InvalidInput

# Disposal is an administrator's decision (the API's rule too): a technician fills no WEEE batch.
DisposalUser = Annotated[Caller, Depends(page_user(Role.ADMIN))]

router = APIRouter(prefix="/tech/disposal", include_in_schema=False)


class BatchForm(BaseModel):
    recycler_reference: str = ""
    description: str = ""
    # Business WEEE without hazardous components: laptops and tablets with LED backlights and
    # lithium-ion batteries (16 06 05, not hazardous). A CCFL backlight or a NiCd/lead battery makes it 16 02 13*.
    ewc_code: str = "16 02 14"
    sic_code: str = ""


@router.get("")
def batches(request: Request, ctx: ContextDep, me: DisposalUser) -> HTMLResponse:
    return page(request, me, "tech_disposal_list.html", rows=read(ctx, disposal_batches), v=BatchForm().model_dump())


@router.post("")
def new_batch(request: Request, ctx: ContextDep, me: DisposalUser, form: Annotated[BatchForm, Form()]) -> Response:
    def action(session: Session) -> str:
        return str(open_batch(session, **form.model_dump(), actor=me.name).record.id)

    def refused(exc: FactoryError) -> Response:
        fields = {"ewc_code": ("ewc",), "sic_code": ("sic",), "description": ("description",)}
        where = field_of(exc, fields, "recycler_reference")
        rows = read(ctx, disposal_batches)
        values = form.model_dump()
        return page(request, me, "tech_disposal_list.html", exc.status_code, rows=rows, v=values, error=exc.reason,
                    error_field=where)  # fmt: skip

    return act(ctx, action, lambda batch_id: f"/tech/disposal/{batch_id}?done=opened", refused)


NOTICES = {
    "opened": "Batch opened: scan the certified devices into it.",
    "added": "Devices added to the batch.",
    "removed": "Device taken out of the batch: it is back on the shelf, sanitised, with its certificates.",
    "collected": "Collected: the waste transfer note is signed and stored.",
    "accounted": "The recycler's certificate is recorded for the scanned devices.",
    "closed": "Batch closed: every device is accounted for.",
}


@dataclass(frozen=True)
class OnBatch:
    """A page request about one batch (who asks, and which batch): the batch's page, and a step on it."""

    request: Request
    ctx: AppContext
    me: Caller
    batch_id: int

    def page(self, status: int = 200, **extra: Any) -> HTMLResponse:
        try:
            batch, items = read(self.ctx, lambda s: disposal_batch(s, self.batch_id))
        except FactoryError as exc:
            return page(self.request, self.me, "forbidden.html", exc.status_code, reason=exc.reason)
        context = {"v": {}, "added": [], "accounted": [], **extra}
        return page(self.request, self.me, "tech_disposal_batch.html", status, b=batch, items=items, **context)

    def step(
        self, done: str, action: Callable[[Session], object], refused_with: Callable[[FactoryError], dict[str, Any]]
    ) -> Response:
        """The action, then the batch page with a notice; or the batch page again with the reason,
        the field it concerns and what was entered."""

        def run(session: Session) -> str:
            action(session)
            return done

        def refused(exc: FactoryError) -> Response:
            return self.page(exc.status_code, error=exc.reason, **refused_with(exc))

        return act(self.ctx, run, lambda what: f"/tech/disposal/{self.batch_id}?done={quote(what)}", refused)


def _on_batch(request: Request, ctx: ContextDep, me: DisposalUser, batch_id: RowId) -> OnBatch:
    return OnBatch(request, ctx, me, batch_id)


Batch = Annotated[OnBatch, Depends(_on_batch)]


@router.get("/{batch_id}")
def batch(on: Batch, done: str = "") -> HTMLResponse:
    return on.page(notice=NOTICES.get(done))


class ScanForm(BaseModel):
    serial: list[str] = []


@router.post("/{batch_id}/add")
def add(on: Batch, form: Annotated[ScanForm, Form()]) -> Response:
    serials = scanned(form.serial)
    verifier = on.ctx.site_keys.verifier()

    def action(session: Session) -> None:
        if not serials:
            raise InvalidInput("scan at least one device into the batch")
        for serial in serials:  # all or none: one refusal leaves the batch as it was
            add_device(session, batch_id=on.batch_id, serial=serial, actor=on.me.name, verifier=verifier)

    return on.step("added", action, lambda _e: {"added": serials, "error_field": "serial"})


class RemoveForm(BaseModel):
    remove_serial: str = ""
    remove_reason: str = ""


@router.post("/{batch_id}/remove")
def remove(on: Batch, form: Annotated[RemoveForm, Form()]) -> Response:
    """Take a device out of the open batch (a wrong scan, or it is wanted elsewhere), with the reason."""

    def action(session: Session) -> None:
        remove_device(session, batch_id=on.batch_id, serial=form.remove_serial.strip(),
                      reason=form.remove_reason[: limits.REASON], actor=on.me.name)  # fmt: skip

    def refused_with(exc: FactoryError) -> dict[str, Any]:
        return {"v": form.model_dump(), "error_field": field_of(exc, {"remove_reason": ("reason",)}, "remove_serial")}

    return on.step("removed", action, refused_with)


class CollectForm(BaseModel):
    containment: str = ""
    place: str = ""
    transferor_name: str = ""
    transferor_address: str = ""
    carrier_name: str = ""
    carrier_registration: str = ""
    recycler_permit: str = ""
    hazardous_note_reference: str = ""
    hierarchy_declaration: bool = False
    transferor_signature: UploadFile | None = None
    transferee_signature: UploadFile | None = None

    def values(self) -> dict[str, Any]:
        return self.model_dump(exclude={"transferor_signature", "transferee_signature"})


COLLECT_FIELDS = {
    "carrier_registration": ("carrier registration",),
    "recycler_permit": ("permit",),
    "carrier_name": ("carrier name",),
    "transferee_signature": ("same image", "signature"),
    "hierarchy_declaration": ("hierarchy",),
    "hazardous_note_reference": ("consignment note",),
    "containment": ("containment",),
    "place": ("place",),
    "transferor_address": ("transferor address",),
}


@router.post("/{batch_id}/collect")
def collected(on: Batch, form: Annotated[CollectForm, Form()]) -> Response:
    ours, theirs = read_upload(form.transferor_signature), read_upload(form.transferee_signature)
    verifier = on.ctx.site_keys.verifier()

    def action(session: Session) -> None:
        if ours is None or theirs is None:
            raise InvalidInput("the waste transfer note needs both signatures: the transferor's and the recycler's")
        fields = form.values() | {"transferor_signature": ours, "transferee_signature": theirs}
        fields["hazardous_note_reference"] = form.hazardous_note_reference or None
        transfer = WasteTransfer(**fields)
        collect(session, batch_id=on.batch_id, transfer=transfer, actor=on.me.name, site=on.ctx.settings.site_name,
                verifier=verifier)  # fmt: skip

    def refused_with(exc: FactoryError) -> dict[str, Any]:
        return {"v": form.values(), "error_field": field_of(exc, COLLECT_FIELDS, "transferor_name")}

    return on.step("collected", action, refused_with)


class AccountForm(BaseModel):
    reference: str = ""
    serial: list[str] = []
    document: UploadFile | None = None


@router.post("/{batch_id}/account")
def accounted(on: Batch, form: Annotated[AccountForm, Form()]) -> Response:
    serials, document = scanned(form.serial), read_upload(form.document)
    verifier = on.ctx.site_keys.verifier()

    def action(session: Session) -> None:
        record_recycler_certificate(session, batch_id=on.batch_id, serials=serials, actor=on.me.name, verifier=verifier,
                                    reference=form.reference or None, document=document)  # fmt: skip

    def refused_with(exc: FactoryError) -> dict[str, Any]:
        where = field_of(exc, {"reference": ("certificate recorded", "already has")}, "serial")
        return {"v": {"reference": form.reference}, "accounted": serials, "error_field": where}

    return on.step("accounted", action, refused_with)


@router.post("/{batch_id}/close")
def closed(on: Batch) -> Response:
    def action(session: Session) -> None:
        close_batch(session, batch_id=on.batch_id, actor=on.me.name)

    return on.step("closed", action, lambda _e: {})


@router.get("/{batch_id}/waste-transfer-note")
def waste_transfer_note(ctx: ContextDep, _me: DisposalUser, batch_id: RowId) -> Response:
    def pdf(session: Session) -> tuple[bytes, str]:
        view, _items = disposal_batch(session, batch_id)
        if view.wtn_document_id is None:
            raise InvalidInput(f"disposal batch {batch_id} has no waste transfer note yet: it is not collected")
        doc = get_document(session, view.wtn_document_id)
        return doc.content, doc.filename or f"wtn-batch-{batch_id}.pdf"

    return pdf_download(ctx, pdf)
