"""NVMe and SATA storage of Windows tablets, found in their service environment over SSH as a
laptop's disks are: the remote probe (``imaging.remote_probe``) reads each whole disk there, with
nvme-cli / hdparm for its firmware capabilities, and a disk is the tablet's when its serial is a
medium recorded on the tablet (as ``locate_media`` matches a laptop's disks). Only NVMe and SATA
disks are taken: an eMMC is read by ``mmc-utils`` (``emmc.py``), anything else is not this path's.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from imaging.commands import CommandRunner, RecordingRunner
from imaging.errors import ProbeError
from imaging.probe import Probe
from imaging.remote_probe import discover_disks, probe_remote
from imaging.result import CommandRecord

SIZE_TIMEOUT = 30.0
TRANSPORTS = ("nvme", "sata")


@dataclass(frozen=True)
class TabletDisk:
    """One recorded medium of the tablet and its disk in the service environment."""

    medium: str  # the recorded medium's serial: the disk's own (from nvme id-ctrl / hdparm -I)
    probe: Probe  # as the remote probe read it

    @property
    def path(self) -> str:
        return self.probe.path


@dataclass(frozen=True)
class DiskSearch:
    disks: tuple[TabletDisk, ...]
    problem: str | None
    commands: tuple[CommandRecord, ...]


class _SizedRunner:
    """The seam plus the remote kernel's size of a disk (``blockdev``), which the remote probe asks for."""

    def __init__(self, runner: CommandRunner) -> None:
        self.recorder = RecordingRunner(runner)

    def run(self, argv: Sequence[str], timeout: float) -> CommandRecord:
        return self.recorder.run(argv, timeout)

    def size(self, device: str) -> int:
        record = self.recorder.run(["blockdev", "--getsize64", device], SIZE_TIMEOUT)
        text = record.stdout.strip()
        if record.returncode != 0 or not text.isdigit():
            raise ProbeError(f"remote {device}: blockdev --getsize64 failed: {record.stderr.strip()[-200:] or text}")
        return int(text)


def find_disks(runner: CommandRunner, media: Collection[str], nodes: Sequence[str] = ()) -> DiskSearch:
    """The disks holding ``media`` (recorded serials), among ``nodes`` or, with none named, every
    whole disk the service environment lists; a problem when a medium is missing, ambiguous, or
    is not NVMe or SATA (nothing is erased from such a search)."""
    seam = _SizedRunner(runner)
    try:
        probes = [probe_remote(seam, node, seam.size) for node in nodes] if nodes else discover_disks(seam, seam.size)
    except ProbeError as exc:
        return DiskSearch((), str(exc), seam.recorder.records)
    found: list[TabletDisk] = []
    for serial in media:
        matches = [p for p in probes if p.serial == serial]
        problem = _unusable(serial, matches, probes)
        if problem is not None:
            return DiskSearch((), problem, seam.recorder.records)
        found.append(TabletDisk(serial, matches[0]))
    return DiskSearch(tuple(found), None, seam.recorder.records)


def _unusable(serial: str, matches: Sequence[Probe], probes: Sequence[Probe]) -> str | None:
    if len(matches) != 1:
        where = "not found" if not matches else f"ambiguous ({', '.join(p.path for p in matches)})"
        listed = ", ".join(f"{p.path} {p.serial or 'no serial'}" for p in probes) or "none"
        return f"medium {serial} {where} in the service environment (its disks: {listed})"
    disk = matches[0]
    if disk.transport not in TRANSPORTS:
        return f"medium {serial} is {disk.path} on the {disk.transport} transport there, not NVMe or SATA"
    return None
