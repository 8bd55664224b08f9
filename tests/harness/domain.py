"""Helpers for domain tests: real certificates from a constructed successful erase outcome."""

from __future__ import annotations

from sqlmodel import Session, select

from factory.intake.service import MediaSpec, receive_device
from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device, StorageMedium
from factory.kernel.site_keys import load_public_key
from factory.sanitisation.certificates import make_verifier
from factory.sanitisation.service import Staff, certify_medium
from imaging.certificate import Destination
from imaging.result import (
    EraseResult,
    Level,
    MediaIdentity,
    Technique,
    VerificationResult,
    VerifyMode,
)

SIZE = 64 * 2**20


def ok_result(serial: str | None = None) -> EraseResult:
    return EraseResult(
        ok=True,
        media=MediaIdentity(
            path="/dev/loop7",
            target_kind="block",
            media_type="sata-ssd",
            size_bytes=SIZE,
            logical_sector_size=512,
            physical_sector_size=4096,
            model="TestDisk",
            serial=serial,
        ),
        level_requested=Level.CLEAR,
        level_achieved=Level.CLEAR,
        method="overwrite-zeros",
        technique=Technique.OVERWRITE,
        pattern="zeros",
        pattern_seed_hex=None,
        passes=1,
        bytes_written=SIZE,
        first_lba=0,
        last_lba=SIZE // 512 - 1,
        started_at="2026-11-22T10:00:00.000000Z",
        ended_at="2026-11-22T10:00:05.000000Z",
        verification=VerificationResult(
            mode=VerifyMode.FULL,
            expected_pattern="zeros",
            seed_hex=None,
            bytes_read=SIZE,
            coverage=1.0,
            subsections=1,
            locations=1,
            mismatches=0,
            passed=True,
        ),
        tool_version="test",
        tool_code_sha256="0" * 64,
    )


def verifier(ctx: AppContext) -> CertificateVerifier:
    return make_verifier(load_public_key(ctx.settings))


def receive(ctx: AppContext, serial: str, media: tuple[str, ...] = ("M1",), new_stock: bool = False) -> int:
    with session_scope(ctx.engine) as s:
        d = receive_device(
            s,
            serial=serial,
            kind="laptop",
            make="Dell",
            model="Latitude 5440",
            actor="tech.one",
            media=[MediaSpec("sata-ssd", m, SIZE) for m in media],
            new_stock=new_stock,
        )
        return d.id or 0


def move(ctx: AppContext, device_id: int, event: Event, **kw: object) -> None:
    witness = kw.pop("witness", None)
    with session_scope(ctx.engine) as s:
        change_state(
            s,
            [TransitionRequest(device_id=device_id, event=event, **kw)],  # type: ignore[arg-type]
            actor="tech.one",
            witness=witness,  # type: ignore[arg-type]
            verifier=verifier(ctx),
        )


def certify_all(ctx: AppContext, device_id: int, destination: Destination = Destination.INTERNAL_REUSE) -> None:
    with session_scope(ctx.engine) as s:
        device = s.get(Device, device_id)
        assert device is not None
        for medium in s.exec(select(StorageMedium).where(StorageMedium.device_id == device_id)).all():
            certify_medium(
                s,
                ctx.settings,
                device=device,
                medium=medium,
                result=ok_result(medium.serial),
                operator=Staff("tech.one"),
                validator=Staff("tech.two", title="Validator"),
                destination=destination,
            )


def sanitise(ctx: AppContext, device_id: int, destination: Destination = Destination.INTERNAL_REUSE) -> None:
    move(ctx, device_id, Event.START_SANITISE)
    certify_all(ctx, device_id, destination)
    move(ctx, device_id, Event.SANITISED)


def state_of(ctx: AppContext, serial: str) -> str | None:
    with session_scope(ctx.engine) as s:
        return get_device(s, serial).state


def force_state(session: Session, device_id: int, state: str) -> None:
    """Test seeding only: put a device in a state without a history (product code never does)."""
    device = session.get(Device, device_id)
    assert device is not None
    device.state = state
    session.add(device)
