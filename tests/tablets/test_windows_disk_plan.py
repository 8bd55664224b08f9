"""A Windows tablet's NVMe disk as its probe finds it in the service environment (the remote
probe's sysfs facts, then the laptop tests' recorded nvme-cli outputs) and how the tablet planner
treats it: every other tablet method answers "unsupported here" and the disk's own method takes it,
at the level of the strongest method the drive offers; without an SSH channel nothing serves it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from imaging.commands import ReplayRunner, utc_now
from imaging.errors import PlanError
from imaging.result import CommandRecord, EraseResult, Level
from imaging.tablets.identity import probe_windows
from imaging.tablets.methods import ResetContext, plan_reset

SCENARIO = Path(__file__).resolve().parents[1] / "fixtures" / "tablets" / "windows-nvme-sanitize-crypto.json"
NODE = "/dev/nvme0n1"
NVME_SERIAL = "S5GYNX0T123456A"
SECTORS = 976773168  # a 500 GB drive
# What PROBE_SCRIPT prints for an NVMe disk in the service environment (Linux 6.1: no device/serial
# on the block device's parent; the serial comes from nvme id-ctrl), nothing mounted but the tmpfs root.
NVME_FACTS = f"""name=nvme0n1
syspath=/sys/devices/pci0000:00/0000:00:1d.0/0000:3c:00.0/nvme/nvme0/nvme0n1
attr:dev=259:0
attr:size={SECTORS}
attr:ro=0
attr:queue/logical_block_size=512
attr:queue/physical_block_size=512
attr:queue/rotational=0
mount=22 1 0:21 / / rw,relatime - tmpfs tmpfs rw
"""


class ServiceEnvironment:
    """The probe script and blockdev answered with the facts above; the drive from its recording."""

    def __init__(self) -> None:
        self.drive = ReplayRunner(SCENARIO, device=NODE)

    def run(self, argv: Sequence[str], timeout: float) -> CommandRecord:
        if argv[0] == "nvme":
            return self.drive.run(argv, timeout)
        out = {"sh": NVME_FACTS, "blockdev": f"{SECTORS * 512}\n"}[argv[0]]
        return CommandRecord(tuple(argv), 0, out, "", utc_now(), utc_now())


def _never(_path: str) -> EraseResult:
    raise AssertionError("planning erases nothing")


def test_the_nvme_disk_is_found_by_its_recorded_serial_and_planned_at_its_strongest_method() -> None:
    probe = probe_windows(ServiceEnvironment(), "/dev/mmcblk0", "PTB55G20042", [NVME_SERIAL], [NODE])
    assert probe.identified and probe.emmc is None
    [disk] = probe.disks
    assert (disk.medium, disk.path, disk.probe.transport, disk.probe.media_type) == (NVME_SERIAL, NODE, "nvme", "nvme")
    plan = plan_reset(probe, ResetContext(ServiceEnvironment(), disk_erase=_never))
    assert (plan.method.name, plan.level) == ("service-environment-disk-erase", Level.PURGE)
    assert "nvme-sanitize-crypto (purge)" in plan.note
    skipped = dict(plan.considered)
    assert skipped["emmc-secure-erase-sanitize"] == "unsupported here: not an eMMC tablet"
    assert skipped["device-management-wipe"] == "unsupported here: no platform reset for windows tablets"


def test_without_the_ssh_channel_no_method_serves_the_disk() -> None:
    probe = probe_windows(ServiceEnvironment(), "/dev/mmcblk0", "PTB55G20042", [NVME_SERIAL], [NODE])
    with pytest.raises(PlanError) as refused:
        plan_reset(probe, ResetContext(ServiceEnvironment()))
    why = "service-environment-disk-erase: unsupported here: the tablet's service environment is not reached over SSH"
    assert str(refused.value).endswith(why)


def test_a_recorded_medium_not_in_the_service_environment_is_a_problem_not_a_guess() -> None:
    probe = probe_windows(ServiceEnvironment(), "/dev/mmcblk0", "PTB55G20042", ["S5GYNX0T999999Z"], [NODE])
    assert not probe.identified and not probe.disks
    assert probe.problem == (
        f"medium S5GYNX0T999999Z not found in the service environment (its disks: {NODE} {NVME_SERIAL})"
    )
    assert [c.argv[0] for c in probe.commands][:2] == ["sh", "blockdev"]  # every call kept as evidence
