"""In-vehicle tablets: installed into a vehicle by the installing contractor, removed when the
vehicle is decommissioned. Both are custody transitions with the installer and date as evidence.
Vehicles themselves are registered in people.py.
"""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from factory.custody.allocation import mark_returned
from factory.custody.documents import DocumentKind, Upload, document_ref, store_document
from factory.custody.models import Allocation, AllocationChannel, AllocationStatus, Vehicle
from factory.custody.people import get_vehicle, vehicle_label
from factory.intake.views import FACTORY_CUSTODIAN
from factory.kernel import clock
from factory.kernel.clock import utc_now
from factory.kernel.errors import Conflict, InvalidInput, NotFound
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event, State
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device


def install_tablet(
    session: Session,
    *,
    allocation_id: int,
    installer_name: str,
    installer_company: str,
    installed_on: date,
    actor: str,
    verifier: CertificateVerifier | None,
    job_sheet: Upload | None = None,
) -> CustodyEntry:
    """Record the contractor's installation of an allocated tablet (``install`` edge)."""
    allocation = session.get(Allocation, allocation_id)
    if allocation is None or allocation.channel != AllocationChannel.VEHICLE or allocation.vehicle_id is None:
        raise NotFound(f"no vehicle allocation with id {allocation_id}")
    if allocation.status != AllocationStatus.ALLOCATED:
        raise Conflict(f"allocation {allocation_id} is {allocation.status}, not allocated")
    vehicle = session.get(Vehicle, allocation.vehicle_id)
    assert vehicle is not None
    if vehicle.decommissioned_at is not None:
        raise Conflict(f"vehicle {vehicle.fleet_number} is decommissioned")
    name, company = (installer_name or "").strip(), (installer_company or "").strip()
    if not name or not company:
        raise InvalidInput("an installation names the installer and the installing contractor")
    if installed_on > clock.now().date():
        raise InvalidInput(f"installation date {installed_on.isoformat()} is in the future")
    evidence: dict[str, object] = {
        "allocation_id": allocation.id,
        "vehicle": vehicle.fleet_number,
        "installer": name,
        "contractor": company,
        "installed_on": installed_on.isoformat(),
    }
    if job_sheet is not None:
        evidence["job_sheet"] = document_ref(store_document(session, DocumentKind.INSTALLATION, job_sheet, actor=actor))
    [entry] = change_state(
        session,
        [
            TransitionRequest(
                allocation.device_id,
                Event.INSTALL,
                to_custodian=vehicle_label(vehicle),
                location=vehicle_label(vehicle),
                evidence=evidence,
            )
        ],
        actor=actor,
        verifier=verifier,
    )
    allocation.status = AllocationStatus.ISSUED.value
    session.add(allocation)
    session.flush()
    return entry


def decommission_vehicle(
    session: Session, *, fleet_number: str, removed_by: str, actor: str, location: str = ""
) -> list[CustodyEntry]:
    """Take every installed tablet out of the vehicle (``return`` edge, all or none), then retire it."""
    vehicle = get_vehicle(session, fleet_number)
    if vehicle.decommissioned_at is not None:
        raise Conflict(f"vehicle {vehicle.fleet_number} was already decommissioned at {vehicle.decommissioned_at}")
    if not (removed_by or "").strip():
        raise InvalidInput("a removal names who took the tablets out")
    devices = session.exec(
        select(Device).where(Device.custodian == vehicle_label(vehicle), Device.state == State.INSTALLED.value)
    ).all()
    entries: list[CustodyEntry] = []
    if devices:
        entries = change_state(
            session,
            [
                TransitionRequest(
                    d.id or 0,
                    Event.RETURN,
                    to_custodian=FACTORY_CUSTODIAN,
                    location=location or None,
                    evidence={"vehicle": vehicle.fleet_number, "reason": "vehicle decommissioned",
                              "removed_by": removed_by.strip()},
                )
                for d in devices
            ],
            actor=actor,
        )  # fmt: skip
        for d in devices:
            mark_returned(session, d.id or 0)
    vehicle.decommissioned_at = utc_now()
    session.add(vehicle)
    session.flush()
    return entries
