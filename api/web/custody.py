"""Custody pages: issue and walk-in swap at the bench (technicians). The couriers' pages are in
``courier.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import Caller, ContextDep
from api.web.forms import AcceptanceForm, device_or_none
from api.web.tech_pages import TechUser, act, field_of, page
from factory.custody.service import issue_device, walk_in_swap, wrong_pins_counted
from factory.custody.views import open_in_person_allocation
from factory.kernel.context import AppContext
from factory.kernel.db.engine import Session
from factory.kernel.errors import FactoryError, InvalidInput

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class HandOverPage:
    """A bench page that hands a device to an officer who accepts it: the form; after the hand-over
    (the device's serial comes back in the redirect's query) the device's card and a notice; after
    a refusal the form again, the field the reason is about marked."""

    template: str
    notice: str  # formatted with the device card's fields
    fields: dict[str, tuple[str, ...]]  # the field a refusal is about, by the words of its reason
    default_field: str
    redirect: Callable[[str], str]  # where the page goes after handing over the device with this serial

    def shown(self, request: Request, ctx: AppContext, me: Caller, serial: str) -> HTMLResponse:
        device = device_or_none(ctx, serial)
        notice = self.notice.format_map(device) if device else None
        return page(request, me, self.template, v={}, device=device, notice=notice)

    def posted(
        self, request: Request, ctx: AppContext, me: Caller, form: AcceptanceForm, action: Callable[[Session], str]
    ) -> Response:
        """The form post: ``action`` (it returns the serial handed over) in one unit of work where a
        wrong PIN is counted even though the hand-over is rolled back."""

        def refused(exc: FactoryError) -> Response:
            where, values = field_of(exc, self.fields, self.default_field), form.values()
            return page(request, me, self.template, exc.status_code, v=values, error=exc.reason, error_field=where)

        return act(ctx, action, self.redirect, refused, guard=wrong_pins_counted)


ISSUE = HandOverPage(
    "tech_issue.html", "Issued {serial} to {custodian}",
    {"pin": ("pin",), "old_serial": ("exchange", "old device"), "approval": ("approval", "exception"),
     "accepted_name": ("name",)},
    "device_serial",
    lambda serial: f"/tech/issue?{urlencode(dict(issued=serial))}",
)  # fmt: skip
SWAP = HandOverPage(
    "tech_swap.html", "Swap recorded: {serial} is now {state}",
    {"pin": ("pin",), "spare_serial": ("spare",), "fault": ("fault",), "faulty_serial": ("held by",),
     "staff_number": ("officer", "staff number"), "accepted_name": ("name",)},
    "faulty_serial",
    lambda serial: f"/tech/swap?{urlencode(dict(spare=serial))}",
)  # fmt: skip


# The forms (after a hand-over, the serial in the query shows the device's card).
@router.get("/tech/issue")
def issue_form(request: Request, ctx: ContextDep, me: TechUser, issued: str = "") -> HTMLResponse:
    return ISSUE.shown(request, ctx, me, issued)


@router.get("/tech/swap")
def swap_form(request: Request, ctx: ContextDep, me: TechUser, spare: str = "") -> HTMLResponse:
    return SWAP.shown(request, ctx, me, spare)


def _by(me: Caller, ctx: AppContext, form: AcceptanceForm, request: Request) -> dict[str, Any]:
    """Who hands a device to an officer, the officer's acceptance (marked with the bench's address:
    wrong PINs are throttled per officer and per address) and the certificate verifier."""
    acceptance = replace(form.acceptance(), address=request.client.host if request.client else None)
    return {"acceptance": acceptance, "actor": me.name, "verifier": ctx.site_keys.verifier()}


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

    return ISSUE.posted(request, ctx, me, form, action)


# ---------------------------------------------------------------- walk-in swap (technicians)
class SwapForm(AcceptanceForm):
    staff_number: str = ""
    faulty_serial: str = ""
    spare_serial: str = ""
    fault: str = ""


SWAP_FIELDS = {"staff_number", "faulty_serial", "spare_serial", "fault"}


@router.post("/tech/swap")
def swap(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[SwapForm, Form()]) -> Response:
    def action(session: Session) -> str:
        fields = form.model_dump(include=SWAP_FIELDS)
        return walk_in_swap(session, **fields, **_by(me, ctx, form, request)).handed_over or ""

    return SWAP.posted(request, ctx, me, form, action)
