"""Sanitising a tablet by its platform's reset, through the one erase-round service.

Evidence at every stage, in the custody record and on the certificate:

* before (the ``start_sanitise`` entry): the identity the platform's tools read (serial, UDID,
  model, OS build), encryption, Activation Lock / FRP, supervision, device owner;
* during (every tool call and service exchange on the certificate's commands; on the closing
  entry): the wipe command's id, the service's acknowledgement and status, its audit record;
* after (the closing entry and the certificate's verification): the tablet confirmed reset,
  identity unchanged, back in its setup state; a lock left on is recorded as a redistribution
  blocker (the lifecycle refuses ``redistribute``, destruction stays open).

A failed, unacknowledged or timed-out wipe, or a tablet that was not encrypted, fails the round
with the reason: no certificate, and the device goes to ``sanitise_failed`` (re-sanitise or destroy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import select

from factory.intake.service import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.guards import REDISTRIBUTION_BLOCKERS
from factory.kernel.models.device import StorageMedium
from factory.sanitisation.errors import EraseFailed
from factory.sanitisation.service import EraseRound, Results, RoundOrigin, RoundOutcome, Signatories, Staff, run_round
from factory.tablets.bench import TabletBench, load_bench, missing_tools
from factory.tablets.errors import TabletMismatch, TabletNotReady
from imaging.certificate import Destination
from imaging.errors import PlanError
from imaging.result import Level, Technique
from imaging.tablets.failure import from_plan
from imaging.tablets.identity import TabletProbe
from imaging.tablets.methods import ResetContext
from imaging.tablets.reset import Reprobe, ResetReport, run_reset


@dataclass(frozen=True)
class TabletRequest:
    """One tablet to sanitise: what the tools read of it, and how to reach it."""

    device_serial: str
    probe: TabletProbe
    reset: ResetContext
    actor: str
    location: str | None = None
    level: Level = Level.CLEAR
    destination: Destination = Destination.INTERNAL_REUSE
    reprobe: Reprobe | None = None
    origin_evidence: Mapping[str, Any] = field(default_factory=dict)  # e.g. the line's job and slot


def sanitise_tablet(ctx: AppContext, request: TabletRequest) -> RoundOutcome:
    """One erase round for the tablet's built-in storage, by platform reset.

    :raises TabletNotReady: the tools could not identify the tablet (nothing opened).
    :raises TabletMismatch: the tablet read is not ``request.device_serial`` (nothing opened).
    :raises factory.kernel.errors.FactoryError: the lifecycle's own refusals to start a sanitise.
    """
    probe = request.probe
    if not probe.identified:
        raise TabletNotReady(probe.problem or "not identified", probe.action)
    _check_identity(ctx, request.device_serial, probe)
    evidence = {**request.origin_evidence, "tablet": probe.evidence()}
    origin = RoundOrigin(request.actor, ctx.site_keys.verifier(), location=request.location, evidence=evidence)
    signatories = Signatories(
        Staff(request.actor, title="Bench technician"),
        Staff(request.actor, title="Automated validation (platform reset confirmed)"),
        request.destination,
    )
    erase = _TabletErase(request)
    return run_round(ctx, request.device_serial, origin, signatories, erase, closing_evidence=erase.closing)


def _check_identity(ctx: AppContext, device_serial: str, probe: TabletProbe) -> None:
    with session_scope(ctx.engine) as s:
        device = get_device(s, device_serial)
        media = s.exec(select(StorageMedium.serial).where(StorageMedium.device_id == device.id)).all()
    known = {device.serial, *media}
    read = {probe.serial, probe.udid} - {None}
    if not known & read:
        raise TabletMismatch(
            f"the tablet on the bench reads as {', '.join(sorted(map(str, read)))}: not device {device_serial}"
        )


class _TabletErase:
    """The round's erase step: the reset of the one built-in medium, and what it found out."""

    def __init__(self, request: TabletRequest) -> None:
        self.request = request
        self.found: dict[str, Any] = {}

    def closing(self) -> Mapping[str, Any]:
        return self.found

    def __call__(self, round_: EraseRound) -> Results:
        probe = self.request.probe
        if len(round_.media) != 1:
            raise EraseFailed(
                f"a tablet is sanitised as one built-in medium; {len(round_.media)} are recorded "
                f"({', '.join(round_.serials)}): remove any card and correct the record"
            )
        try:
            report = run_reset(probe, self.request.reset, level=self.request.level, reprobe=self.request.reprobe)
        except PlanError as exc:  # nothing sent: the record says why, and what to do next
            self.found.update(method=None, failure=from_plan(probe, exc).evidence())
            raise EraseFailed(str(exc)) from exc
        self.found.update(reset_evidence(probe, report))
        result = report.result
        if not result.ok:
            raise EraseFailed(result.failure_reason or "the reset did not complete")
        if result.technique is Technique.CRYPTO_ERASE and probe.encrypted is not True:
            # Belt and braces: the methods refuse this already; a crypto erase of clear data is no erase.
            raise EraseFailed(f"no crypto-erase certificate: the tablet was not encrypted ({probe.encryption})")
        return [(round_.serials[0], result)]


def closing_record(erased: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The ``sanitised`` entry's evidence from each erased medium's (its path there, its evidence).

    One medium (every iPad and Android tablet, most Windows tablets): its evidence as it is. Several
    (a Windows tablet with more than one disk): the last one's keys, so a reader of a one-medium
    record still finds them, every medium's evidence under ``media``, and the redistribution
    blockers of all of them, so no medium's evidence is left out of the custody record.
    """
    if len(erased) == 1:
        return erased[0][1]
    record: dict[str, Any] = {**erased[-1][1], "media": [{"path": path, **found} for path, found in erased]}
    blockers = list(dict.fromkeys(b for _, found in erased for b in found.get(REDISTRIBUTION_BLOCKERS, ())))
    if blockers:
        record[REDISTRIBUTION_BLOCKERS] = blockers
    return record


def reset_evidence(probe: TabletProbe, report: ResetReport) -> dict[str, Any]:
    """During and after, as the custody record keeps them (the raw exchanges are on the certificate)."""
    outcome = report.outcome
    found: dict[str, Any] = {"method": report.result.method}
    if outcome is not None:
        command, audit = outcome.command, outcome.audit
        found["wipe"] = {
            "path": outcome.path,
            "service": command.service if command else None,
            "command_id": command.command_id if command else None,
            "sent_at": command.sent_at if command else None,
            "acknowledgement": outcome.acknowledgement,
            "audit": {"state": audit.state, "initiated_by": audit.initiated_by, "requested_at": audit.requested_at}
            if audit
            else None,
        }
        found["after"] = [{"check": c.name, "passed": c.passed, "detail": c.detail} for c in report.checks]
        if report.after is not None:  # the tablet's own word after its reset, through the command seam
            found["read_back"] = report.after.read_back_evidence()
        read_back_lock = report.after.lock if report.after is not None else None
        blockers = list(
            dict.fromkeys(lock for lock in (probe.lock, audit.device_lock if audit else None, read_back_lock) if lock)
        )
        if blockers:
            found[REDISTRIBUTION_BLOCKERS] = blockers
    if report.failure is not None:  # typed: stage, kind, reason, last exchange, the next action
        found["failure"] = report.failure.evidence()
    return found


__all__ = [
    "TabletBench",
    "TabletRequest",
    "load_bench",
    "missing_tools",
    "reset_evidence",
    "sanitise_tablet",
]
