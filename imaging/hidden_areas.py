"""ATA Host Protected Area: restore the native max address before an overwrite.

An overwrite only reaches the sectors the kernel can address; sectors hidden by an HPA stay as they
were. When they cannot be exposed the result says "hidden sectors not erased" and is not certified.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from imaging import sysfs
from imaging.ata_info import AtaParseError, parse_hpa, rejection_in
from imaging.commands import CommandRunner
from imaging.methods.base import tail
from imaging.probe import Probe, probe_target
from imaging.result import HiddenAreaStatus

COMMAND_TIMEOUT = 60.0
NOT_ERASED = "hidden sectors not erased"


def _rescan(probe: Probe) -> None:
    """Ask the SCSI layer to re-read the capacity the drive now reports."""
    if probe.name is None:
        return
    rescan = sysfs.SYS_BLOCK / sysfs.whole_disk(probe.name) / "device" / "rescan"
    try:
        Path(rescan).write_text("1")
    except OSError:
        pass  # no SCSI rescan knob: the size check below decides


def restore_native_max(probe: Probe, runner: CommandRunner) -> tuple[Probe, HiddenAreaStatus, str | None]:
    """Expose HPA-hidden sectors. Returns the re-probed target, the status and a failure reason."""
    hpa = probe.hpa
    if hpa is None and probe.ata is not None and probe.ata.hpa_feature:
        # The drive has an HPA feature but hdparm -N gave no usable answer: hidden sectors unknown.
        detail = "; ".join(n for n in probe.firmware_notes if "-N" in n) or "hdparm -N unreadable"
        return (
            probe,
            HiddenAreaStatus(None, None, None, None, f"HPA state unknown: {detail}"),
            f"{NOT_ERASED}: the drive supports an HPA but its state could not be read",
        )
    if hpa is None:
        return probe, HiddenAreaStatus(), None
    if not hpa.hidden_sectors:
        status = HiddenAreaStatus(False, False, None, hpa.native_sectors, "no HPA")
        return probe, status, None
    hidden = hpa.hidden_sectors
    record = runner.run(
        ["hdparm", "--yes-i-know-what-i-am-doing", "-N", f"p{hpa.native_sectors}", probe.path],
        COMMAND_TIMEOUT,
    )
    if line := rejection_in(record.stdout, record.stderr):
        return (
            probe,
            _failed(hpa.native_sectors, f"drive refused to restore native max: {line}"),
            (f"{NOT_ERASED}: HPA hides {hidden} sectors and the drive refused to remove it"),
        )
    check = runner.run(["hdparm", "-N", probe.path], COMMAND_TIMEOUT)
    try:
        after = parse_hpa(check.stdout)
    except AtaParseError:
        return (
            probe,
            _failed(hpa.native_sectors, f"HPA state unreadable: {tail(check)}"),
            (f"{NOT_ERASED}: HPA state unknown after trying to remove it"),
        )
    if after.hidden_sectors:
        return (
            probe,
            _failed(hpa.native_sectors, "HPA still enabled after restore"),
            (f"{NOT_ERASED}: HPA still hides {after.hidden_sectors} sectors"),
        )
    _rescan(probe)
    fresh = probe_target(probe.path)
    wanted = hpa.native_sectors * probe.logical_sector_size
    if fresh.size_bytes < wanted:
        return (
            probe,
            _failed(hpa.native_sectors, "kernel did not pick up the restored capacity"),
            (f"{NOT_ERASED}: native max restored but the kernel still sees {fresh.size_bytes} of {wanted} bytes"),
        )
    restored = dataclasses.replace(probe, size_bytes=fresh.size_bytes, hpa=after)
    note = f"HPA removed: native max {hpa.native_sectors} sectors restored ({hidden} were hidden)"
    return restored, HiddenAreaStatus(True, False, None, hpa.native_sectors, note), None


def _failed(native: int, note: str) -> HiddenAreaStatus:
    return HiddenAreaStatus(True, True, None, native, note)
