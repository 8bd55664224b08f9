"""Sanitise a device booted into the service environment, over SSH, into signed certificates.

Sequence: connect (the pinned host key must match before anything is sent), find each recorded
medium among the remote's disks by serial, open the erase round (``start_sanitise``), erase every
medium with the imaging engine over the command channel, certify each verified result, and close
the round with ``sanitised``. Any failure after the round opened closes it with ``fail`` and the
reason; no certificate is issued for a round that fails.

A device that cannot be reached, or presents another host key, is refused before its state
changes: nothing was sent to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlmodel import select

from factory.intake.service import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import FactoryError, GuardRefused
from factory.kernel.lifecycle.states import Event, State
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import StorageMedium
from factory.sanitisation.service import Staff, certify_medium
from hardware_drivers.remote_commands import RemoteCommandError, SshCommandRunner, SshTarget
from imaging.certificate import Destination
from imaging.errors import ImagingError
from imaging.probe import Probe
from imaging.remote import RemoteBlockAccess, erase_remote
from imaging.remote_probe import discover_disks
from imaging.result import CommandRecord, EraseResult, Level, VerifyMode


class RemoteUnavailable(FactoryError):
    """The service environment could not be reached or did not prove its identity; nothing was sent."""

    status_code = 409
    code = "remote_unavailable"


class RemoteAccess(RemoteBlockAccess, Protocol):
    """A command channel that connects, and closes on leaving its ``with`` block."""

    def connect(self) -> None: ...

    def __enter__(self) -> RemoteAccess: ...

    def __exit__(self, *exc_info: object) -> None: ...


AccessFactory = Callable[[SshTarget], RemoteAccess]


def ssh_access(target: SshTarget) -> RemoteAccess:
    """The production channel: SSH with the pinned host key, returning the engine's records."""
    return SshCommandRunner(target, record_factory=CommandRecord)


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


class MediumNotFound(Exception):
    """A recorded medium is not (or not uniquely) among the remote's disks."""

    def __init__(self, serial: str, reason: str) -> None:
        super().__init__(reason)
        self.serial, self.reason = serial, reason


def locate_media(disks: Sequence[Probe], media: Sequence[str]) -> dict[str, str]:
    """Each recorded medium's device path on the remote, matched by serial number."""
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


def target_label(target: SshTarget) -> str:
    return f"ssh {target.username}@{target.host}:{target.port}, host key {target.host_key.fingerprint}"


def sanitise_remote(
    ctx: AppContext,
    device_serial: str,
    target: SshTarget,
    *,
    actor: str,
    level: Level,
    method: str = "auto",
    verify: VerifyMode = VerifyMode.SAMPLE,
    destination: Destination = Destination.INTERNAL_REUSE,
    operator: Staff | None = None,
    validator: Staff | None = None,
    access_factory: AccessFactory = ssh_access,
) -> RemoteSanitiseReport:
    """Erase and certify every recorded medium of ``device_serial`` through ``target``.

    Raises ``RemoteUnavailable`` (state unchanged) when the remote cannot be reached or its host
    key does not match, and the lifecycle's own errors when the device may not start a sanitise.
    Everything after the erase round opened ends in ``sanitised`` or ``fail``, never in between.
    """
    label = target_label(target)
    operator = operator or Staff(actor, title="Bench technician")
    validator = validator or Staff(actor, title="Automated validation (read-back verification)")
    access = access_factory(target)
    try:
        access.connect()
        disks = discover_disks(access, access.device_size)
    except (RemoteCommandError, ImagingError) as exc:
        access.__exit__(None, None, None)
        raise RemoteUnavailable(f"device {device_serial}: {exc}") from exc
    with access:
        media, round_seq = _open_round(ctx, device_serial, actor, label)
        try:
            paths = locate_media(disks, media)
        except MediumNotFound as exc:
            return _fail(ctx, device_serial, actor, exc.reason, label, [MediumOutcome(exc.serial, None, None, None)])
        results: list[tuple[str, EraseResult]] = []
        for serial in media:
            try:
                result = erase_remote(
                    access, paths[serial], level=level, method=method, verify=verify, remote_label=label
                )
            except (ImagingError, RemoteCommandError) as exc:
                reason = f"medium {serial} ({paths[serial]}): {exc}"
                return _fail(ctx, device_serial, actor, reason, label, _outcomes(results, paths, serial))
            results.append((serial, result))
            if not result.ok:
                reason = f"medium {serial} ({paths[serial]}): {result.failure_reason}"
                return _fail(ctx, device_serial, actor, reason, label, _outcomes(results, paths))
    return _certify(ctx, device_serial, round_seq, results, paths, actor, label, operator, validator, destination)


