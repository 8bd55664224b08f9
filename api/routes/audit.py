"""Audit: certificate search and checks, device histories with chain proofs, exception reports
and offline-verifiable bundles (auditors and admins only)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from sqlalchemy import Connection

from api.deps import AuditorUser, ContextDep, SessionDep
from api.schemas_audit import (
    CertificateCheckPublic,
    CertificateDetail,
    CertificatePage,
    DeviceHistoryPublic,
    ExceptionReportPublic,
)
from factory.app_context import AppContext
from factory.audit.bundle import export_bundle
from factory.audit.certificate_check import certificate_pdf, check_certificate, get_certificate
from factory.audit.exceptions import exception_report
from factory.audit.history import device_history
from factory.audit.search import CertificateQuery, Outcome, search_certificates
from factory.keys import load_private_key, load_public_key
from factory.ledger.verify import verify_ledger

router = APIRouter(tags=["audit"])

Text = Annotated[str | None, Query(min_length=1, max_length=128)]
CertId = Annotated[str, Path(min_length=1, max_length=64)]
SerialPath = Annotated[str, Path(min_length=1, max_length=128)]


@contextmanager
def _read_connection(ctx: AppContext) -> Iterator[Connection]:
    """A plain connection for a search's one or two SELECTs: no ORM session, and on PostgreSQL
    autocommit, so the hot path pays no BEGIN/ROLLBACK round trips. Opened in the endpoint rather
    than as a dependency: each sync dependency costs a thread-pool hop on entry and on exit."""
    with ctx.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


@router.get("/api/certificates", response_model=CertificatePage)
def search(
    ctx: ContextDep,
    _user: AuditorUser,
    device_serial: Text = None,
    media_serial: Text = None,
    asset_tag: Text = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    method: Text = None,
    level: Text = None,
    destination: Text = None,
    outcome: Outcome = Outcome.SUCCESS,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> dict[str, object]:
    query = CertificateQuery.from_text(
        device_serial=device_serial,
        media_serial=media_serial,
        asset_tag=asset_tag,
        issued_from=from_,
        issued_to=to,
        method=method,
        level=level,
        destination=destination,
        outcome=outcome,
        limit=limit,
        cursor=cursor,
    )
    with _read_connection(ctx) as conn:
        page = search_certificates(conn, query)
    return {"items": [i.as_dict() for i in page.items], "next_cursor": page.next_cursor}


@router.get("/api/certificates/{certificate_id}", response_model=CertificateDetail)
def show(certificate_id: CertId, session: SessionDep, _user: AuditorUser) -> dict[str, object]:
    cert = get_certificate(session, certificate_id)
    return {**cert.model_dump(exclude={"envelope", "device_id", "medium_id"}), "envelope": json.loads(cert.envelope)}


@router.get("/api/certificates/{certificate_id}/verify", response_model=CertificateCheckPublic)
def verify(certificate_id: CertId, session: SessionDep, ctx: ContextDep, _user: AuditorUser) -> dict[str, object]:
    cert = get_certificate(session, certificate_id)
    return check_certificate(session, cert, load_public_key(ctx.settings)).as_dict()


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
    return device_history(session, serial, load_public_key(ctx.settings), ledger=report).as_dict()


@router.get("/api/audit/exceptions", response_model=ExceptionReportPublic)
def exceptions(
    session: SessionDep,
    ctx: ContextDep,
    _user: AuditorUser,
    days: Annotated[int, Query(ge=0, le=36500)] = 30,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> dict[str, object]:
    return exception_report(session, load_public_key(ctx.settings), days=days, limit=limit).as_dict()


@router.get(
    "/api/audit/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def export(
    session: SessionDep,
    ctx: ContextDep,
    user: AuditorUser,
    serial: Annotated[list[str], Query(max_length=200)] = [],  # noqa: B006 (FastAPI copies defaults)
    certificate_id: Annotated[list[str], Query(max_length=200)] = [],  # noqa: B006
) -> Response:
    buffer = io.BytesIO()
    summary = export_bundle(
        session,
        load_public_key(ctx.settings),
        buffer,
        serials=serial,
        certificate_ids=certificate_id,
        site=ctx.settings.site_name,
        exported_by=user.name,
        head_key=load_private_key(ctx.settings),
    )
    name = summary.devices[0] if len(summary.devices) == 1 else f"{len(summary.devices)}-devices"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="audit-bundle-{name}.zip"'},
    )
