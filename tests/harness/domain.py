"""Helpers for domain tests: real certificates from a constructed successful erase outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlmodel import Session, select

from factory.intake.service import MediaSpec, receive_device
from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device, StorageMedium
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
    return ctx.site_keys.verifier()


def receive(
    ctx: AppContext,
    serial: str,
    media: Sequence[str | MediaSpec] = ("M1",),
    *,
    new_stock: bool = False,
    asset_tag: str | None = None,
    make: str = "Dell",
    model: str = "Latitude 5440",
    kind: str = "laptop",
) -> int:
    """Receive a device (a laptop unless told); each medium is a serial (a 64 MiB SATA SSD) or a full ``MediaSpec``."""
    with session_scope(ctx.engine) as s:
        d = receive_device(
            s,
            serial=serial,
            kind=kind,
            make=make,
            model=model,
            asset_tag=asset_tag,
            actor="tech.one",
            media=[m if isinstance(m, MediaSpec) else MediaSpec("sata-ssd", m, SIZE) for m in media],
            new_stock=new_stock,
        )
        return d.id or 0


def receive_guest_laptop(ctx: AppContext, serial: str, media: Sequence[tuple[str, str]], size: int) -> int:
    """Receive the QEMU service-environment guest as a laptop; media: (kind, serial) of each disk."""
    specs = [MediaSpec(kind, medium, size) for kind, medium in media]
    return receive(ctx, serial, specs, make="QEMU", model="Standard PC")


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


def purge_result(serial: str | None = None) -> EraseResult:
    """A successful crypto-erase outcome (a purge certificate)."""
    return replace(
        ok_result(serial),
        level_requested=Level.PURGE,
        level_achieved=Level.PURGE,
        method="ata-sanitize-crypto",
        technique=Technique.CRYPTO_ERASE,
        pattern=None,
        bytes_written=0,
    )


def certify_all(
    ctx: AppContext, device_id: int, destination: Destination = Destination.INTERNAL_REUSE, *, purge: bool = False
) -> list[str]:
    """Certify every medium of a device in ``sanitising``; purge: crypto-erase certificates. Returns their ids."""
    ids = []
    with session_scope(ctx.engine) as s:
        device = s.get(Device, device_id)
        assert device is not None
        for medium in s.exec(select(StorageMedium).where(StorageMedium.device_id == device_id)).all():
            cert = certify_medium(
                s,
                ctx.settings,
                device=device,
                medium=medium,
                result=purge_result(medium.serial) if purge else ok_result(medium.serial),
                operator=Staff("tech.one"),
                validator=Staff("tech.two", title="Validator"),
                destination=destination,
            )
            ids.append(cert.id)
    return ids


def sanitise(
    ctx: AppContext, device_id: int, destination: Destination = Destination.INTERNAL_REUSE, *, purge: bool = False
) -> list[str]:
    """Open an erase round, certify every medium, close it; returns the certificate ids."""
    move(ctx, device_id, Event.START_SANITISE)
    ids = certify_all(ctx, device_id, destination, purge=purge)
    move(ctx, device_id, Event.SANITISED)
    return ids


def state_of(ctx: AppContext, serial: str) -> str | None:
    with session_scope(ctx.engine) as s:
        return get_device(s, serial).state


def force_state(session: Session, device_id: int, state: str) -> None:
    """Test seeding only: put a device in a state without a history (product code never does)."""
    device = session.get(Device, device_id)
    assert device is not None
    device.state = state
    session.add(device)
