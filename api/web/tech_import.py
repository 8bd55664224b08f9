"""Bulk import page: officers (with their assistive-technology needs) or vehicles from a CSV file,
checked first by a dry run; the report names every row, refused ones with their reason."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from api.deps import Caller, ContextDep
from api.web.tech_pages import TechUser, page
from factory.custody.service import MAX_IMPORT_BYTES, ImportKind, import_csv
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import FactoryError, InvalidInput

router = APIRouter(prefix="/tech", include_in_schema=False)
KINDS = [k.value for k in ImportKind]


class ImportForm(BaseModel):
    kind: str = ImportKind.OFFICERS.value
    dry_run: bool = False
    file: UploadFile | None = None


def _page(request: Request, me: Caller, status: int = 200, **extra: Any) -> HTMLResponse:
    context = {"v": {"kind": ImportKind.OFFICERS.value, "dry_run": True}, "report": None, **extra}
    return page(request, me, "tech_import.html", status, kinds=KINDS, **context)


@router.get("/import")
def import_form(request: Request, me: TechUser) -> HTMLResponse:
    return _page(request, me)


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
            report = import_csv(session, kind=form.kind, text=text, dry_run=form.dry_run)
    except FactoryError as exc:
        field = "kind" if "is not one of" in exc.reason else "file"
        return _page(request, me, exc.status_code, v=values, error=exc.reason, error_field=field)
    if report.kept:
        notice = f"Imported {len(report.rows)} {report.kind}."
    elif report.dry_run and not report.refused:
        notice = f"Dry run: all {len(report.rows)} rows can be imported. Untick the dry run and import again."
    else:
        notice = None
    error = (
        f"{report.refused} row(s) refused: nothing was imported. Correct them and try again."
        if report.refused
        else None
    )
    return _page(request, me, 422 if report.refused else 200, v=values, report=report, notice=notice, error=error,
                 error_field="file")  # fmt: skip
