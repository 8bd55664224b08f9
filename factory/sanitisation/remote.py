"""Erasing a device's media over SSH, in its service environment: the remote path's I/O.

The round itself (open, certify, fail) is :mod:`factory.sanitisation.service`'s; this module
holds what differs on this path: the channel (connected, and the pinned host key checked,
before anything is sent), matching each recorded medium to a remote disk by serial, and erasing
them with the imaging engine over the command channel. The line's switch-port slots use the same
channel (``factory/line/remote_media.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from factory.sanitisation.errors import EraseFailed, MediumNotFound
from hardware_drivers.remote_commands import RemoteCommandError, SshCommandRunner, SshTarget
from imaging.errors import ImagingError
from imaging.probe import Probe
from imaging.remote_erase import RemoteBlockAccess, erase_remote
from imaging.remote_probe import discover_disks
from imaging.result import CommandRecord, EraseResult, Level, VerifyMode

if TYPE_CHECKING:
    from factory.sanitisation.service import EraseRound, RoundOutcome


class RemoteAccess(RemoteBlockAccess, Protocol):
    """A command channel that connects, and closes on leaving its ``with`` block."""

    def connect(self) -> None: ...

    def __enter__(self) -> RemoteAccess: ...

    def __exit__(self, *exc_info: object) -> None: ...


AccessFactory = Callable[[SshTarget], RemoteAccess]


def ssh_access(target: SshTarget) -> RemoteAccess:
    """The production channel: SSH with the pinned host key, returning the engine's records."""
    return SshCommandRunner(target, record_factory=CommandRecord)


def target_label(target: SshTarget) -> str:
    return f"ssh {target.username}@{target.host}:{target.port}, host key {target.host_key.fingerprint}"


def connect_channel(target: SshTarget, factory: AccessFactory) -> tuple[RemoteAccess, list[Probe]]:
    """An open channel to ``target`` and the disks it sees (the channel is closed if this fails).

    :raises RemoteCommandError: unreachable, or another host key: nothing was sent.
    :raises ImagingError: the remote's disks could not be listed.
    """
    access = factory(target)
    try:
        access.connect()
        return access, list(discover_disks(access, access.device_size))
    except (RemoteCommandError, ImagingError):
        access.__exit__(None, None, None)
        raise


def locate_media(disks: Sequence[Probe], media: Sequence[str]) -> dict[str, str]:
    """Each recorded medium's device path on the remote, matched by serial number.

    :raises MediumNotFound: a medium is missing or ambiguous; nothing was erased.
    """
    by_serial: dict[str, list[str]] = {}
    for disk in disks:
        if disk.serial:
            by_serial.setdefault(disk.serial, []).append(disk.path)
    paths: dict[str, str] = {}
    for serial in media:
        found = by_serial.get(serial, [])
        if len(found) != 1:
            where = "not found" if not found else f"ambiguous ({', '.join(found)})"
            known = ", ".join(sorted(by_serial)) or "none"
            raise MediumNotFound(
                serial, f"medium {serial} {where} on the remote (its disks: {known}): nothing was erased"
            )
        paths[serial] = found[0]
    return paths


@dataclass(frozen=True)
class MediumOutcome:
    medium_serial: str
    remote_device: str | None
    result: EraseResult | None
    certificate_id: str | None


@dataclass(frozen=True)
class RemoteSanitiseReport:
    device_serial: str
    state: str
    media: tuple[MediumOutcome, ...]
    failure_reason: str | None

    @property
    def ok(self) -> bool:
        return self.failure_reason is None


class RemoteErase:
    """Erases an open round's media on the remote one by one, remembering what the report shows.

    Stops at the first failure (the round then fails): a later medium is never erased after an
    earlier one failed or was not found.
    """

    def __init__(
        self, access: RemoteAccess, disks: Sequence[Probe], *, level: Level, method: str, verify: VerifyMode, label: str
    ) -> None:
        self.access, self.disks, self.label = access, disks, label
        self.level, self.method, self.verify = level, method, verify
        self.paths: dict[str, str] = {}
        self.results: list[tuple[str, EraseResult]] = []
        self.pending: str | None = None  # the medium being erased (or looked for) when it failed

    def __call__(self, round_: EraseRound) -> list[tuple[str, EraseResult]]:
        try:
            self.paths = locate_media(self.disks, round_.serials)
        except MediumNotFound as exc:
            self.pending = exc.serial
            raise EraseFailed(exc.reason) from exc
        for serial in round_.serials:
            path = self.paths[serial]
            try:
                result = erase_remote(
                    self.access, path, level=self.level, method=self.method, verify=self.verify, remote_label=self.label
                )
            except (ImagingError, RemoteCommandError) as exc:
                self.pending = serial
                raise EraseFailed(f"medium {serial} ({path}): {exc}") from exc
            self.results.append((serial, result))
            if not result.ok:
                raise EraseFailed(f"medium {serial} ({path}): {result.failure_reason}")
        return list(self.results)

    def report(self, outcome: RoundOutcome) -> RemoteSanitiseReport:
        media = [
            MediumOutcome(serial, self.paths.get(serial), result, outcome.certificates.get(serial))
            for serial, result in self.results
        ]
        if self.pending is not None:
            media.append(MediumOutcome(self.pending, self.paths.get(self.pending), None, None))
        return RemoteSanitiseReport(outcome.device_serial, outcome.state, tuple(media), outcome.failure_reason)
