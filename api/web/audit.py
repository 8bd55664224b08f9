"""Auditor pages (read-only, GET only): certificate search, device histories with chain proofs,
ledger and certificate verification, and exports of what a search found.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import Caller, ContextDep, page_user
from api.params import CertificateId as CertificatePath
from api.params import Reference as ReferencePath
from api.params import Serial as SerialPath
from api.routes.audit import bundle_download
from api.schemas.audit import ErasureOutcomePublic
from api.web.forms import iso_day, scanned
from api.web.render import render
from factory.audit.views import (
    DESTINATION_CHOICES,
    LEVEL_CHOICES,
    CertificateQuery,
    Outcome,
    SearchPage,
    certificate_sections,
    certificates_by_wave,
    check_certificate,
    device_history,
    exception_report,
    failures_without_reerase,
    get_certificate,
    parse_bound,
    search_certificates,
    summarise,
    summary_pdf,
    uncertified_departures,
)
from factory.identity.models import Role
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import FactoryError, InvalidInput
from factory.kernel.ledger.verify import verify_ledger
from factory.line.views import condition_of

router = APIRouter(prefix="/audit", include_in_schema=False)

AuditPage = Annotated[Caller, Depends(page_user(Role.AUDITOR))]

EXCEPTION_DAYS = 30  # out of custody longer than this is an exception (the API's default)
EXPORT_COLUMNS = tuple(ErasureOutcomePublic.model_fields)  # the CSV has the JSON search's columns
OUTCOMES = [o.value for o in Outcome]
CHOICES = {"outcomes": OUTCOMES, "levels": LEVEL_CHOICES, "destinations": DESTINATION_CHOICES}


FILTERS = (
    "serial",
    "media_serial",
    "asset_tag",
    "issued_from",
    "issued_to",
    "method",
    "level",
    "destination",
    "site",
    "wave",
)


def _query(request: Request, limit: int = 50) -> tuple[CertificateQuery, dict[str, str]]:
    """The search form's fields as a query (the CLI's and the API's filters); blanks mean 'any'."""
    fields = {k: request.query_params.get(k, "").strip()[:128] for k in (*FILTERS, "cursor")}
    outcome = request.query_params.get("outcome", Outcome.SUCCESS.value)
    if outcome not in {o.value for o in Outcome}:
        raise InvalidInput(f"outcome '{outcome[:20]}' is not one of: {', '.join(o.value for o in Outcome)}")
    fields["outcome"] = outcome
    query = CertificateQuery.from_text(
        issued_from=iso_day(fields["issued_from"], field="issued_from", label="From") or None,
        issued_to=iso_day(fields["issued_to"], field="issued_to", label="To") or None,
        device_serial=fields["serial"] or None,
        media_serial=fields["media_serial"] or None,
        asset_tag=fields["asset_tag"] or None,
        method=fields["method"] or None,
        level=fields["level"] or None,
        destination=fields["destination"] or None,
        site=fields["site"] or None,
        wave=fields["wave"] or None,
        outcome=Outcome(outcome),
        cursor=fields["cursor"] or None,
        limit=limit,
    )
    return query, fields


