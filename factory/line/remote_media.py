"""The disks of a laptop in a switch-port slot, erased over SSH in its service environment.

A switch-port slot has no block device on the bench host: the laptop, booted into the service
environment, is reached at its recorded endpoint (host key pinned at first contact) with the
site's client key, through the same channel and engine as the sanitisation area's remote path
(``connect_channel``, ``locate_media``, ``imaging.remote_erase.erase_remote``). The round itself is the
sanitisation service's, run by the job runner inside its leased transactions; only the I/O differs.

Everything that can go wrong before the round opens (no key configured, unreachable, another host
key, a recorded medium not among the remote's disks) is a :class:`RemoteMediaError`: the step
fails with that reason and nothing was sent to a disk.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import col, select

from factory.intake.models import ServiceEndpoint
from factory.kernel.db.engine import read_scope
from factory.kernel.models.device import Device, StorageMedium
from factory.line.models import Job, Slot
from factory.sanitisation.errors import MediumNotFound
from factory.sanitisation.service import (
    AccessFactory,
    RemoteAccess,
    connect_channel,
    locate_media,
    ssh_access,
    target_label,
)
from hardware_drivers.remote_commands import RemoteCommandError, SshTarget
from hardware_drivers.ssh import InvalidPin, PinnedHostKey
from imaging.engine import ProgressCallback
from imaging.errors import ImagingError
from imaging.remote_erase import erase_remote
from imaging.result import EraseResult, Level, VerifyMode


class RemoteMediaError(Exception):
    """The laptop's disks cannot be reached or matched; ``reason`` is one line for the board."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RemoteEraseSettings:
    client_key: Path | None = None  # the site file's [service_env] ssh_private_key
    access_factory: AccessFactory = ssh_access
    connect_timeout: float = 15.0


class RemoteMedia:
    """An open channel to one laptop and where each recorded medium is on it."""

    def __init__(self, access: RemoteAccess, label: str, paths: dict[str, str]) -> None:
        self.access = access
        self.label = label
        self.paths = paths

    @classmethod
    def connect(cls, target: SshTarget, media: Sequence[str], factory: AccessFactory) -> RemoteMedia:
        label = target_label(target)
        try:
            access, disks = connect_channel(target, factory)
        except (RemoteCommandError, ImagingError) as exc:
            raise RemoteMediaError(f"service environment not reachable ({label}): {exc}; nothing was erased") from exc
        try:
            paths = locate_media(disks, media)
        except MediumNotFound as exc:
            access.__exit__(None, None, None)
            raise RemoteMediaError(exc.reason) from exc
        return cls(access, label, paths)

    def erase(
        self,
        path: str,
        *,
        level: Level,
        verify: VerifyMode,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> EraseResult:
        """The engine's erase of one remote disk (same result and certificate as a local one)."""
        try:
            return erase_remote(
                self.access, path, level=level, verify=verify, progress=progress, cancel=cancel, remote_label=self.label
            )
        except RemoteCommandError as exc:  # the channel failed before the engine took over
            raise RemoteMediaError(f"{self.label}: {exc}") from exc

    def close(self) -> None:
        self.access.__exit__(None, None, None)


def connect_for_job(engine: Engine, job_id: int, settings: RemoteEraseSettings) -> RemoteMedia | None:
    """Open the channel to the job's laptop if its slot is a switch port (``None`` for a dock slot).

    Reads without a write lock (a dock slot's job pays one small query) and connects outside any
    transaction: a slow or dead laptop must not hold the database. Ownership is re-checked when the
    runner opens the erase round.
    """
    with read_scope(engine) as conn:
        row = conn.execute(
            select(Slot.attached_mac, Device.id, Device.serial)
            .join(Job, col(Job.slot_id) == Slot.id)
            .join(Device, col(Device.id) == Job.device_id)
            .where(Job.id == job_id)
        ).first()
        if row is None or row[0] is None:
            return None
        device_id, serial = row[1], row[2]
        endpoint = conn.execute(
            select(
                ServiceEndpoint.address, ServiceEndpoint.port, ServiceEndpoint.username, ServiceEndpoint.host_key
            ).where(ServiceEndpoint.device_id == device_id)
        ).first()
        media = list(conn.execute(select(StorageMedium.serial).where(StorageMedium.device_id == device_id)).scalars())
    if endpoint is None:
        raise RemoteMediaError(f"device {serial} has no service-environment endpoint recorded")
    if not media:
        raise RemoteMediaError(f"device {serial} has no storage media recorded: record them before it is sanitised")
    if settings.client_key is None:
        raise RemoteMediaError(
            "no SSH client key for the service environment: set [service_env] ssh_private_key in the site file"
        )
    address, port, username, host_key = endpoint
    try:
        pin = PinnedHostKey.parse(host_key)
    except InvalidPin as exc:
        raise RemoteMediaError(f"device {serial}: pinned host key unusable: {exc}") from exc
    target = SshTarget(address, port, username, settings.client_key, pin, connect_timeout=settings.connect_timeout)
    return RemoteMedia.connect(target, media, settings.access_factory)
