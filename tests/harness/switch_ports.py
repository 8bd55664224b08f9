"""Switch-port slots in tests: laptops recorded with their MAC, the poller's MAC events, and what
a slot holds and ran (tests/line/test_network_slots.py, test_netboot_switch_ports.py)."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import col, select

from factory.intake.service import register_endpoint
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line.models import Job, Slot
from hardware_drivers.events import MacGone, MacSeen
from harness.domain import receive

SWITCH = "sw-bench-1"


def host_key() -> str:
    public = Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def with_mac(ctx: AppContext, serial: str, mac: str, *, new_stock: bool = True) -> None:
    receive(ctx, serial, media=(f"{serial}-D",), new_stock=new_stock)
    with session_scope(ctx.engine) as s:
        register_endpoint(
            s, serial, address="127.0.0.1", port=22, username="root", host_key=host_key(), actor="t", mac=mac.upper()
        )


def slot(ctx: AppContext, code: str) -> Slot:
    with session_scope(ctx.engine) as s:
        row = s.exec(select(Slot).where(Slot.code == code)).one()
        s.expunge(row)
        return row


def jobs_in(ctx: AppContext, code: str) -> list[Job]:
    with session_scope(ctx.engine) as s:
        rows = s.exec(
            select(Job).join(Slot, col(Slot.id) == Job.slot_id).where(Slot.code == code).order_by(col(Job.id))
        ).all()
        for row in rows:
            s.expunge(row)
        return list(rows)


def seen(mac: str, port: int) -> MacSeen:
    return MacSeen(SWITCH, mac, port, port, f"Gi1/0/{port}", 20)


def gone(mac: str, port: int) -> MacGone:
    return MacGone(SWITCH, mac, port, port, f"Gi1/0/{port}")
