"""Custody workflows over JSON: transport only, every rule lives in factory/custody/.

Roles: technicians allocate, earmark new vehicle tablets for their vehicle (before the build),
issue, swap, install, receive returns and request or witness
destruction; couriers (the dispatch team) hand over, deliver, report failed deliveries and bring
undelivered consignments back to the factory, as on their pages; admins register people
and parties, approve exceptions, redistribute and run disposal batches; every signed-in user
(auditors included) can read KPIs, the exception report and evidence documents.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.deps import (
    AdminUser,
    Caller,
    ContextDep,
    CourierUser,
    CurrentUser,
    SessionDep,
    TechnicianUser,
    UnitOfWorkRoute,
)
from api.params import Reference as Ref
from api.params import RowId as Id
from api.params import Serial
from api.schemas.custody import (
    AllocateIn,
    BatchIn,
    BuildIn,
    CollectIn,
    ConsignmentIn,
    DecommissionIn,
    DeliveryIn,
    DestructionIn,
    EntriesOut,
    ExceptionIn,
    InstallIn,
    IssueIn,
    OfficerIn,
    PartyIn,
    ReasonIn,
    RecordOut,
    RecyclerCertificateIn,
    ScanIn,
    SwapIn,
    TransferIn,
    VehicleIn,
    WaveIn,
)
from factory.custody import service, views
from factory.custody.service import Outcome, allocate, release
from factory.custody.views import read_document
from factory.intake.views import entry_view
from factory.kernel.context import AppContext

router = APIRouter(prefix="/api/custody", tags=["custody"], route_class=UnitOfWorkRoute)


def _by(user: Caller, ctx: AppContext) -> dict[str, Any]:
    """Who does a step that moves a device, and the certificate verifier its guards use."""
    return {"actor": user.name, "verifier": ctx.site_keys.verifier()}


# The same as a route's dependency, one per role (the role is checked by the user dependency).
def _technician(user: TechnicianUser, ctx: ContextDep) -> dict[str, Any]:
    return _by(user, ctx)


def _courier(user: CourierUser, ctx: ContextDep) -> dict[str, Any]:
    return _by(user, ctx)


def _admin(user: AdminUser, ctx: ContextDep) -> dict[str, Any]:
    return _by(user, ctx)


ByTechnician = Annotated[dict[str, Any], Depends(_technician)]
ByCourier = Annotated[dict[str, Any], Depends(_courier)]
ByAdmin = Annotated[dict[str, Any], Depends(_admin)]


def _entries(outcome: Outcome[Any], **details: Any) -> dict[str, Any]:
    return {"entries": [entry_view(e) for e in outcome.entries], "details": details}


def _accepted(outcome: Outcome[Any]) -> dict[str, Any]:
    """A device handed to an officer: the entries and the hash of the officer's acceptance record."""
    sha256 = outcome.acceptance.record_sha256 if outcome.acceptance else None
    return _entries(outcome, acceptance_sha256=sha256)


# ------------------------------------------------------------------ people, parties, waves (admin)


@router.post("/officers", status_code=201, response_model=RecordOut)
def add_officer(body: OfficerIn, session: SessionDep, _user: AdminUser) -> dict[str, Any]:
    o = service.register_officer(session, **body.args())
    return {"id": o.staff_number, "details": {"name": o.name, "team": o.team, "at_profile": o.at_profile}}


@router.post("/vehicles", status_code=201, response_model=RecordOut)
def add_vehicle(body: VehicleIn, session: SessionDep, _user: AdminUser) -> dict[str, Any]:
    return {"id": service.register_vehicle(session, **body.args()).fleet_number}


@router.post("/parties", status_code=201, response_model=RecordOut)
def add_party(body: PartyIn, session: SessionDep, _user: AdminUser) -> dict[str, Any]:
    party = service.register_party(session, **body.args())
    return {"id": service.party_label(party), "details": {"name": party.name}}


@router.post("/waves", status_code=201, response_model=RecordOut)
def add_wave(body: WaveIn, session: SessionDep, _user: AdminUser) -> dict[str, Any]:
    return {"id": service.create_wave(session, **body.args()).name}


@router.get("/waves/{name}/kpis")
def wave_kpis(name: Ref, session: SessionDep, _user: CurrentUser) -> dict[str, Any]:
    return asdict(views.wave_kpis(session, name))


@router.get("/benches/kpis")
def bench_kpis(session: SessionDep, _user: CurrentUser) -> list[dict[str, Any]]:
    return [asdict(k) for k in views.bench_kpis(session)]


# ------------------------------------------------------------------ allocation and issue (technicians)


@router.post("/allocations", status_code=201, response_model=RecordOut)
def allocate_device(body: AllocateIn, session: SessionDep, user: TechnicianUser) -> dict[str, Any]:
    a = allocate(session, actor=user.name, **body.args()).record
    return {"id": a.id or 0, "details": {"channel": a.channel, "status": a.status}}


