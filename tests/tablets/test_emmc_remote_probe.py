"""A Windows tablet's eMMC as the remote probe reads it in the service environment: the sysfs a
kernel gives an eMMC (``device/type`` MMC, ``device/name``, ``device/serial``; no ``device/model``)
makes it an eMMC on the mmc transport, named by its product name, for the remote erase's plan."""

from __future__ import annotations

from collections.abc import Sequence

from imaging.commands import utc_now
from imaging.remote_probe import probe_remote
from imaging.result import CommandRecord

# What PROBE_SCRIPT prints for /dev/mmcblk0 on a rugged tablet (64 GB Samsung eMMC, one partition
# table, nothing mounted), from the attributes Linux 6.1's mmc_block and mmc core export.
EMMC_FACTS = """name=mmcblk0
syspath=/sys/devices/pci0000:00/0000:00:1c.0/mmc_host/mmc0/mmc0:0001/block/mmcblk0
attr:dev=179:0
attr:size=122142720
attr:ro=0
attr:queue/logical_block_size=512
attr:queue/physical_block_size=512
attr:queue/rotational=0
attr:device/serial=0x3c1f0a9e
attr:device/type=MMC
attr:device/name=AJTD4R
part=mmcblk0p1 179:1
mount=22 1 0:21 / / rw,relatime - tmpfs tmpfs rw
"""


class ServiceEnvironmentSysfs:
    """Answers the probe script with the facts above (no eMMC on this machine to read them from)."""

    def run(self, argv: Sequence[str], timeout: float) -> CommandRecord:
        assert tuple(argv[:2]) == ("sh", "-c")
        return CommandRecord(tuple(argv), 0, EMMC_FACTS, "", utc_now(), utc_now())


def test_an_emmc_in_the_service_environment_is_named_by_its_product_name() -> None:
    probe = probe_remote(ServiceEnvironmentSysfs(), "/dev/mmcblk0", lambda _dev: 122142720 * 512)
    assert (probe.transport, probe.media_type, probe.model, probe.serial) == ("mmc", "emmc", "AJTD4R", "0x3c1f0a9e")
    assert probe.size_bytes == 122142720 * 512 and not probe.read_only and probe.usage.system_reason is None
