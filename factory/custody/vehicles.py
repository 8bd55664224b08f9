"""In-vehicle tablets: installed into a vehicle by the installing contractor, removed when the
vehicle is decommissioned. Both are custody transitions with the installer and date as evidence.
Vehicles themselves are registered in people.py.
"""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from factory.custody.allocation import mark_returned
from factory.custody.documents import DocumentKind, Upload, document_ref, store_document
from factory.custody.lookups import get_allocation, get_vehicle, linked
from factory.custody.models import Allocation, Vehicle
from factory.custody.outcome import Outcome, saved
from factory.custody.people import vehicle_label
from factory.custody.statuses import AllocationStep, change_status, require
from factory.intake.views import FACTORY_CUSTODIAN
from factory.kernel import clock
from factory.kernel.clock import utc_now
from factory.kernel.errors import Conflict, InvalidInput
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
) -> Outcome[Allocation]:
    """Record the contractor's installation of an allocated tablet (``install`` edge).

    :raises NotFound: no such vehicle allocation.
    :raises Conflict: the allocation is not ``allocated`` or the vehicle is decommissioned.
    :raises InvalidInput: no installer or contractor, or a date in the future.
    """
    allocation = get_allocation(session, allocation_id, vehicle=True)
    require(allocation, AllocationStep.INSTALL, f"allocation {allocation_id} is {allocation.status}, not allocated")
    vehicle = linked(session, Vehicle, allocation.vehicle_id)
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
    entries = change_state(
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
    change_status(allocation, AllocationStep.INSTALL)
    return saved(session, allocation, entries)


def decommission_vehicle(
    session: Session, *, fleet_number: str, removed_by: str, actor: str, location: str = ""
) -> Outcome[Vehicle]:
    """Take every installed tablet out of the vehicle (``return`` edge, all or none), then retire it.

    :raises NotFound: no such vehicle.
    :raises Conflict: already decommissioned.
    :raises InvalidInput: nobody named as removing the tablets.
    """
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
    return saved(session, vehicle, entries)