@router.post("/allocations/{allocation_id}/release", response_model=RecordOut)
def release_allocation(allocation_id: Id, body: ReasonIn, session: SessionDep, user: TechnicianUser) -> dict[str, Any]:
    a = release(session, allocation_id=allocation_id, **body.args(), actor=user.name).record
    return {"id": a.id or 0, "details": {"status": a.status}}


@router.post("/exceptions", status_code=201, response_model=RecordOut)
def request_exception(body: ExceptionIn, session: SessionDep, user: TechnicianUser) -> dict[str, Any]:
    a = service.request_exception(session, **body.args(), requested_by=user.name).record
    return {"id": a.id or 0, "details": {"requested_by": a.requested_by}}


@router.post("/exceptions/{approval_id}/approve", response_model=RecordOut)
def approve_exception(approval_id: Id, session: SessionDep, user: AdminUser) -> dict[str, Any]:
    a = service.approve_exception(session, approval_id=approval_id, approver=user.name).record
    return {"id": a.id or 0, "details": {"requested_by": a.requested_by, "approved_by": a.approved_by}}


@router.post("/allocations/{allocation_id}/issue", response_model=EntriesOut)
def issue_device(
    allocation_id: Id, body: IssueIn, session: SessionDep, by: ByTechnician, request: Request
) -> dict[str, Any]:
    with service.wrong_pins_counted(session):  # wrong PINs are throttled per officer and address
        args = _from_address(body.args(), request)
        result = service.issue_device(session, allocation_id=allocation_id, **args, **by)
    return _accepted(result)


@router.post("/swaps", response_model=EntriesOut)
def walk_in_swap(body: SwapIn, session: SessionDep, by: ByTechnician, request: Request) -> dict[str, Any]:
    with service.wrong_pins_counted(session):
        return _accepted(service.walk_in_swap(session, **_from_address(body.args(), request), **by))


def _from_address(args: dict[str, Any], request: Request) -> dict[str, Any]:
    """The acceptance marked with the client's address (wrong PINs count against it too)."""
    address = request.client.host if request.client else None
    return args | {"acceptance": replace(args["acceptance"], address=address)}


@router.post("/allocations/{allocation_id}/install", response_model=EntriesOut)
def install_tablet(allocation_id: Id, body: InstallIn, session: SessionDep, by: ByTechnician) -> dict[str, Any]:
    return _entries(service.install_tablet(session, allocation_id=allocation_id, **body.args(), **by))


@router.post("/vehicles/{fleet_number}/decommission", response_model=EntriesOut)
def decommission_vehicle(
    fleet_number: Ref, body: DecommissionIn, session: SessionDep, user: TechnicianUser
) -> dict[str, Any]:
    return _entries(service.decommission_vehicle(session, fleet_number=fleet_number, **body.args(), actor=user.name))


@router.post("/vehicles/{fleet_number}/builds", status_code=201, response_model=RecordOut)
def build_for_vehicle(fleet_number: Ref, body: BuildIn, session: SessionDep, user: TechnicianUser) -> dict[str, Any]:
    """Earmark a new vehicle tablet for this vehicle before its build: the line builds it with this fleet number."""
    mark = service.build_for_vehicle(session, fleet_number=fleet_number, **body.args(), actor=user.name)
    return {"id": mark.serial, "details": {"vehicle": mark.fleet_number, "by": mark.created_by}}


@router.delete("/vehicles/{fleet_number}/builds/{serial}", response_model=RecordOut)
def remove_build(fleet_number: Ref, serial: Serial, session: SessionDep, _user: TechnicianUser) -> dict[str, Any]:
    """Remove the tablet's earmark for this vehicle (before the tablet is allocated)."""
    fleet = service.remove_build(session, serial=serial, fleet_number=fleet_number)
    return {"id": serial, "details": {"vehicle": fleet}}


# ------------------------------------------------------------------ courier consignments


@router.post("/consignments", status_code=201, response_model=RecordOut)
def create_consignment(body: ConsignmentIn, session: SessionDep, ctx: ContextDep, user: CourierUser) -> dict[str, Any]:
    c = service.create_consignment(session, actor=user.name, site=ctx.settings.site_name, **body.args()).record
    return {"id": c.reference, "details": {"status": c.status, "manifest_document_id": c.manifest_document_id}}


@router.post("/consignments/{reference}/handover", response_model=EntriesOut)
def hand_over(reference: Ref, body: ScanIn, session: SessionDep, by: ByCourier) -> dict[str, Any]:
    return _entries(service.hand_over(session, reference=reference, **body.args(), **by))


@router.post("/consignments/{reference}/delivery", response_model=EntriesOut)
def deliver(reference: Ref, body: DeliveryIn, session: SessionDep, user: CourierUser) -> dict[str, Any]:
    return _entries(service.deliver(session, reference=reference, **body.args(), actor=user.name))


