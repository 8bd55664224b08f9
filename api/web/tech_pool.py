"""The Tech Bar's contingency pool page: stock per kind at this site with the low-stock warning,
new pools, stocking spares by scanning them (a list; one wrong scan keeps the rest), and
withdrawing a spare with a reason."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from api.deps import Caller, ContextDep
from api.web.forms import scanned
from api.web.render import counted
from api.web.tech_pages import TechUser, act, field_of, page, read
from factory.custody.service import create_pool, stock_spare, withdraw_spare
from factory.custody.views import pool_levels
from factory.kernel.context import AppContext
from factory.kernel.db.engine import Session
from factory.kernel.errors import FactoryError, InvalidInput
from factory.kernel.models.device import DeviceKind

router = APIRouter(prefix="/tech", include_in_schema=False)
KINDS = [k.value for k in DeviceKind]


class StockForm(BaseModel):
    serial: list[str] = []


class PoolForm(BaseModel):
    kind: str = DeviceKind.LAPTOP.value
    low_stock_level: str = "2"


class WithdrawForm(BaseModel):
    withdraw_serial: str = ""
    reason: str = ""


def _pool_page(request: Request, ctx: AppContext, me: Caller, status: int = 200, **extra: Any) -> HTMLResponse:
    site = ctx.settings.site_name
    pools = read(ctx, lambda s: pool_levels(s, site))
    context = {"v": {}, "stocked": [], **extra}
    return page(request, me, "tech_pool.html", status, site=site, pools=pools, kinds=KINDS, **context)


@router.get("/pool")
def pool(request: Request, ctx: ContextDep, me: TechUser, done: str = "") -> HTMLResponse:
    return _pool_page(request, ctx, me, notice=done[:200] or None)


@router.post("/pool/stock")
def stock(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[StockForm, Form()]) -> Response:
    serials = scanned(form.serial)

    def action(session: Session) -> str:
        if not serials:
            raise InvalidInput("scan at least one spare to stock")
        for serial in serials:  # all or none: one refusal leaves the pool as it was
            stock_spare(session, site=ctx.settings.site_name, serial=serial, actor=me.name)
        return f"Stocked {counted(len(serials), 'spare')}: {', '.join(serials)}"

    def refused(exc: FactoryError) -> Response:
        return _pool_page(request, ctx, me, exc.status_code, stocked=serials, error=exc.reason, error_field="serial")

    return act(ctx, action, lambda text: f"/tech/pool?{urlencode({'done': text})}", refused)


@router.post("/pool/new")
def new_pool(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[PoolForm, Form()]) -> Response:
    def action(session: Session) -> str:
        level = form.low_stock_level.strip()
        if not level.isdigit() or len(level) > 4:
            raise InvalidInput(f"the low-stock level '{level[:10]}' must be a whole number")
        site = ctx.settings.site_name
        create_pool(session, site=site, kind=form.kind, low_stock_level=int(level), actor=me.name)
        return f"Contingency pool of {form.kind} devices opened at {site}"

    def refused(exc: FactoryError) -> Response:
        where = field_of(exc, {"low_stock_level": ("low-stock",)}, "kind")
        return _pool_page(request, ctx, me, exc.status_code, v=form.model_dump(), error=exc.reason, error_field=where)

    return act(ctx, action, lambda text: f"/tech/pool?{urlencode({'done': text})}", refused)


@router.post("/pool/withdraw")
def withdraw(request: Request, ctx: ContextDep, me: TechUser, form: Annotated[WithdrawForm, Form()]) -> Response:
    def action(session: Session) -> str:
        withdraw_spare(session, serial=form.withdraw_serial, reason=form.reason, actor=me.name)
        return f"{form.withdraw_serial.strip()} withdrawn from the pool"

    def refused(exc: FactoryError) -> Response:
        where = field_of(exc, {"reason": ("reason",)}, "withdraw_serial")
        return _pool_page(request, ctx, me, exc.status_code, v=form.model_dump(), error=exc.reason, error_field=where)

    return act(ctx, action, lambda text: f"/tech/pool?{urlencode({'done': text})}", refused)
