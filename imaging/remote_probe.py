"""Probe a block device on a remote machine (a laptop booted into the service environment).

One fixed shell script, run through the command seam, reports what the local probe reads from
/sys and /proc: geometry, identity, the sysfs path (for the transport), partitions, holders,
mounts and swaps. The firmware capabilities come from the same ``with_firmware_info`` as a local
probe, so the planner sees an identical ``Probe`` whichever side the disk is on.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from imaging.commands import CommandRunner
from imaging.errors import ProbeError
from imaging.probe import Probe, read_disk_queue, with_firmware_info
from imaging.result import CommandRecord
from imaging.usage import SYSTEM_MOUNTPOINTS, Mount, Usage, parse_mountinfo

PROBE_TIMEOUT = 60.0
ATTRS = (
    "dev",
    "size",
    "ro",
    "partition",
    "queue/logical_block_size",
    "queue/physical_block_size",
    "queue/rotational",
    "device/model",
    "device/serial",
    "device/vendor",
    "device/type",
    "device/name",  # an eMMC's product name (mmc cards have no device/model)
)
# $1 is the device path. Every line is "tag=value"; mountinfo and swaps are passed through whole.
PROBE_SCRIPT = r"""
dev=$(readlink -f "$1") || exit 2
name=${dev##*/}
sys=/sys/class/block/$name
if [ ! -b "$dev" ] || [ ! -e "$sys" ]; then echo "$1 is not a block device" >&2; exit 2; fi
echo "name=$name"
echo "syspath=$(readlink -f "$sys")"
for a in ATTRS; do [ -r "$sys/$a" ] && echo "attr:$a=$(cat "$sys/$a")"; done
for p in "$sys/$name"*; do [ -r "$p/dev" ] && echo "part=${p##*/} $(cat "$p/dev")"; done
for h in "$sys"/holders/* "$sys/$name"*/holders/*; do [ -e "$h" ] && echo "holder=${h##*/}"; done
while read -r line; do echo "mount=$line"; done < /proc/self/mountinfo
while read -r file rest; do [ "$file" = Filename ] || echo "swap=$file"; done < /proc/swaps
exit 0
""".replace("ATTRS", " ".join(ATTRS))


@dataclass
class RemoteFacts:
    """What the probe script printed, parsed."""

    name: str = ""
    syspath: str = ""
    attrs: dict[str, str] = field(default_factory=dict)
    partitions: dict[str, str] = field(default_factory=dict)  # name -> major:minor
    holders: list[str] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    swaps: list[str] = field(default_factory=list)

    def int_attr(self, key: str) -> int | None:
        value = self.attrs.get(key, "").strip()
        return int(value) if value.lstrip("-").isdigit() else None

    def text_attr(self, key: str) -> str | None:
        return self.attrs.get(key, "").strip() or None


def parse_probe_output(text: str) -> RemoteFacts:
    facts = RemoteFacts()
    for line in text.splitlines():
        tag, sep, value = line.partition("=")
        if not sep:
            continue
        if tag == "name":
            facts.name = value.strip()
        elif tag == "syspath":
            facts.syspath = value.strip()
        elif tag.startswith("attr:"):
            facts.attrs[tag[5:]] = value
        elif tag == "part":
            part, _, majmin = value.partition(" ")
            facts.partitions[part] = majmin.strip()
        elif tag == "holder":
            facts.holders.append(value.strip())
        elif tag == "mount":
            facts.mounts.extend(parse_mountinfo([value]))
        elif tag == "swap":
            facts.swaps.append(value.strip())
    return facts


def remote_usage(facts: RemoteFacts) -> Usage:
    """Mounts, holders and swaps of the disk or any of its partitions, as on the remote kernel.

    Fails closed like the local check: when / is not a mount point there (a chroot), the remote's
    system disk cannot be told, so this disk is refused as possibly being it.
    """
    ours = {facts.attrs.get("dev", "").strip(), *facts.partitions.values()} - {""}
    names = {facts.name, *facts.partitions}
    # btrfs reports an anonymous device number: its source (/dev/sda2) names the device instead.
    mountpoints = tuple(
        m.mountpoint
        for m in facts.mounts
        if m.majmin in ours or (m.source.startswith("/dev/") and posixpath.basename(m.source) in names)
    )
    swaps = tuple(path for path in facts.swaps if posixpath.basename(path) in names)
    system = [point for point in mountpoints if point in SYSTEM_MOUNTPOINTS]
    system_reason = f"{facts.name} holds the remote's running system ({system[0]})" if system else None
    if system_reason is None and not any(m.mountpoint == "/" for m in facts.mounts):
        system_reason = (
            f"{facts.name} may hold the remote's running system: its disk cannot be determined "
            "(/ is not a mount point there)"
        )
    return Usage(mountpoints, tuple(sorted(set(facts.holders))), swaps, (), system_reason)


def probe_remote(runner: CommandRunner, device: str, size_bytes: Callable[[str], int]) -> Probe:
    """Probe ``device`` on the remote; ``size_bytes`` asks the remote kernel for its size.

    Raises ``ProbeError`` when the path is not a whole-disk block device there.
    """
    record: CommandRecord = runner.run(["sh", "-c", PROBE_SCRIPT, "df-probe", device], PROBE_TIMEOUT)
    if record.returncode != 0:
        why = record.stderr.strip().splitlines()[-1:] or [f"exit status {record.returncode}"]
        raise ProbeError(f"remote {device}: {why[0]}")
    facts = parse_probe_output(record.stdout)
    if not facts.name:
        raise ProbeError(f"remote {device}: the probe printed no device name")
    if facts.int_attr("partition") is not None:
        raise ProbeError(f"remote {device}: {facts.name} is a partition; a remote erase takes the whole disk")
    queue = read_disk_queue(
        facts.name,
        facts.int_attr,
        device_path=lambda: facts.syspath,
        mmc_type=lambda: facts.text_attr("device/type"),
    )
    if queue is None:
        raise ProbeError(f"remote {device}: sysfs has no sector sizes for {facts.name}")
    major, _, minor = facts.attrs.get("dev", "").strip().partition(":")
    probe = Probe(
        path=device,
        kind="block",
        name=facts.name,
        rdev=os.makedev(int(major), int(minor)) if major.isdigit() and minor.isdigit() else None,
        inode=(0, 0),  # no local node: nothing on this machine refers to the disk
        size_bytes=size_bytes(device),
        read_only=facts.int_attr("ro") == 1,
        usage=remote_usage(facts),
        model=facts.text_attr("device/model") or facts.text_attr("device/name"),
        serial=facts.text_attr("device/serial"),
        vendor=facts.text_attr("device/vendor"),
        commands=(record,),
        **asdict(queue),
    )
    if queue.transport in ("nvme", "sata"):
        probe = with_firmware_info(probe, runner)
    return probe


# Kernel names of disks an erase may target; partitions, loop, ram, zram, dm and optical are not.
DISK_PREFIXES = ("nvme", "sd", "mmcblk", "vd", "hd")


def discover_disks(runner: CommandRunner, size_bytes: Callable[[str], int]) -> list[Probe]:
    """Probe every whole disk the remote kernel lists (its serials identify the recorded media)."""
    record = runner.run(["ls", "/sys/block"], PROBE_TIMEOUT)
    if record.returncode != 0:
        raise ProbeError(f"remote disk list unreadable: {record.stderr.strip()[:200]}")
    # /sys/block lists whole disks only; eMMC boot and RPMB areas are not user data areas.
    names = sorted(
        name
        for name in record.stdout.split()
        if name.startswith(DISK_PREFIXES) and not name.endswith(("boot0", "boot1", "rpmb"))
    )
    return [probe_remote(runner, f"/dev/{name}", size_bytes) for name in names]
