"""Template rendering for the web pages: one layout, role-aware navigation, strict headers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.deps import Caller
from api.web.forms import DATE_PATTERN, TIME_PATTERN
from factory.identity.models import Role
from factory.kernel.clock import uk_time

WEB_DIR = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
# Every time on a page in 24-hour UK local time: {{ entry.occurred_at|uk_time }}.
templates.env.filters["uk_time"] = uk_time


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 spare``, ``2 spares``: a count with its noun agreeing, instead of ``spare(s)``."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


templates.env.filters["counted"] = counted
# Date and time fields take what UK users type, day first and 24-hour (tech_macros.date_field; the
# same patterns api.web.forms parses with).
templates.env.globals.update(date_pattern=DATE_PATTERN, time_pattern=TIME_PATTERN)

# Everything is served from this origin: no inline script, no third-party content, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class NavLink:
    href: str
    label: str
    roles: tuple[Role, ...]


# The board page belongs to the bench line; the rest to the three user groups.
NAV: tuple[NavLink, ...] = (
    NavLink("/board", "Bench board", (Role.TECHNICIAN,)),
    NavLink("/tech/receive", "Receive", (Role.TECHNICIAN,)),
    NavLink("/tech/issue", "Issue", (Role.TECHNICIAN,)),
    NavLink("/tech/allocate", "Allocate", (Role.TECHNICIAN,)),
    NavLink("/tech/swap", "Swap", (Role.TECHNICIAN,)),
    NavLink("/tech/exceptions", "Exchange exceptions", (Role.TECHNICIAN,)),
    NavLink("/tech/held", "Held", (Role.TECHNICIAN,)),
    NavLink("/tech/destruction", "Destruction", (Role.TECHNICIAN,)),
    NavLink("/tech/pool", "Pool", (Role.TECHNICIAN,)),
    NavLink("/tech/disposal", "Disposal", (Role.ADMIN,)),
    NavLink("/tech/redistribute", "Schools", (Role.TECHNICIAN,)),
    NavLink("/tech/vehicles", "Vehicles", (Role.TECHNICIAN,)),
    NavLink("/tech/import", "Import", (Role.TECHNICIAN,)),
    NavLink("/tech/kpis", "KPIs", (Role.TECHNICIAN,)),
    NavLink("/courier/consignments", "Consignments", (Role.COURIER,)),
    NavLink("/audit/search", "Search", (Role.AUDITOR,)),
    NavLink("/audit/verify", "Verify", (Role.AUDITOR,)),
    NavLink("/audit/exceptions", "Exceptions", (Role.AUDITOR,)),
    NavLink("/audit/export", "Export", (Role.AUDITOR,)),
    NavLink("/admin/users", "Users", (Role.ADMIN,)),
    NavLink("/admin/accounts", "Accounts", (Role.ADMIN,)),
)


def nav_for(identity: Caller | None) -> list[NavLink]:
    if identity is None:
        return []
    return [link for link in NAV if identity.has(*link.roles)]


def render(
    request: Request,
    template: str,
    identity: Caller | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    page = templates.TemplateResponse(
        request,
        template,
        {"me": identity, "nav": nav_for(identity), "path": request.url.path, **context},
        status_code=status_code,
    )
    page.headers.update(SECURITY_HEADERS)
    return page
