"""Audit: certificate search and checks, device histories with chain proofs, exception reports
and offline-verifiable bundles (auditors and admins only)."""

from __future__ import annotations

import io
import json
import re
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from api.deps import AuditorUser, ContextDep, SessionDep, UnitOfWorkRoute
from api.params import CertificateId as CertId
from api.params import Serial as SerialPath
from api.schemas.audit import (
    CertificateCheckPublic,
    CertificateDetail,
    CertificatePage,
    DeviceHistoryPublic,
    ExceptionReportPublic,
)
from factory.audit.service import export_bundle
from factory.audit.views import (
    CertificateQuery,
    Outcome,
    certificate_pdf,
    check_certificate,
    device_history,
    exception_report,
    get_certificate,
    search_json,
    search_json_async,
    search_reader,
)
from factory.custody.views import DEFAULT_OVERDUE_DAYS
from factory.kernel import limits
from factory.kernel.context import AppContext
from factory.kernel.db.engine import Session
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.site_keys import load_private_key

router = APIRouter(tags=["audit"], route_class=UnitOfWorkRoute)

Bounded = Annotated[str | None, Field(min_length=1, max_length=limits.SEARCH_TERM)]


class SearchParams(BaseModel):
    """The search's query string, validated in one pass by ``_search_params`` (see there)."""

    device_serial: Bounded = None
    media_serial: Bounded = None
    asset_tag: Bounded = None
    from_: Annotated[str | None, Field(alias="from", max_length=limits.DATE_TEXT)] = None
    to: Annotated[str | None, Field(max_length=limits.DATE_TEXT)] = None
    method: Bounded = None
    level: Bounded = None
    destination: Bounded = None
    site: Bounded = None
    wave: Bounded = None
    outcome: Outcome = Outcome.SUCCESS
    limit: Annotated[int, Field(ge=1, le=limits.PAGE)] = 50
    cursor: Annotated[str | None, Field(max_length=limits.CURSOR)] = None


def _search_params(request: Request) -> SearchParams:
    """The query string as ``SearchParams``: the same rules (and the same 422 problem) as a
    FastAPI query model, at a fraction of the cost. FastAPI re-inspects a query model's field
    annotations on every request (about 0.4 ms, more than the search's database round trip);
    pydantic validating the query's dict once does the same check. As with FastAPI, a name sent
    twice counts by its last value and unknown names are ignored.

    :raises RequestValidationError: a value out of bounds or of the wrong type.
    """
    try:
        return SearchParams.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]) from None


