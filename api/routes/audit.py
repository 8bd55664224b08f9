"""Audit: certificate search and checks, device histories with chain proofs, exception reports
and offline-verifiable bundles (auditors and admins only)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from api.deps import AuditorUser, Caller, ContextDep, Credentials, SessionDep, UnitOfWorkRoute
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


def _search_query(request: Request) -> CertificateQuery:
    """The query string as a ``CertificateQuery``, checked by ``SearchParams``' rules: the same
    rules (and the same 422 problem) as a FastAPI query model, at a fraction of the cost. FastAPI
    re-inspects a query model's field annotations on every request (about 0.4 ms, more than the
    search's database round trip); pydantic validating the query's dict once does the same check.
    As with FastAPI, a name sent twice counts by its last value and unknown names are ignored.

    :raises RequestValidationError: a value out of bounds or of the wrong type.
    :raises AuditRequestInvalid: a bound that is not an ISO date or date-time.
    """
    query = dict(request.query_params)
    serial = query.get("device_serial")
    # The hottest search names a serial and nothing else: every other field keeps its default
    # (the query's defaults are SearchParams'), so the one rule that applies is the serial's
    # length. Anything else, a serial out of bounds included, goes through the model.
    if len(query) == 1 and serial is not None and 1 <= len(serial) <= limits.SEARCH_TERM:
        return CertificateQuery(device_serial=serial)
    try:
        params = SearchParams.model_validate(query)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]) from None
    return CertificateQuery.from_text(
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


# What FastAPI's resolver would run for ``_user: AuditorUser``: the bearer scheme's reader, then
# the auditor check over what it read (api/deps.py). ``_SearchRoute`` runs exactly these.
_AUDITOR_CHECK = get_args(AuditorUser)[1].dependency
_BEARER = get_args(Credentials)[1].dependency
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class _SearchRoute(UnitOfWorkRoute):
    """The search's route, declared like any other (OpenAPI shows its query parameters, bearer
    security and problem responses), run without FastAPI's dependency resolver: on this, the
    hottest read, the resolver's per-request bookkeeping (cache keys, generator checks, exit
    stacks) cost more than the search's own Python. The handler does what the resolver would:
    reads the bearer credentials, runs the auditor check (the same token cache and database
    check as every route, so the same auth cost), then calls the endpoint; their exceptions reach
    the app's problem-details handlers as before. It takes no dependency overrides and no
    router-level dependencies; the constructor refuses an endpoint declaring others."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        declared = [(d.call, [s.call for s in d.dependencies]) for d in self.dependant.dependencies]
        if declared != [(_AUDITOR_CHECK, [_BEARER])]:
            raise TypeError(f"{path}: the search route runs the auditor check and nothing else, not {declared}")

    def get_route_handler(self) -> Handler:
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            caller: Caller = await _AUDITOR_CHECK(request, await _BEARER(request))
            return await endpoint(request, caller)  # type: ignore[no-any-return]

        return handle


async def search(request: Request, _user: AuditorUser) -> Response:
    # The context straight from the app, not as a dependency (see _SearchRoute).
    ctx: AppContext = request.app.state.context
    query = _search_query(request)
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


# First of the router's routes, as it always was (routes match in order; see api/app.py).
router.add_api_route(
    "/api/certificates",
    search,
    methods=["GET"],
    response_model=CertificatePage,
    openapi_extra={"parameters": _query_parameters(SearchParams)},
    route_class_override=_SearchRoute,
)


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
