"""KPI page: per-bench and per-wave figures over a date window (devices per hour over working
time, first-time pass rate, queue lengths now); the window is two dates typed day first
(dd/mm/yyyy, read by api.web.forms), each a whole UTC day."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import ContextDep
from api.web.forms import FieldError, day_first, parse_day
from api.web.tech_pages import TechUser, page, read
from factory.custody.views import window_kpis
from factory.kernel import clock
from factory.kernel.errors import FactoryError

router = APIRouter(prefix="/tech", include_in_schema=False)
DEFAULT_DAYS = 7


@router.get("/kpis")
def kpis(request: Request, ctx: ContextDep, me: TechUser, start: str = "", end: str = "") -> HTMLResponse:
    now = clock.now()
    today = now.astimezone(UTC).date()
    values = {"start": start[:10], "end": end[:10]}
    try:
        first = parse_day(start, field="start", label="From") or today - timedelta(days=DEFAULT_DAYS - 1)
        last = parse_day(end, field="end", label="To") or today
        values = {"start": day_first(first), "end": day_first(last)}
        # The window runs from the start of the first day to the end of the last one.
        window = (datetime.combine(first, time(), UTC), datetime.combine(last + timedelta(days=1), time(), UTC))
        benches, waves = read(ctx, lambda s: window_kpis(s, *window, now=now))
    except FactoryError as exc:
        where = exc.field if isinstance(exc, FieldError) else "end" if "end after" in exc.reason else "start"
        return page(request, me, "tech_kpis.html", exc.status_code, v=values, benches=[], waves=[],
                    error=exc.reason, error_field=where)  # fmt: skip
    return page(request, me, "tech_kpis.html", v=values, benches=benches, waves=waves)
