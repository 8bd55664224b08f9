"""Custody pages: issue and walk-in swap at the bench (technicians). The couriers' pages are in
``courier.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import Caller, ContextDep, page_user
from api.web.forms import AcceptanceForm, device_or_none
from api.web.render import render
from api.web.tech_pages import field_of
from factory.custody.service import (
    issue_device,
    walk_in_swap,
    wrong_pins_counted,
)
from factory.custody.views import (
    open_in_person_allocation,
)
from factory.identity.models import Role
from factory.kernel.context import AppContext
from factory.kernel.db.engine import Session, session_scope
from factory.kernel.errors import FactoryError, InvalidInput

router = APIRouter(include_in_schema=False)

TechUser = Annotated[Caller, Depends(page_user(Role.TECHNICIAN))]


def _act(
    ctx: AppContext,
    action: Callable[[Session], str],
    refused: Callable[[FactoryError], Response],
    then: Callable[[str], str],
) -> Response:
    """A page's form post: the action in one unit of work, then a redirect to ``then(what it
    returned)``; or, when the factory refuses, the page again with the reason (``refused``)."""
    try:
        with session_scope(ctx.engine) as session, wrong_pins_counted(session):
            done = action(session)
    except FactoryError as exc:
        return refused(exc)
    return RedirectResponse(then(done), status_code=303)


def _bench_page(
    request: Request, ctx: AppContext, me: Caller, template: str, serial: str, notice: Callable[[dict[str, Any]], str]
) -> HTMLResponse:
    """A technician's form; after an action (the serial comes back in the redirect), with the
    device's card and a notice."""
    device = device_or_none(ctx, serial)
    return render(request, template, me, v={}, device=device, notice=notice(device) if device else None)


def _by(me: Caller, ctx: AppContext, form: AcceptanceForm, request: Request) -> dict[str, Any]:
    """Who hands a device to an officer, the officer's acceptance (marked with the bench's address:
    wrong PINs are throttled per officer and per address) and the certificate verifier."""
    acceptance = replace(form.acceptance(), address=request.client.host if request.client else None)
    return {"acceptance": acceptance, "actor": me.name, "verifier": ctx.site_keys.verifier()}


# The field a refusal is about, by the words of its reason (the page marks it and focuses it).
REFUSAL_FIELDS = {
    "tech_issue.html": (
        {"pin": ("pin",), "old_serial": ("exchange", "old device"), "approval": ("approval", "exception"),
         "accepted_name": ("name",)},
        "device_serial",
    ),
    "tech_swap.html": (
        {"pin": ("pin",), "spare_serial": ("spare",), "fault": ("fault",), "faulty_serial": ("held by",),
         "staff_number": ("officer", "staff number"), "accepted_name": ("name",)},
        "faulty_serial",
    ),
}  # fmt: skip


def _refused(request: Request, me: Caller, template: str, form: AcceptanceForm) -> Callable[[FactoryError], Response]:
    def page(exc: FactoryError) -> Response:
        where = field_of(exc, *REFUSAL_FIELDS[template])
        return render(request, template, me, exc.status_code, v=form.values(), error=exc.reason, error_field=where)

    return page


# ---------------------------------------------------------------- issue in person (technicians)
class IssueForm(AcceptanceForm):
    device_serial: str = ""
    old_serial: str = ""
    approval: str = ""

    def approval_number(self) -> int | None:
        value = self.approval.strip()
        if not value:
            return None
        if not value.isdigit() or len(value) > 12:
            raise InvalidInput(f"exception approval number '{value[:20]}' must be a whole number")
        return int(value)


@router.get("/tech/issue")
def issue_form(request: Request, ctx: ContextDep, me: TechUser, issued: str = "") -> HTMLResponse:
    return _bench_page(request, ctx, me, "tech_issue.html", issued, "Issued {serial} to {custodian}".format_map)


@router.post("/tech/issue")
def issue(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[IssueForm, Form()]) -> Response:
    def action(session: Session) -> str:
        approval_id = form.approval_number()  # a malformed number is refused before any lookup
        allocation = open_in_person_allocation(session, form.device_serial)
        old_serial = form.old_serial.strip() or None
        outcome = issue_device(
            session,
            allocation_id=allocation.id or 0,
            old_serial=old_serial,
            approval_id=approval_id,
            **_by(me, ctx, form, request),
        )
        return outcome.handed_over or ""

    refused = _refused(request, me, "tech_issue.html", form)
    return _act(ctx, action, refused, lambda serial: f"/tech/issue?{urlencode(dict(issued=serial))}")


# ---------------------------------------------------------------- walk-in swap (technicians)
class SwapForm(AcceptanceForm):
    staff_number: str = ""
    faulty_serial: str = ""
    spare_serial: str = ""
    fault: str = ""


SWAP_FIELDS = {"staff_number", "faulty_serial", "spare_serial", "fault"}


@router.get("/tech/swap")
def swap_form(request: Request, ctx: ContextDep, me: TechUser, spare: str = "") -> HTMLResponse:
    return _bench_page(request, ctx, me, "tech_swap.html", spare, "Swap recorded: {serial} is now {state}".format_map)


@router.post("/tech/swap")
def swap(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[SwapForm, Form()]) -> Response:
    def action(session: Session) -> str:
        fields = form.model_dump(include=SWAP_FIELDS)
        return walk_in_swap(session, **fields, **_by(me, ctx, form, request)).handed_over or ""

    refused = _refused(request, me, "tech_swap.html", form)
    return _act(ctx, action, refused, lambda serial: f"/tech/swap?{urlencode(dict(spare=serial))}")
