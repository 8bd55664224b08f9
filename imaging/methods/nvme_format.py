"""NVMe Format NVM with Secure Erase Settings: SES=2 crypto erase, SES=1 user data erase.

NIST SP 800-88 Rev. 1 listed both as Purge for NVMe. Rev. 2 leaves technique to IEEE 2883-2022,
which takes Purge on NVMe from the Sanitize command; a Format is labelled Purge here only when
what it does qualifies: a cryptographic erase (SES=2) that the controller applies to every
namespace (FNA bit 1), so no namespace keeps data under a surviving key. Any other Format is Clear.
"""

from __future__ import annotations

from imaging.errors import EraseFailure, FirmwareRejected
from imaging.methods.base import FirmwareContext, FirmwareExpectation, FirmwareMethod, Support, tail
from imaging.methods.nvme_sanitize import nvme_precheck, refused_outright, vendor_or_zeros
from imaging.nvme_info import SanitizeState
from imaging.probe import Probe
from imaging.result import Level, Technique

# nvme-cli gives the Format NVM admin command its own ioctl timeout, 600000 ms unless --timeout
# says otherwise (1.x and 2.x alike); past it the kernel aborts the command and resets the
# controller. So the tool is told our limit, and the process gets a margin beyond it to report.
FORMAT_TIMEOUT = 4 * 3600.0
PROCESS_MARGIN = 300.0
IEEE_NOTE = "IEEE 2883 prefers NVMe Sanitize to Format for Purge"
# FNA bit 1: a secure erase by Format applies to all namespaces of the controller.
FNA_SECURE_ERASE_ALL_NAMESPACES = 1 << 1
CLEAR_NOTE = "Format NVM is Clear per IEEE 2883 unless it is a crypto erase applied to every namespace"


def format_argv(dev: str, ses: int) -> list[str]:
    """``--force`` skips the 10-second "press Ctrl-C" warning and the exclusive-open refusal
    (nvme-cli >= 1.10); ``--timeout`` is in milliseconds."""
    return ["nvme", "format", dev, f"--ses={ses}", "--force", f"--timeout={int(FORMAT_TIMEOUT * 1000)}"]


class NvmeFormat(FirmwareMethod):
    choice = "nvme-format"

    def __init__(self, ses: int) -> None:
        if ses not in (1, 2):
            raise ValueError("SES must be 1 (user data erase) or 2 (crypto erase)")
        self.ses = ses
        self.name = "nvme-format-crypto" if ses == 2 else "nvme-format-erase"
        self.technique = Technique.CRYPTO_ERASE if ses == 2 else Technique.BLOCK_ERASE

    def supports(self, probe: Probe) -> Support:
        if (refusal := nvme_precheck(probe)) is not None:
            return refusal
        ctrl = probe.nvme
        assert ctrl is not None
        if not ctrl.format_supported:
            return Support.no(f"controller OACS {ctrl.oacs:#x} lacks Format NVM")
        if self.ses == 2 and not ctrl.crypto_format_supported:
            return Support.no(f"controller FNA {ctrl.fna:#x} lacks crypto erase in Format")
        if probe.sanitize_log is not None and probe.sanitize_log.state is SanitizeState.FAILED:
            return Support.no("the last sanitize failed: the controller accepts only a new sanitize")
        if self.ses == 2 and ctrl.fna & FNA_SECURE_ERASE_ALL_NAMESPACES:
            return Support.yes(Level.PURGE, IEEE_NOTE)
        return Support.yes(Level.CLEAR, CLEAR_NOTE)

    def expectation(self, probe: Probe) -> FirmwareExpectation:
        return vendor_or_zeros(probe, self.name)

    def execute(self, probe: Probe, ctx: FirmwareContext) -> tuple[str, ...]:
        record = ctx.run(format_argv(probe.path, self.ses), FORMAT_TIMEOUT + PROCESS_MARGIN)
        if refused_outright(record):
            raise FirmwareRejected(f"nvme format rejected: {tail(record)}")
        if record.returncode != 0:
            raise EraseFailure(f"nvme format rejected: {tail(record)}")
        if "Success formatting namespace" not in record.stdout:
            raise EraseFailure(f"nvme format exited 0 without reporting success: {tail(record)}")
        ctx.progress(1.0)
        return (f"nvme format --ses={self.ses}: success reported",)
