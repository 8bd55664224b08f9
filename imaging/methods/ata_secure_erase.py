"""ATA SECURITY ERASE UNIT (enhanced or normal) through hdparm.

NIST SP 800-88 Rev. 1: enhanced erase on a hard disk is Purge; on flash, and the normal erase, Clear.
Sequence: set a temporary user password, erase, re-read the security state. A successful erase
leaves security disabled; anything else keeps the password, which is recorded and then removed
with SECURITY DISABLE if the drive allows.
"""

from __future__ import annotations

import secrets

from imaging.ata_info import AtaParseError, AtaSecurity, parse_identify, rejection_in
from imaging.errors import EraseFailure, FirmwareRejected
from imaging.methods.ata_sanitize import ata_precheck
from imaging.methods.base import FirmwareContext, FirmwareExpectation, FirmwareMethod, Support, tail
from imaging.probe import Probe
from imaging.result import Level, Technique

COMMAND_TIMEOUT = 60.0
MIN_ERASE_TIMEOUT = 3600.0
LOWER_BOUND_FACTOR = 4
# hdparm waits for SECURITY ERASE UNIT itself (hdparm.c get_erase_timeout_secs, 9.31 to 9.65): the
# longer of the drive's estimate + 60 min (+ 90 min when it saturated) and 1 s per 30 MiB + 30 min.
# Killing hdparm before that leaves the drive erasing with our password set, so we wait longer.
HDPARM_RATE = 30 * 1024 * 1024
HDPARM_PAD = 1800.0
HDPARM_MARGIN = 600.0


def temporary_password() -> str:
    return "df" + secrets.token_hex(8)


def capacity_estimate(probe: Probe) -> float:
    """hdparm's fallback erase time when the drive's is small or missing: 1 s per 30 MiB + 30 min."""
    return probe.size_bytes // HDPARM_RATE + HDPARM_PAD


class AtaSecureErase(FirmwareMethod):
    choice = "ata-secure-erase"
    technique = Technique.BLOCK_ERASE

    def __init__(self, enhanced: bool) -> None:
        self.enhanced = enhanced
        self.name = "ata-secure-erase-enhanced" if enhanced else "ata-secure-erase-normal"

    def supports(self, probe: Probe) -> Support:
        if (refusal := ata_precheck(probe)) is not None:
            return refusal
        assert probe.ata is not None
        sec = probe.ata.security
        if sec is None or not sec.supported:
            return Support.no("drive lacks the Security feature set")
        if sec.frozen:
            return Support.no("security is frozen (a suspend/resume or hot-plug may unfreeze it)")
        if sec.enabled:
            return Support.no("security is already enabled with a password this tool does not know")
        if sec.count_expired:
            return Support.no("security attempt count expired: power-cycle the drive")
        if self.enhanced and not sec.enhanced_erase_supported:
            return Support.no("drive does not support enhanced security erase")
        if self.enhanced and not probe.solid_state:
            return Support.yes(Level.PURGE)
        return Support.yes(Level.CLEAR)

    def expectation(self, probe: Probe) -> FirmwareExpectation:
        if self.enhanced:
            return FirmwareExpectation(f"vendor ({self.name}): zeros or changed", None)
        return FirmwareExpectation("zeros", "zeros")  # normal erase writes binary zeros

    def _timeout(self, probe: Probe) -> float:
        sec = probe.ata.security if probe.ata else None
        minutes = (sec.enhanced_erase_minutes if self.enhanced else sec.erase_minutes) if sec else None
        floor = sec is not None and sec.erase_time_lower_bound
        # "more than N min": N is only a floor, so allow more headroom than for a real estimate.
        factor = LOWER_BOUND_FACTOR if floor else 2
        hdparm_own = max(60.0 * (minutes + (90 if floor else 60)) if minutes else 0.0, capacity_estimate(probe))
        return max(MIN_ERASE_TIMEOUT, factor * 60.0 * (minutes or 0), hdparm_own + HDPARM_MARGIN)

    def _security(self, probe: Probe, ctx: FirmwareContext) -> AtaSecurity | None:
        record = ctx.run(["hdparm", "-I", probe.path], COMMAND_TIMEOUT)
        try:
            return parse_identify(record.stdout).security
        except AtaParseError:
            return None

    def execute(self, probe: Probe, ctx: FirmwareContext) -> tuple[str, ...]:
        dev = probe.path
        password = temporary_password()
        set_pass = ctx.run(["hdparm", "--user-master", "u", "--security-set-pass", password, dev], COMMAND_TIMEOUT)
        after_set = self._security(probe, ctx)
        if after_set is None:
            # Identify no longer shows a Security section: whether a password is now set is unknown.
            line = rejection_in(set_pass.stdout, set_pass.stderr) or "security state unreadable afterwards"
            raise EraseFailure(f"drive rejected SECURITY SET PASSWORD: {line}")
        if not after_set.enabled:
            line = rejection_in(set_pass.stdout, set_pass.stderr) or "security not enabled afterwards"
            raise FirmwareRejected(f"drive rejected SECURITY SET PASSWORD: {line}")
        erase_flag = "--security-erase-enhanced" if self.enhanced else "--security-erase"
        erase_error: str | None = None
        try:
            erase = ctx.run(["hdparm", "--user-master", "u", erase_flag, password, dev], self._timeout(probe))
            erase_error = rejection_in(erase.stdout, erase.stderr)
            if erase_error is None and erase.returncode != 0:
                erase_error = tail(erase)
        finally:
            after = self._security(probe, ctx)
            still_set = after is None or after.enabled
            if still_set:
                # Interrupted or rejected erase: the password stays; record it and try to remove it.
                self._fail_with_password(probe, ctx, password, erase_error)
        if erase_error is not None:
            # Security got disabled although hdparm reported an error: the outcome is unknown.
            raise EraseFailure(f"security erase reported an error, outcome unknown: {erase_error}")
        ctx.progress(1.0)
        return (f"{erase_flag}: security disabled afterwards, as a completed erase leaves it",)

    def _fail_with_password(self, probe: Probe, ctx: FirmwareContext, password: str, erase_error: str | None) -> None:
        disable = ctx.run(["hdparm", "--user-master", "u", "--security-disable", password, probe.path], COMMAND_TIMEOUT)
        final = self._security(probe, ctx)
        removed = final is not None and not final.enabled and rejection_in(disable.stdout, disable.stderr) is None
        residual = (
            f"ATA user password {password!r} was set for the erase; "
            + ("it was removed with SECURITY DISABLE" if removed else "removing it FAILED: the drive keeps it"),
        )
        why = erase_error or "security still enabled after the erase command"
        raise EraseFailure(f"security erase did not complete: {why}", residual=residual)