def _query_parameters(model: type[BaseModel]) -> list[dict[str, object]]:
    """OpenAPI query parameters of ``model``'s fields, as FastAPI publishes a query model's."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.get("$defs", {})
    parameters: list[dict[str, object]] = []
    for name, field in schema["properties"].items():
        field = dict(field)
        if (ref := field.pop("$ref", None)) is not None:
            field = {**definitions[ref.rsplit("/", 1)[1]], **field}
        if field.get("default", ...) is None:
            del field["default"]
        parameters.append({"name": name, "in": "query", "required": False, "schema": field})
    return parameters


@router.get(
    "/api/certificates",
    response_model=CertificatePage,
    openapi_extra={"parameters": _query_parameters(SearchParams)},
)
async def search(request: Request, ctx: ContextDep, _user: AuditorUser) -> Response:
    params = _search_params(request)
    query = CertificateQuery.from_text(
        device_serial=params.device_serial,
        media_serial=params.media_serial,
        asset_tag=params.asset_tag,
        issued_from=params.from_,
        issued_to=params.to,
        method=params.method,
        level=params.level,
        destination=params.destination,
        site=params.site,
        wave=params.wave,
        outcome=params.outcome,
        limit=params.limit,
        cursor=params.cursor,
    )
    # A search bounded by an index (one device's certificates) is a few index probes: on
    # PostgreSQL the route awaits them on the search's async connections (the loop serves other
    # requests meanwhile), on SQLite it reads the local file on the loop; either way no
    # thread-pool hop, which costs more than the query. Any other search may scan, so it runs in
    # a worker thread and never stalls the loop.
    if not query.index_bounded:
        body = await run_in_threadpool(search_json, ctx, query)
    elif (reader := search_reader(ctx)) is not None:
        body = await search_json_async(reader, query)
    else:
        body = search_json(ctx, query)
    return Response(body, media_type="application/json")


@router.get("/api/certificates/{certificate_id}", response_model=CertificateDetail)
def show(certificate_id: CertId, session: SessionDep, _user: AuditorUser) -> dict[str, object]:
    cert = get_certificate(session, certificate_id)
    return {**cert.model_dump(exclude={"envelope", "device_id", "medium_id"}), "envelope": json.loads(cert.envelope)}


@router.get("/api/certificates/{certificate_id}/verify", response_model=CertificateCheckPublic)
def verify(certificate_id: CertId, session: SessionDep, ctx: ContextDep, _user: AuditorUser) -> dict[str, object]:
    cert = get_certificate(session, certificate_id)
    return check_certificate(session, cert, ctx.site_keys.keyring()).as_dict()


@router.get(
    "/api/certificates/{certificate_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def pdf(certificate_id: CertId, session: SessionDep, _user: AuditorUser) -> Response:
    cert = get_certificate(session, certificate_id)
    return Response(
        certificate_pdf(cert),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{cert.id}.pdf"'},
    )


@router.get("/api/devices/{serial}/history", response_model=DeviceHistoryPublic)
def history(
    serial: SerialPath,
    session: SessionDep,
    ctx: ContextDep,
    _user: AuditorUser,
    full_verify: Annotated[bool, Query(description="Also re-verify the whole ledger (slow on a large one).")] = False,
) -> dict[str, object]:
    # Before the session's first query: on SQLite that query takes the write lock the verifier would wait on.
    report = verify_ledger(ctx.engine) if full_verify else None
    return device_history(session, serial, ctx.site_keys.keyring(), ledger=report).as_dict()


@router.get("/api/audit/exceptions", response_model=ExceptionReportPublic)
def exceptions(
    session: SessionDep,
    ctx: ContextDep,
    _user: AuditorUser,
    days: Annotated[int, Query(ge=0, le=limits.DAYS)] = 30,
    limit: Annotated[int, Query(ge=1, le=limits.REPORT_ROWS)] = 1000,
    overdue_days: Annotated[
        int,
        Query(
            ge=0, le=limits.DAYS, description="A consignment not delivered this many days after hand-over is overdue."
        ),
    ] = DEFAULT_OVERDUE_DAYS,
) -> dict[str, object]:
    keys = ctx.site_keys.keyring()
    return exception_report(session, keys, days=days, overdue_days=overdue_days, limit=limit).as_dict()


@router.get(
    "/api/audit/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def export(
    session: SessionDep,
    ctx: ContextDep,
    user: AuditorUser,
    serial: Annotated[list[str], Query(max_length=limits.BUNDLE_ITEMS)] = [],  # noqa: B006 (FastAPI copies defaults)
    certificate_id: Annotated[list[str], Query(max_length=limits.BUNDLE_ITEMS)] = [],  # noqa: B006
) -> Response:
    return bundle_download(session, ctx, user.name, serials=serial, certificate_ids=certificate_id)


def bundle_download(
    session: Session,
    ctx: AppContext,
    exported_by: str,
    *,
    serials: list[str],
    certificate_ids: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The offline-verifiable evidence bundle as a ZIP download (the JSON API's and the export page's).

    :raises FactoryError: nothing to export, or an unknown device or certificate.
    """
    buffer = io.BytesIO()
    summary = export_bundle(
        session,
        ctx.site_keys.public_key(),
        buffer,
        serials=serials,
        certificate_ids=certificate_ids or [],
        site=ctx.settings.site_name,
        exported_by=exported_by,
        head_key=load_private_key(ctx.settings),
    )
    name = summary.devices[0] if len(summary.devices) == 1 else f"{len(summary.devices)}-devices"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="audit-bundle-{name}.zip"', **(headers or {})},
    )
