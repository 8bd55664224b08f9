"""NVMe Sanitize (SANACT 4 crypto erase, SANACT 2 block erase): NIST Purge.

``--sanact=N`` is numeric on purpose: nvme-cli 1.x parses it as a byte only, 2.x also takes
names (``start-crypto-erase``) but still accepts the number. The command returns once the
controller has started the operation (nvme-cli prints nothing then); completion is polled from the
Sanitize Status log page.
"""

from __future__ import annotations

import re
import time

from imaging.errors import EraseFailure, FirmwareRejected
from imaging.methods.base import FirmwareContext, FirmwareExpectation, FirmwareMethod, Support, sanitize_technique, tail
from imaging.nvme_info import NvmeParseError, SanitizeLog, SanitizeState, parse_sanitize_log
from imaging.probe import Probe
from imaging.result import CommandRecord, Level

SANACT = {"crypto": 4, "block": 2}
START_TIMEOUT = 60.0


def nvme_precheck(probe: Probe) -> Support | None:
    """Shared reasons an NVMe firmware method cannot run (None: it may)."""
    return Support.command_set_refusal(probe, "nvme", probe.nvme, ("NVMe", "NVMe controller data", "nvme id-ctrl"))


# NVMe statuses the controller returns before it executes anything (NVMe base spec, generic status),
# as nvme-cli names them: 2.x (libnvme) "Invalid Command Opcode", 1.x "INVALID_OPCODE", and before
# 1.7 "NVME Admin command error:INVALID_OPCODE(2001)".
NOT_EXECUTED = re.compile(
    r"(NVMe status: ?|NVME Admin command error: ?)"
    r"(Invalid Command Opcode|Invalid Field in Command|INVALID_OPCODE|INVALID_FIELD)\b"
)
# What nvme-cli prints when the sanitize did not succeed: an NVMe status, or "sanitize: <errno text>".
ERROR_LINE = re.compile(r"^(NVMe status:|NVME Admin command error|sanitize: ).*", re.MULTILINE)
# Sanitize Status log estimates (ETCE, ETBE, seconds): FFFFFFFFh, or 0, reports no estimate.
NO_ESTIMATE = (0, 0xFFFFFFFF)
MAX_ESTIMATE_WAIT = 7 * 24 * 3600.0


def refused_outright(record: CommandRecord) -> bool:
    """The controller answered with a status that means the command never ran (a timeout does not)."""
    return record.returncode > 0 and NOT_EXECUTED.search(record.stderr) is not None


def error_despite_exit_zero(record: CommandRecord) -> str | None:
    """An error line nvme-cli printed although it exited 0 (some releases lost the exit status)."""
    match = ERROR_LINE.search(record.stderr)
    return match.group(0).strip() if record.returncode == 0 and match else None


def vendor_or_zeros(probe: Probe, what: str) -> FirmwareExpectation:
    if probe.nvme_reads_zeros:
        return FirmwareExpectation("zeros", "zeros")
    return FirmwareExpectation(f"vendor ({what}): zeros or changed", None)


class NvmeSanitize(FirmwareMethod):
    choice = "nvme-sanitize"

    def __init__(self, action: str) -> None:
        self.technique = sanitize_technique(action, SANACT)
        self.action = action
        self.name = f"nvme-sanitize-{action}"

    def supports(self, probe: Probe) -> Support:
        if (refusal := nvme_precheck(probe)) is not None:
            return refusal
        assert probe.nvme is not None
        capable = probe.nvme.sanitize_crypto if self.action == "crypto" else probe.nvme.sanitize_block
        if not capable:
            return Support.no(f"controller SANICAP {probe.nvme.sanicap:#x} lacks {self.action} erase")
        return Support.yes(Level.PURGE)

    def expectation(self, probe: Probe) -> FirmwareExpectation:
        return vendor_or_zeros(probe, self.name)

    def execute(self, probe: Probe, ctx: FirmwareContext) -> tuple[str, ...]:
        dev = probe.path
        start = ctx.run(["nvme", "sanitize", dev, f"--sanact={SANACT[self.action]}"], START_TIMEOUT)
        if refused_outright(start):
            raise FirmwareRejected(f"nvme sanitize rejected: {tail(start)}")
        if start.returncode != 0:
            raise EraseFailure(f"nvme sanitize rejected: {tail(start)}")
        if (line := error_despite_exit_zero(start)) is not None:
            raise EraseFailure(f"nvme sanitize exited 0 but reported an error, outcome unknown: {line}")
        started = time.monotonic()
        deadline = started + ctx.poll_timeout
        while True:
            record = ctx.run(["nvme", "sanitize-log", dev, "-o", "json"], START_TIMEOUT)
            if record.returncode != 0:
                raise EraseFailure(f"sanitize status unreadable, outcome unknown: {tail(record)}")
            try:
                log = parse_sanitize_log(record.stdout)
            except NvmeParseError as exc:
                raise EraseFailure(f"sanitize status unparsable, outcome unknown: {exc}") from exc
            if log.state.succeeded:
                ctx.progress(1.0)
                return (f"sanitize-log: {log.state.name.lower()}",)
            if log.state is SanitizeState.FAILED:
                raise EraseFailure("drive reports the sanitize failed (SSTAT 3); only a new sanitize is accepted")
            if log.state is SanitizeState.NEVER:
                raise EraseFailure("sanitize-log shows no sanitize has ever completed: the command did not run")
            ctx.progress(log.progress_fraction)
            deadline = max(deadline, started + self._estimate_wait(log))
            if time.monotonic() > deadline:
                raise EraseFailure(
                    f"sanitize still in progress after {ctx.poll_timeout:g}s: outcome unknown",
                    residual=("NVMe sanitize still running; it resumes after power loss",),
                )
            ctx.wait("the NVMe sanitize runs")

    def _estimate_wait(self, log: SanitizeLog) -> float:
        """How long the drive itself expects this action to take, doubled (capped at a week)."""
        estimate = log.crypto_erase_seconds if self.action == "crypto" else log.block_erase_seconds
        if estimate is None or estimate in NO_ESTIMATE:
            return 0.0
        return min(2.0 * estimate, MAX_ESTIMATE_WAIT)
