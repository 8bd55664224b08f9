"""Builders for audit tests: devices with certificates, failures, departures, tampering."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from sqlalchemy import text

from factory.kernel.context import AppContext
from factory.kernel.db.append_only import APPEND_ONLY_TABLES, drop_statements
from factory.kernel.lifecycle.states import Event
from harness.domain import move, receive, sanitise
from imaging.certificate import Destination


def sanitised_device(
    ctx: AppContext,
    serial: str,
    media: tuple[str, ...] = ("M1",),
    *,
    asset_tag: str | None = None,
    destination: Destination = Destination.INTERNAL_REUSE,
    purge: bool = False,
) -> tuple[int, list[str]]:
    """A used device received and sanitised; returns its id and its certificate ids."""
    device_id = receive(ctx, serial, media, asset_tag=asset_tag)
    return device_id, sanitise(ctx, device_id, destination, purge=purge)


def failed_device(ctx: AppContext, serial: str, reason: str) -> int:
    device_id = receive(ctx, serial, (f"{serial}-M",))
    move(ctx, device_id, Event.START_SANITISE)
    move(ctx, device_id, Event.FAIL, evidence={"reason": reason})
    return device_id


def issued_new_stock(ctx: AppContext, serial: str) -> int:
    device_id = receive(ctx, serial, (f"{serial}-M",), new_stock=True)
    for event in (Event.START_PROVISION, Event.PROVISIONED, Event.ALLOCATE):
        move(ctx, device_id, event)
    move(ctx, device_id, Event.ISSUE, to_custodian="officer:4711")
    return device_id


def drop_append_only_triggers(ctx: AppContext) -> None:
    """Simulate someone writing around the application: the evidence tables become editable."""
    dialect = ctx.engine.dialect.name
    with ctx.engine.begin() as conn:
        for table in APPEND_ONLY_TABLES:
            for stmt in drop_statements(dialect, table):
                conn.execute(text(stmt))


def bundle_checker(name: str) -> ModuleType:
    """The bundle's standalone checker loaded from its file, as an auditor runs it (not as a package module)."""
    from factory.audit import bundle

    spec = importlib.util.spec_from_file_location(name, bundle.VERIFIER_SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
