"""ATA SANITIZE (CRYPTO SCRAMBLE, BLOCK ERASE) through hdparm: NIST Purge."""

from __future__ import annotations

import time

from imaging.ata_info import AtaParseError, AtaSanitizeState, parse_sanitize_status, rejection_in
from imaging.errors import EraseFailure
from imaging.methods.base import FirmwareContext, FirmwareExpectation, FirmwareMethod, Support, sanitize_technique, tail
from imaging.probe import Probe
from imaging.result import Level

COMMAND_TIMEOUT = 60.0
ATA_LABELS = ("ATA", "ATA identify data", "hdparm -I")
FLAGS = {"crypto": "--sanitize-crypto-scramble", "block": "--sanitize-block-erase"}


def ata_precheck(probe: Probe) -> Support | None:
    if (refusal := Support.command_set_refusal(probe, "sata", probe.ata, ATA_LABELS)) is not None:
        return refusal
    assert probe.ata is not None
    if probe.ata.security is not None and probe.ata.security.locked:
        return Support.no("drive is security-locked")
    return None


class AtaSanitize(FirmwareMethod):
    choice = "ata-sanitize"

    def __init__(self, action: str) -> None:
        self.technique = sanitize_technique(action, FLAGS)
        self.action = action
        self.name = "ata-sanitize-crypto-scramble" if action == "crypto" else "ata-sanitize-block-erase"

    def supports(self, probe: Probe) -> Support:
        if (refusal := ata_precheck(probe)) is not None:
            return refusal
        ata = probe.ata
        assert ata is not None
        if not ata.sanitize_supported:
            return Support.no("drive lacks the SANITIZE feature set")
        capable = ata.sanitize_crypto_scramble if self.action == "crypto" else ata.sanitize_block_erase
        if not capable:
            return Support.no(f"drive lacks SANITIZE {self.action.upper()} commands")
        return Support.yes(Level.PURGE)

    def expectation(self, probe: Probe) -> FirmwareExpectation:
        return FirmwareExpectation(f"vendor ({self.name}): zeros or changed", None)

    def execute(self, probe: Probe, ctx: FirmwareContext) -> tuple[str, ...]:
        dev = probe.path
        start = ctx.run(["hdparm", "--yes-i-know-what-i-am-doing", FLAGS[self.action], dev], COMMAND_TIMEOUT)
        if line := rejection_in(start.stdout, start.stderr):
            raise EraseFailure(f"drive rejected the sanitize: {line}")
        if start.returncode != 0 or "Operation started in background" not in start.stdout:
            raise EraseFailure(f"sanitize did not start: {tail(start)}")
        deadline = time.monotonic() + ctx.poll_timeout
        while True:
            record = ctx.run(["hdparm", "--sanitize-status", dev], COMMAND_TIMEOUT)
            try:
                state = parse_sanitize_status(record.stdout + "\n" + record.stderr)
            except AtaParseError as exc:
                raise EraseFailure(f"sanitize status unparsable, outcome unknown: {exc}") from exc
            if state is AtaSanitizeState.IDLE_OK:
                ctx.progress(1.0)
                return ("hdparm --sanitize-status: completed without error",)
            if state is AtaSanitizeState.FAILED:
                raise EraseFailure(f"drive reports the sanitize failed: {tail(record)}")
            if state is AtaSanitizeState.FROZEN:
                raise EraseFailure("sanitize is frozen (SD1): no erase happened")
            if state is AtaSanitizeState.IDLE:
                raise EraseFailure("sanitize ended without the drive reporting success: outcome unknown")
            if time.monotonic() > deadline:
                raise EraseFailure(
                    f"sanitize still in progress after {ctx.poll_timeout:g}s: outcome unknown",
                    residual=("ATA sanitize still running",),
                )
            ctx.wait("the ATA sanitize runs")