def _cell(value: object) -> object:
    """Spreadsheet-safe: a text cell starting like a formula is quoted so it stays text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@router.get("/search")
def search(request: Request, ctx: ContextDep, me: AuditPage) -> HTMLResponse:
    asked = any(request.query_params.get(k) for k in (*FILTERS, "outcome"))
    page: SearchPage | None = None
    fields: dict[str, str] = {"outcome": Outcome.SUCCESS.value}
    try:
        query, fields = _query(request)
        if asked:
            with session_scope(ctx.engine) as session:
                page = search_certificates(session, query)
    except FactoryError as exc:
        return render(
            request, "audit_search.html", me, exc.status_code, v=fields, page=None, error=exc.reason, **CHOICES
        )
    return render(request, "audit_search.html", me, v=fields, page=page, **CHOICES)


@router.get("/devices/{serial}")
def history(request: Request, ctx: ContextDep, me: AuditPage, serial: SerialPath) -> HTMLResponse:
    try:
        with session_scope(ctx.engine) as session:
            found = device_history(session, serial, ctx.site_keys.keyring())
            view: dict[str, Any] = found.as_dict()
            condition = condition_of(session, serial)
    except FactoryError as exc:
        return render(request, "forbidden.html", me, exc.status_code, reason=exc.reason)
    return render(request, "audit_device.html", me, h=view, condition=condition)


@router.get("/certificates/{certificate_id}")
def certificate(request: Request, ctx: ContextDep, me: AuditPage, certificate_id: CertificatePath) -> HTMLResponse:
    try:
        with session_scope(ctx.engine) as session:
            cert = get_certificate(session, certificate_id)
            check = check_certificate(session, cert, ctx.site_keys.keyring()).as_dict()
            signed = json.loads(cert.envelope)
            serial = cert.device_serial
    except FactoryError as exc:
        return render(request, "forbidden.html", me, exc.status_code, reason=exc.reason)
    sections = [s.as_dict() for s in certificate_sections(signed.get("certificate") or {})]
    return render(request, "audit_certificate.html", me, check=check, sections=sections, serial=serial)


@router.get("/certificates/{certificate_id}/signed.json")
def certificate_json(ctx: ContextDep, _me: AuditPage, certificate_id: CertificatePath) -> Response:
    """The signed envelope exactly as stored: what every check and the page above are read from."""
    try:
        with session_scope(ctx.engine) as session:
            cert = get_certificate(session, certificate_id)
    except FactoryError as exc:
        return Response(exc.reason, status_code=exc.status_code, media_type="text/plain")
    return Response(cert.envelope, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/verify")
def verify(request: Request, ctx: ContextDep, me: AuditPage, run: str = "") -> HTMLResponse:
    report = departures = None
    if run:
        report = verify_ledger(ctx.engine).as_dict()
        with session_scope(ctx.engine) as session:
            departures = [v.as_dict() for v in uncertified_departures(session, ctx.site_keys.keyring())]
    return render(request, "audit_verify.html", me, report=report, departures=departures)


@router.get("/export")
def export_form(request: Request, me: AuditPage) -> HTMLResponse:
    return render(request, "audit_export.html", me, v={}, outcomes=OUTCOMES)


@router.get("/export/outcomes.csv")
def export_csv(request: Request, ctx: ContextDep, _me: AuditPage) -> Response:
    """Every erase outcome matching the search, as CSV (one row per certificate or failure)."""
    try:
        query, _fields = _query(request, limit=500)
        rows = []
        with session_scope(ctx.engine) as session:
            while True:
                page = search_certificates(session, query)
                rows += [item.as_dict() for item in page.items]
                if page.next_cursor is None:
                    break
                query = replace(query, cursor=page.next_cursor)
    except FactoryError as exc:
        return Response(exc.reason, status_code=exc.status_code, media_type="text/plain")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="erase-outcomes.csv"', "Cache-Control": "no-store"},
    )


@router.get("/export/bundle")
def export_bundle_zip(request: Request, ctx: ContextDep, me: AuditPage) -> Response:
    """The offline-verifiable evidence bundle (ZIP) for the devices scanned into the form."""
    serials = scanned(request.query_params.getlist("serial"))
    try:
        with session_scope(ctx.engine) as session:
            return bundle_download(session, ctx, me.name, serials=serials, headers={"Cache-Control": "no-store"})
    except FactoryError as exc:
        return render(request, "audit_export.html", me, exc.status_code, outcomes=OUTCOMES, error=exc.reason)


@router.get("/exceptions")
def exceptions(request: Request, ctx: ContextDep, me: AuditPage) -> HTMLResponse:
    """Exceptions as a report: uncertified departures, devices out of custody too long, consignments
    overdue or missing a scan, certificate rows that disagree with the ledger, and each wave's
    devices with their certificates."""
    with session_scope(ctx.engine) as session:
        report = exception_report(session, ctx.site_keys.keyring(), days=EXCEPTION_DAYS).as_dict()
        failures = [f.as_dict() for f in failures_without_reerase(session)]
    return render(request, "audit_exceptions.html", me, r=report, failures=failures)


@router.get("/waves/{wave}")
def wave_report(request: Request, ctx: ContextDep, me: AuditPage, wave: ReferencePath) -> HTMLResponse:
    with session_scope(ctx.engine) as session:
        found = certificates_by_wave(session, wave)
    if not found:
        return render(request, "forbidden.html", me, 404, reason=f"no wave '{wave}' with allocated devices")
    return render(request, "audit_wave.html", me, w=found[0].as_dict())


@router.get("/summary.pdf")
def summary_download(request: Request, ctx: ContextDep, _me: AuditPage) -> Response:
    """The summary PDF of a wave (?wave=) or a date range (?issued_from=&issued_to=)."""
    params = {k: request.query_params.get(k, "").strip()[:64] or None for k in ("wave", "issued_from", "issued_to")}
    try:
        with session_scope(ctx.engine) as session:
            summary = summarise(
                session,
                ctx.site_keys.keyring(),
                wave=params["wave"],
                issued_from=parse_bound(iso_day(params["issued_from"] or "", field="issued_from", label="From")),
                issued_to=parse_bound(iso_day(params["issued_to"] or "", field="issued_to", label="To"), upper=True),
            )
    except FactoryError as exc:
        return Response(exc.reason, status_code=exc.status_code, media_type="text/plain")
    return Response(
        summary_pdf(summary),
        media_type="application/pdf",
        headers={"Content-Disposition": 'inline; filename="sanitisation-summary.pdf"', "Cache-Control": "no-store"},
    )
