"""Bulk import page: officers (with their assistive-technology needs), vehicles, or devices already
in the field with their officers (so the first wave exchanges them one for one) from a CSV file,
checked first by a dry run; the report names every row, refused ones with their reason. A device
imported without its media has them scanned in here when it comes back, before its erase."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from api.deps import Caller, ContextDep
from api.web.forms import MediaScanForm
from api.web.render import counted
from api.web.tech_pages import TechUser, act, field_of, page
from factory.custody.service import MAX_IMPORT_BYTES, ImportKind, ImportReport, import_csv
from factory.intake.service import record_returned_media
from factory.kernel.db.engine import Session, session_scope
from factory.kernel.errors import FactoryError, InvalidInput
from factory.kernel.models.device import MediaType

router = APIRouter(prefix="/tech", include_in_schema=False)
IN_FIELD_NOTE = " Each is recorded as with its officer: a new device is issued in exchange for it."
KINDS = [k.value for k in ImportKind]
# What each kind's rows are named by in the report (the first column it requires).
KEY_LABELS = {ImportKind.OFFICERS: "Staff number", ImportKind.VEHICLES: "Fleet number", ImportKind.DEVICES: "Serial"}
MEDIA_TYPES = [m.value for m in MediaType]


class ImportForm(BaseModel):
    kind: str = ImportKind.OFFICERS.value
    dry_run: bool = False
    file: UploadFile | None = None


class MediaForm(MediaScanForm):
    """The media read off a device back from the field that was imported without them."""

    serial: str = ""


def _page(request: Request, me: Caller, status: int = 200, **extra: Any) -> HTMLResponse:
    context = {"v": {"kind": ImportKind.OFFICERS.value, "dry_run": True}, "report": None, "m": MediaForm(), **extra}
    return page(request, me, "tech_import.html", status, kinds=KINDS, key_labels=KEY_LABELS, media_types=MEDIA_TYPES,
                **context)  # fmt: skip


@router.get("/import")
def import_form(request: Request, me: TechUser, media_recorded: str = "") -> HTMLResponse:
    notice = f"Media recorded for {media_recorded}: it can be erased now." if media_recorded else None
    return _page(request, me, notice=notice)


@router.post("/import/media")
def record_media(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[MediaForm, Form()]) -> Response:
    def action(session: Session) -> str:
        if not form.media():
            raise InvalidInput("scan the serial of each storage medium read off the device")
        record_returned_media(session, serial=form.serial, media=form.media(), actor=me.name)
        return form.serial.strip()

    def refused(exc: FactoryError) -> Response:
        field = field_of(exc, {"serial": ("not awaiting", "no device"), "medium_serial": ("medi",)}, "serial")
        return _page(request, me, exc.status_code, m=form, error=exc.reason, error_field=field)

    return act(ctx, action, lambda serial: f"/tech/import?media_recorded={quote(serial)}", refused)


def _text(file: UploadFile | None) -> str:
    if file is None or not file.filename:
        raise InvalidInput("choose the CSV file to import")
    content = file.file.read(MAX_IMPORT_BYTES + 1)
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text: save it as CSV UTF-8") from None


@router.post("/import")
def import_file(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[ImportForm, Form()]) -> Response:
    values = {"kind": form.kind, "dry_run": form.dry_run}
    try:
        text = _text(form.file)
        with session_scope(ctx.engine) as session:
            report = import_csv(session, kind=form.kind, text=text, dry_run=form.dry_run, actor=me.name)
    except FactoryError as exc:
        field = "kind" if "is not one of" in exc.reason else "file"
        return _page(request, me, exc.status_code, v=values, error=exc.reason, error_field=field)
    notice = _notice(report)
    error = (
        f"{counted(report.refused, 'row')} refused: nothing was imported. Correct them and try again."
        if report.refused
        else None
    )
    return _page(request, me, 422 if report.refused else 200, v=values, report=report, notice=notice, error=error,
                 error_field="file")  # fmt: skip


def _notice(report: ImportReport) -> str | None:
    """What the page says of a report with no refused row (None when a row was refused)."""
    if report.refused:
        return None
    if report.kept:
        done = f"Imported {len(report.rows)} {report.kind}."
        return done + IN_FIELD_NOTE if report.kind == ImportKind.DEVICES else done
    return f"Dry run: all {len(report.rows)} rows can be imported. Untick the dry run and import again."
