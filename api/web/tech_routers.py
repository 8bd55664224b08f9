"""The technicians' workflow pages beyond receive, issue and swap, one module each, and the admins'
accounts page (mounted by api/web/__init__.py)."""

from __future__ import annotations

from fastapi import APIRouter

from api.web import (
    admin_accounts,
    tech_allocate,
    tech_devices,
    tech_disposal,
    tech_exceptions,
    tech_import,
    tech_kpis,
    tech_labels,
    tech_pool,
    tech_redistribute,
    tech_vehicles,
)

ROUTERS: tuple[APIRouter, ...] = (
    tech_devices.router,
    tech_pool.router,
    tech_disposal.router,
    tech_allocate.router,
    tech_labels.router,
    tech_redistribute.router,
    tech_vehicles.router,
    tech_kpis.router,
    admin_accounts.router,
    tech_import.router,
    tech_exceptions.router,
)
