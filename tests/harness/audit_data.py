"""Builders for audit tests: devices with certificates, failures, departures, tampering."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import text
from sqlmodel import select

from factory.intake.service import MediaSpec, receive_device
from factory.kernel.context import AppContext
from factory.kernel.db.append_only import APPEND_ONLY_TABLES, drop_statements
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.device import Device, StorageMedium
from factory.sanitisation.service import Staff, certify_medium
from harness.domain import SIZE, move, ok_result
from imaging.certificate import Destination
from imaging.result import Level, Technique


def receive_tagged(
    ctx: AppContext, serial: str, media: tuple[str, ...], asset_tag: str | None = None, new_stock: bool = False
) -> int:
    with session_scope(ctx.engine) as s:
        d = receive_device(
            s,
            serial=serial,
            kind="laptop",
            make="Dell",
            model="Latitude 5440",
            asset_tag=asset_tag,
            actor="tech.one",
            media=[MediaSpec("sata-ssd", m, SIZE) for m in media],
            new_stock=new_stock,
        )
        return d.id or 0


def certify(ctx: AppContext, device_id: int, *, destination: Destination, purge: bool = False) -> list[str]:
    """Certify every medium of a device in ``sanitising``; purge: a crypto-erase certificate."""
    ids = []
    with session_scope(ctx.engine) as s:
        device = s.get(Device, device_id)
        assert device is not None
        for medium in s.exec(select(StorageMedium).where(StorageMedium.device_id == device_id)).all():
            result = ok_result(medium.serial)
            if purge:
                result = replace(
                    result,
                    level_requested=Level.PURGE,
                    level_achieved=Level.PURGE,
                    method="ata-sanitize-crypto",
                    technique=Technique.CRYPTO_ERASE,
                    pattern=None,
                    bytes_written=0,
                )
            cert = certify_medium(
                s, ctx.settings, device=device, medium=medium, result=result,
                operator=Staff("tech.one"), validator=Staff("tech.two", title="Validator"), destination=destination,
            )  # fmt: skip
            ids.append(cert.id)
    return ids


def sanitised_device(
    ctx: AppContext,
    serial: str,
    media: tuple[str, ...] = ("M1",),
    *,
    asset_tag: str | None = None,
    destination: Destination = Destination.INTERNAL_REUSE,
    purge: bool = False,
) -> tuple[int, list[str]]:
    device_id = receive_tagged(ctx, serial, media, asset_tag)
    move(ctx, device_id, Event.START_SANITISE)
    ids = certify(ctx, device_id, destination=destination, purge=purge)
    move(ctx, device_id, Event.SANITISED)
    return device_id, ids


def failed_device(ctx: AppContext, serial: str, reason: str) -> int:
    device_id = receive_tagged(ctx, serial, (f"{serial}-M",))
    move(ctx, device_id, Event.START_SANITISE)
    move(ctx, device_id, Event.FAIL, evidence={"reason": reason})
    return device_id


def issued_new_stock(ctx: AppContext, serial: str) -> int:
    device_id = receive_tagged(ctx, serial, (f"{serial}-M",), new_stock=True)
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
