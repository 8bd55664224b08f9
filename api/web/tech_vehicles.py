"""Vehicle pages: build a new in-vehicle tablet for its vehicle (the earmark before its build),
install an allocated tablet (the contractor's fitting), replace a faulty one (out and in, in one
step), and decommission a vehicle (its tablets come back)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from api.deps import Caller, ContextDep
from api.web.forms import day_first, parse_day
from api.web.tech_pages import TechUser, act, field_of, page, read
from factory.custody.service import (
    Fitter,
    build_for_vehicle,
    decommission_vehicle,
    install_tablet,
    remove_build,
    replace_tablet,
)
from factory.custody.views import earmarks, vehicle_allocation_for, vehicles_view
from factory.kernel import clock
from factory.kernel.context import AppContext
from factory.kernel.db.engine import Session
from factory.kernel.errors import FactoryError

router = APIRouter(prefix="/tech/vehicles", include_in_schema=False)


def _day(text: str, *, field: str, label: str) -> date:
    """A date typed day first (the shared parser: dd/mm/yyyy); today when left empty."""
    return parse_day(text, field=field, label=label) or clock.now().date()


class BuildForm(BaseModel):
    build_fleet_number: str = ""
    build_serial: str = ""


class UnbuildForm(BaseModel):
    unbuild_serial: str = ""
    unbuild_fleet_number: str = ""


class InstallForm(BaseModel):
    tablet_serial: str = ""
    installer_name: str = ""
    installer_company: str = ""
    installed_on: str = ""


class ReplaceForm(BaseModel):
    fleet_number: str = ""
    faulty_serial: str = ""
    replacement_serial: str = ""
    fault: str = ""
    fitter_name: str = ""
    fitter_company: str = ""
    fitted_on: str = ""


class DecommissionForm(BaseModel):
    retire_fleet_number: str = ""
    removed_by: str = ""


BUILD_FIELDS = {"build_fleet_number": ("fleet number", "decommissioned")}
INSTALL_FIELDS = {"installed_on": ("date",), "installer_name": ("installer",)}
REPLACE_FIELDS = {
    "fitted_on": ("date",),
    "fitter_name": ("fitter",),
    "fault": ("fault",),
    "faulty_serial": ("is not installed in",),
    "replacement_serial": ("not allocated to vehicle", "same device"),
}
RETIRE_FIELDS = {"removed_by": ("who took",)}


def _page(request: Request, ctx: AppContext, me: Caller, status: int = 200, **extra: Any) -> HTMLResponse:
    vehicles, builds = read(ctx, vehicles_view), read(ctx, earmarks)
    context = {"v": {}, "building": False, "today": day_first(clock.now().date()), **extra}
    return page(request, me, "tech_vehicles.html", status, vehicles=vehicles, builds=builds, **context)


@router.get("")
def vehicles(request: Request, ctx: ContextDep, me: TechUser, done: str = "", build: str = "") -> HTMLResponse:
    """The page; after a build, ``build`` keeps its vehicle so the next scan is the next tablet's serial."""
    fleet = build.strip()[:32]
    return _page(request, ctx, me, notice=done[:200] or None, v={"build_fleet_number": fleet}, building=bool(fleet))


def _post(
    request: Request,
    ctx: AppContext,
    me: Caller,
    form: BaseModel,
    fields: tuple[dict[str, Any], str],
    action: Any,
    **query: str,
) -> Response:
    """A form post on this page; a refusal marks the field its reason names (``fields``: words
    per field, and the field otherwise). ``query`` goes with the notice to the page after success."""

    def refused(exc: FactoryError) -> Response:
        where = field_of(exc, *fields)
        return _page(request, ctx, me, exc.status_code, v=form.model_dump(), error=exc.reason, error_field=where)

    return act(ctx, action, lambda text: f"/tech/vehicles?{urlencode({'done': text, **query})}", refused)


@router.post("/build")
def build(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[BuildForm, Form()]) -> Response:
    def action(session: Session) -> str:
        mark = build_for_vehicle(session, serial=form.build_serial, fleet_number=form.build_fleet_number, actor=me.name)
        return f"{mark.serial} will be built for vehicle {mark.fleet_number}: put it on a bench to build it"

    fleet = form.build_fleet_number.strip()
    return _post(request, ctx, me, form, (BUILD_FIELDS, "build_serial"), action, build=fleet)


@router.post("/unbuild")
def unbuild(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[UnbuildForm, Form()]) -> Response:
    def action(session: Session) -> str:
        fleet = remove_build(session, serial=form.unbuild_serial, fleet_number=form.unbuild_fleet_number or None)
        return f"{form.unbuild_serial.strip()} is no longer earmarked for vehicle {fleet}"

    return _post(request, ctx, me, form, ({}, ""), action)  # its refusal names the tablet; no field to mark


@router.post("/install")
def install(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[InstallForm, Form()]) -> Response:
    verifier = ctx.site_keys.verifier()

    def action(session: Session) -> str:
        installed_on = _day(form.installed_on, field="installed_on", label="Installed on")
        allocation_id = vehicle_allocation_for(session, form.tablet_serial)
        install_tablet(session, allocation_id=allocation_id, installer_name=form.installer_name,
                       installer_company=form.installer_company, installed_on=installed_on,
                       actor=me.name, verifier=verifier)  # fmt: skip
        return f"{form.tablet_serial.strip()} installed"

    return _post(request, ctx, me, form, (INSTALL_FIELDS, "tablet_serial"), action)


@router.post("/replace")
def replace(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[ReplaceForm, Form()]) -> Response:
    verifier = ctx.site_keys.verifier()

    def action(session: Session) -> str:
        fitted_on = _day(form.fitted_on, field="fitted_on", label="Fitted on")
        fitter = Fitter(form.fitter_name, form.fitter_company, fitted_on)
        replace_tablet(session, fleet_number=form.fleet_number, faulty_serial=form.faulty_serial,
                       replacement_serial=form.replacement_serial, fault=form.fault, fitter=fitter, actor=me.name,
                       verifier=verifier)  # fmt: skip
        return f"{form.faulty_serial.strip()} replaced by {form.replacement_serial.strip()}"

    return _post(request, ctx, me, form, (REPLACE_FIELDS, "fleet_number"), action)


@router.post("/decommission")
def decommission(
    request: Request, ctx: ContextDep, me: TechUser, form: Annotated[DecommissionForm, Form()]
) -> Response:
    def action(session: Session) -> str:
        decommission_vehicle(session, fleet_number=form.retire_fleet_number, removed_by=form.removed_by, actor=me.name)
        return f"Vehicle {form.retire_fleet_number.strip()} decommissioned: its tablets are back in the factory"

    return _post(request, ctx, me, form, (RETIRE_FIELDS, "retire_fleet_number"), action)