@router.post("/consignments/{reference}/failed-delivery", response_model=RecordOut)
def failed_delivery(reference: Ref, body: ReasonIn, session: SessionDep, user: CourierUser) -> dict[str, Any]:
    c = service.record_failed_delivery(session, reference=reference, **body.args(), actor=user.name).record
    return {"id": c.reference, "details": {"status": c.status}}


@router.post("/consignments/{reference}/return", response_model=EntriesOut)
def return_consignment(reference: Ref, session: SessionDep, user: CourierUser) -> dict[str, Any]:
    return _entries(service.return_to_factory(session, reference=reference, actor=user.name))


@router.get("/consignment-exceptions")
def consignment_exceptions(
    session: SessionDep, _user: CurrentUser, overdue_days: Annotated[int, Query(ge=0, le=365)] = 3
) -> list[dict[str, Any]]:
    return [asdict(e) for e in views.exception_report(session, overdue_days=overdue_days)]


# ------------------------------------------------------------------ redistribution and disposal (admin)


@router.post("/transfers", status_code=201, response_model=EntriesOut)
def redistribute(body: TransferIn, session: SessionDep, ctx: ContextDep, by: ByAdmin) -> dict[str, Any]:
    result = service.redistribute(session, **body.args(), site=ctx.settings.site_name, **by)
    note_id = result.document.id if result.document else None
    return _entries(result, transfer_id=result.record.id, note_document_id=note_id)


@router.post("/disposal-batches", status_code=201, response_model=RecordOut)
def open_batch(body: BatchIn, session: SessionDep, user: AdminUser) -> dict[str, Any]:
    return {"id": service.open_batch(session, actor=user.name, **body.args()).record.id or 0}


@router.post("/disposal-batches/{batch_id}/devices/{serial}", response_model=EntriesOut)
def add_to_batch(batch_id: Id, serial: Ref, session: SessionDep, by: ByAdmin) -> dict[str, Any]:
    return _entries(service.add_device(session, batch_id=batch_id, serial=serial, **by))


@router.post("/disposal-batches/{batch_id}/devices/{serial}/remove", response_model=EntriesOut)
def remove_from_batch(
    batch_id: Id, serial: Ref, body: ReasonIn, session: SessionDep, user: AdminUser
) -> dict[str, Any]:
    return _entries(service.remove_device(session, batch_id=batch_id, serial=serial, **body.args(), actor=user.name))


@router.post("/disposal-batches/{batch_id}/collect", response_model=RecordOut)
def collect_batch(batch_id: Id, body: CollectIn, session: SessionDep, ctx: ContextDep, by: ByAdmin) -> dict[str, Any]:
    transfer = service.WasteTransfer(**body.args())
    b = service.collect(session, batch_id=batch_id, transfer=transfer, site=ctx.settings.site_name, **by).record
    return {"id": b.id or 0, "details": {"status": b.status, "wtn_document_id": b.wtn_document_id}}


@router.post("/disposal-batches/{batch_id}/recycler-certificate", response_model=EntriesOut)
def recycler_certificate(batch_id: Id, body: RecyclerCertificateIn, session: SessionDep, by: ByAdmin) -> dict[str, Any]:
    return _entries(service.record_recycler_certificate(session, batch_id=batch_id, **body.args(), **by))


@router.post("/disposal-batches/{batch_id}/close", response_model=RecordOut)
def close_batch(batch_id: Id, session: SessionDep, user: AdminUser) -> dict[str, Any]:
    b = service.close_batch(session, batch_id=batch_id, actor=user.name).record
    return {"id": b.id or 0, "details": {"status": b.status, "closed_at": b.closed_at}}


# ------------------------------------------------------------------ destruction (two technicians)


@router.post("/destructions", status_code=201, response_model=RecordOut)
def request_destruction(body: DestructionIn, session: SessionDep, user: TechnicianUser) -> dict[str, Any]:
    r = service.request_destruction(session, **body.args(), actor=user.name).record
    return {"id": r.id or 0, "details": {"requested_by": r.requested_by}}


@router.post("/destructions/{record_id}/witness", response_model=EntriesOut)
def witness_destruction(record_id: Id, session: SessionDep, user: TechnicianUser, ctx: ContextDep) -> dict[str, Any]:
    return _entries(service.witness_destruction(session, record_id=record_id, witness=user.name, settings=ctx.settings))


# ------------------------------------------------------------------ evidence documents (read-only)


@router.get("/documents/{document_id}", response_class=Response)
def document(document_id: Id, session: SessionDep, user: CurrentUser) -> Response:
    doc = read_document(session, document_id, user.role)
    return Response(
        content=doc.content,
        media_type=doc.media_type,
        headers={"X-Content-SHA256": doc.sha256, "Content-Disposition": f'attachment; filename="document-{doc.id}"'},
    )
