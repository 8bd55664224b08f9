"""Devices: receive one, read one with its full custody history."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep, TechnicianUser, UnitOfWorkRoute
from api.params import Serial as SerialPath
from api.schemas.intake import DevicePublic, DeviceReceive
from factory.intake.service import MediaSpec, receive_device
from factory.intake.views import device_view, get_device

router = APIRouter(prefix="/api/devices", tags=["devices"], route_class=UnitOfWorkRoute)


@router.post("", status_code=201, response_model=DevicePublic)
def receive(body: DeviceReceive, session: SessionDep, user: TechnicianUser) -> dict[str, object]:
    device = receive_device(
        session,
        serial=body.serial,
        kind=body.kind.value,
        make=body.make,
        model=body.model,
        asset_tag=body.asset_tag,
        from_custodian=body.from_custodian,
        location=body.location,
        new_stock=body.new_stock,
        media=[MediaSpec(m.media_type.value, m.serial, m.capacity_bytes, m.model) for m in body.media],
        actor=user.name,
    )
    return device_view(session, device)


@router.get("/{serial}", response_model=DevicePublic)
def show(serial: SerialPath, session: SessionDep, _user: CurrentUser) -> dict[str, object]:
    return device_view(session, get_device(session, serial))
