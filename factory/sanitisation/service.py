"""The erase round: the one place a round is opened, certified and closed, or failed.

Every path runs the same round (the line's dock and switch-port slots, remote over SSH, and
the tablets' platform reset): ``open_round`` records ``start_sanitise`` and returns an :class:`EraseRound`
handle; the media are erased outside any transaction; ``certify_round`` re-checks that the
device is still in that round, stores one certificate per medium and records ``sanitised``, all
in the caller's one transaction; ``fail_round`` closes it with ``fail`` and the reason.

Crash safety comes from those boundaries, and it is the same for every path:

* a certificate exists only for a round that completed: the certificates and ``sanitised`` commit
  together, after the round re-check (and, on the line, the caller's ownership re-check);
* a failed or unknown outcome never yields a certificate (imaging refuses to build one, and a
  refused certification rolls back every certificate of the round);
* a crash between open and close leaves the device ``sanitising`` without certificates, and
  whoever finds it fails the round with the reason (a restart opens a new round).

Paths that own no transaction of their own (remote, tablets) call :func:`run_round`, the one flow
with the one failure path; the line calls the three steps inside its own leased transactions.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from factory.intake.service import get_device
from factory.kernel.config import Settings
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.db.shared_statements import warmed
from factory.kernel.errors import FactoryError, GuardRefused
from factory.kernel.ledger.append import RowBatch, SeqStamp
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event, State
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device, StorageMedium
from factory.sanitisation.certificates import (
    Signatories,
    Staff,
    job_signatories,
    person,
    signed_in,
)
from factory.sanitisation.certify import certify_medium, record_certificate
from factory.sanitisation.destruction_certificates import (
    Witnessed,
    destruction_certificates_of,
    issue_destruction_certificates,
)
from factory.sanitisation.errors import EraseFailed, RemoteUnavailable, RoundLeft
from factory.sanitisation.local_wipe import run_wipe, write_certificate
from factory.sanitisation.remote import (
    AccessFactory,
    MediumOutcome,
    RemoteAccess,
    RemoteErase,
    RemoteSanitiseReport,
    connect_channel,
    locate_media,
    ssh_access,
    target_label,
)
from hardware_drivers.remote_commands import RemoteCommandError, SshTarget
from imaging.certificate import Destination
from imaging.errors import ImagingError
from imaging.result import EraseResult, Level, VerifyMode

# Erased media of a round: (medium serial, the engine's result), in the round's media order.
Results = Sequence[tuple[str, EraseResult]]
Evidence = Mapping[str, Any]


class RoundMedium(NamedTuple):
    id: int
    serial: str


@dataclass(frozen=True)
class EraseRound:
    """An open erase round: every later step of the round is checked against it."""

    device_id: int
    device_serial: str
    seq: int  # the ``start_sanitise`` entry that opened it; certificates name it
    media: tuple[RoundMedium, ...]

    @property
    def serials(self) -> list[str]:
        return [m.serial for m in self.media]


@dataclass(frozen=True)
class RoundOrigin:
    """Who runs a round and what each of its custody entries records about where (path-specific)."""

    actor: str
    verifier: CertificateVerifier | None
    location: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)  # e.g. job and slot, or the remote


@dataclass(frozen=True)
class ClosedRound:
    certificate_ids: tuple[str, ...]
    seq: int  # the ``sanitised`` entry


def _record(
    session: Session,
    device_id: int,
    event: Event,
    origin: RoundOrigin,
    stamps: Sequence[SeqStamp],
    rows: Sequence[RowBatch] = (),
    **evidence: Any,
) -> int:
    entries = change_state(
        session,
        [
            TransitionRequest(
                device_id=device_id,
                event=event,
                location=origin.location,
                evidence={**origin.evidence, **evidence},
                stamps=tuple(stamps),
                rows=tuple(rows),
            )
        ],
        actor=origin.actor,
        verifier=origin.verifier,
    )
    return entries[0].seq


def open_round(
    session: Session,
    device: Device,
    media: Sequence[StorageMedium],
    origin: RoundOrigin,
    stamps: Sequence[SeqStamp] = (),
    *,
    rows: Sequence[RowBatch] = (),
    **evidence: Any,
) -> EraseRound:
    """Record ``start_sanitise`` for ``media`` of ``device`` in the caller's transaction
    (``stamps``: rows that record its seq, such as the line's step row, written with it; ``rows``:
    other rows written with it, such as the job's log lines).

    :raises factory.kernel.errors.InvalidTransition: the device may not start a sanitise now.
    """
    seq = _record(
        session, device.id or 0, Event.START_SANITISE, origin, stamps, rows, media=[m.serial for m in media], **evidence
    )
    return EraseRound(device.id or 0, device.serial, seq, tuple(RoundMedium(m.id or 0, m.serial) for m in media))


def certify_round(
    session: Session,
    settings: Settings,
    device: Device,
    round_: EraseRound,
    results: Results,
    origin: RoundOrigin,
    signatories: Signatories,
    *,
    evidence: Mapping[str, Any] | None = None,
    stamps: Sequence[SeqStamp] = (),
    rows: Sequence[RowBatch] = (),
) -> ClosedRound:
    """Store a certificate per erased medium and record ``sanitised``, in the caller's transaction.

    ``evidence``: on the ``sanitised`` entry too. ``stamps``: the rows that record its seq (the line's
    step row), written with it: nothing follows the ledger append while its lock is held. ``rows``:
    other rows written with it (the job's log lines).

    :raises RoundLeft: the device is no longer in ``round_``; nothing was stored.
    :raises factory.kernel.errors.GuardRefused: a result is not certifiable, or the lifecycle
        guard refuses ``sanitised``; the caller's transaction must roll back.
    """
    if device.id != round_.device_id or device.state != State.SANITISING or device.erase_round_seq != round_.seq:
        raise RoundLeft(f"device {device.serial} left erase round {round_.seq}: no certificate issued")
    media, opened = _round_media_and_opening(session, round_)
    cert_ids: list[str] = []
    digests: dict[str, str] = {}
    for serial, result in results:
        medium = media[serial]
        cert = certify_medium(
            session,
            settings,
            device=device,
            medium=medium,
            opened=opened,
            result=result,
            operator=signatories.operator,
            validator=signatories.validator,
            destination=signatories.destination,
            data_backed_up=signatories.data_backed_up,
            agent=signatories.agent,
        )
        cert_ids.append(cert.id)
        digests[cert.id] = cert.digest_sha256
    # The digests as ``bind_certificates`` would read back the rows just written, without the query.
    named = {"certificates": cert_ids, "certificate_digests": digests}
    seq = _record(session, round_.device_id, Event.SANITISED, origin, stamps, rows, **named, **(evidence or {}))
    return ClosedRound(tuple(cert_ids), seq)


def _round_media_and_opening(
    session: Session, round_: EraseRound
) -> tuple[dict[str, StorageMedium], CustodyEntry | None]:
    """The round's media by serial and the entry that opened it, in one query (not two per medium)."""
    if not round_.media:
        return {}, None
    params = {"round_seq": round_.seq, "medium_ids": [m.id for m in round_.media]}
    rows = session.exec(_ROUND_MEDIA_AND_OPENING, params=params).all()  # type: ignore[call-overload]
    media = {medium.serial: medium for medium, _ in rows}
    missing = [m.serial for m in round_.media if m.serial not in media]
    if not rows or missing:  # media are never deleted, nor entries: a bug, not a refusal
        raise RuntimeError(f"erase round {round_.seq}: its opening entry or media {missing} are missing")
    return media, rows[0][1]


# Built once (every certification reads it): a fresh statement costs more CPU than its round trip.
_ROUND_MEDIA_AND_OPENING = warmed(
    select(StorageMedium, CustodyEntry)
    .join(CustodyEntry, col(CustodyEntry.seq) == bindparam("round_seq"))
    .where(col(StorageMedium.id).in_(bindparam("medium_ids", expanding=True)))
)


def fail_round(
    session: Session, device: Device, round_: EraseRound, reason: str, origin: RoundOrigin, **evidence: Any
) -> str:
    """Close ``round_`` with ``fail`` and ``reason``; return the device's state afterwards.

    A round someone else already closed (or replaced with a new one) is left as they did.
    """
    if device.state != State.SANITISING or device.erase_round_seq != round_.seq:
        return device.state
    _record(session, round_.device_id, Event.FAIL, origin, (), reason=reason, **evidence)
    return State.SANITISE_FAILED.value


# ------------------------------------------------------------------ the flow for paths without a lease

# Erases every medium of an open round outside any transaction; raises ``EraseFailed`` with the reason.
EraseMedia = Callable[[EraseRound], Results]


@dataclass(frozen=True)
class RoundOutcome:
    device_serial: str
    state: str
    certificates: dict[str, str]  # medium serial -> certificate id (empty unless sanitised)
    failure_reason: str | None

    @property
    def ok(self) -> bool:
        return self.failure_reason is None


def run_round(
    ctx: AppContext,
    device_serial: str,
    origin: RoundOrigin,
    signatories: Signatories,
    erase: EraseMedia,
    *,
    closing_evidence: Callable[[], Mapping[str, Any]] | None = None,
) -> RoundOutcome:
    """Open a round on every recorded medium, ``erase`` them, then certify and close it, or fail it.

    Each step is its own transaction; anything that goes wrong after the round opened ends it in
    ``fail`` with the reason, never in between. ``closing_evidence`` (what the erase found out) is on the last entry.

    :raises GuardRefused: the device has no recorded media (nothing changed).
    :raises factory.kernel.errors.InvalidTransition: the device may not start a sanitise now.
    """
    with session_scope(ctx.engine) as s:
        device = get_device(s, device_serial)
        media = s.exec(select(StorageMedium).where(StorageMedium.device_id == device.id)).all()
        if not media:
            raise GuardRefused(f"device {device_serial} has no recorded storage media to sanitise")
        round_ = open_round(s, device, media, origin)
    closing = closing_evidence or dict
    try:
        results = erase(round_)
    except EraseFailed as exc:
        return _abandon(ctx, round_, exc.reason, origin, closing())
    try:
        with session_scope(ctx.engine) as s:
            device = get_device(s, device_serial)
            closed = certify_round(s, ctx.settings, device, round_, results, origin, signatories, evidence=closing())
    except FactoryError as exc:
        # The session rolled back: no certificate of this round was stored.
        return _abandon(ctx, round_, f"certification refused: {exc.reason}", origin, closing())
    certificates = dict(zip([serial for serial, _ in results], closed.certificate_ids, strict=True))
    return RoundOutcome(device_serial, State.SANITISED.value, certificates, None)


def _abandon(ctx: AppContext, round_: EraseRound, reason: str, origin: RoundOrigin, evidence: Evidence) -> RoundOutcome:
    """The one failure path of :func:`run_round`."""
    with session_scope(ctx.engine) as s:
        device = get_device(s, round_.device_serial)
        state = fail_round(s, device, round_, reason, origin, **evidence)
    return RoundOutcome(round_.device_serial, state, {}, reason)


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
    """Erase and certify every recorded medium of ``device_serial`` through ``target`` (one round).

    :raises RemoteUnavailable: the remote cannot be reached or its host key does not match
        (state unchanged, nothing sent).
    :raises factory.kernel.errors.FactoryError: the lifecycle's own errors when the device may not
        start a sanitise. Everything after the round opened ends in ``sanitised`` or ``fail``.
    """
    label = target_label(target)
    signatories = Signatories(
        operator or signed_in(actor, "Bench technician"),
        validator or signed_in(actor, "Validator (approved the remote erase)"),
        destination,
        agent=f"remote erase over SSH from {socket.gethostname()}",
    )
    try:
        access, disks = connect_channel(target, access_factory)
    except (RemoteCommandError, ImagingError) as exc:
        raise RemoteUnavailable(f"device {device_serial}: {exc}") from exc
    erase = RemoteErase(access, disks, level=level, method=method, verify=verify, label=label)
    with access:
        origin = RoundOrigin(actor, ctx.site_keys.verifier(), evidence={"remote": label})
        outcome = run_round(ctx, device_serial, origin, signatories, erase)
    return erase.report(outcome)


__all__ = [
    "AccessFactory",
    "ClosedRound",
    "EraseRound",
    "MediumOutcome",
    "RemoteAccess",
    "RemoteSanitiseReport",
    "RemoteUnavailable",
    "RoundOrigin",
    "RoundOutcome",
    "Signatories",
    "Staff",
    "Witnessed",
    "certify_medium",
    "certify_round",
    "connect_channel",
    "destruction_certificates_of",
    "fail_round",
    "issue_destruction_certificates",
    "job_signatories",
    "locate_media",
    "open_round",
    "person",
    "record_certificate",
    "run_round",
    "run_wipe",
    "sanitise_remote",
    "ssh_access",
    "target_label",
    "write_certificate",
]