def _outcomes(
    results: list[tuple[str, EraseResult]], paths: dict[str, str], pending: str | None = None
) -> list[MediumOutcome]:
    done = [MediumOutcome(serial, paths.get(serial), result, None) for serial, result in results]
    if pending is not None:
        done.append(MediumOutcome(pending, paths.get(pending), None, None))
    return done


def _transition(ctx: AppContext, device_id: int, event: Event, actor: str, evidence: dict[str, object]) -> None:
    with session_scope(ctx.engine) as s:
        change_state(
            s,
            [TransitionRequest(device_id=device_id, event=event, evidence=evidence)],
            actor=actor,
            verifier=ctx.site_keys.verifier(),
        )


def _open_round(ctx: AppContext, device_serial: str, actor: str, label: str) -> tuple[list[str], int]:
    """The recorded media serials and the sequence of the ``start_sanitise`` entry."""
    with session_scope(ctx.engine) as s:
        device = get_device(s, device_serial)
        media = [m.serial for m in s.exec(select(StorageMedium).where(StorageMedium.device_id == device.id)).all()]
        if not media:
            raise GuardRefused(f"device {device_serial} has no recorded storage media to sanitise")
        device_id = device.id or 0
    _transition(ctx, device_id, Event.START_SANITISE, actor, {"media": media, "remote": label})
    with session_scope(ctx.engine) as s:
        seq = get_device(s, device_serial).erase_round_seq
    assert seq is not None
    return media, seq


def _fail(
    ctx: AppContext, device_serial: str, actor: str, reason: str, label: str, media: list[MediumOutcome]
) -> RemoteSanitiseReport:
    with session_scope(ctx.engine) as s:
        device = get_device(s, device_serial)
        device_id, state = device.id or 0, device.state
    if state != State.SANITISING:  # someone else closed the round meanwhile: leave it as they did
        return RemoteSanitiseReport(device_serial, state, tuple(media), reason)
    _transition(ctx, device_id, Event.FAIL, actor, {"reason": reason, "remote": label})
    return RemoteSanitiseReport(device_serial, State.SANITISE_FAILED.value, tuple(media), reason)


def _certify(
    ctx: AppContext,
    device_serial: str,
    round_seq: int,
    results: list[tuple[str, EraseResult]],
    paths: dict[str, str],
    actor: str,
    label: str,
    operator: Staff,
    validator: Staff,
    destination: Destination,
) -> RemoteSanitiseReport:
    outcomes: list[MediumOutcome] = []
    try:
        with session_scope(ctx.engine) as s:
            device = get_device(s, device_serial)
            if device.state != State.SANITISING or device.erase_round_seq != round_seq:
                raise GuardRefused(f"device {device_serial} left erase round {round_seq}: no certificate issued")
            for serial, result in results:
                medium = s.exec(
                    select(StorageMedium).where(StorageMedium.device_id == device.id, StorageMedium.serial == serial)
                ).one()
                cert = certify_medium(
                    s,
                    ctx.settings,
                    device=device,
                    medium=medium,
                    result=result,
                    operator=operator,
                    validator=validator,
                    destination=destination,
                )
                outcomes.append(MediumOutcome(serial, paths[serial], result, cert.id))
            change_state(
                s,
                [
                    TransitionRequest(
                        device_id=device.id or 0,
                        event=Event.SANITISED,
                        evidence={"certificates": [o.certificate_id for o in outcomes], "remote": label},
                    )
                ],
                actor=actor,
                verifier=ctx.site_keys.verifier(),
            )
    except FactoryError as exc:
        # The session rolled back: no certificate of this round was stored.
        return _fail(
            ctx, device_serial, actor, f"certification refused: {exc.reason}", label, _outcomes(results, paths)
        )
    return RemoteSanitiseReport(device_serial, State.SANITISED.value, tuple(outcomes), None)
