"""Probe a target, block device or regular file, through one code path.

The probe gathers everything the planner and the refusal rules need: geometry, media type,
identity, whether the target is mounted, in use or the system disk, and for NVMe/ATA the firmware
sanitisation capabilities read through the command seam.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from imaging import sysfs
from imaging.ata_info import AtaIdentity, AtaParseError, HpaState, parse_hpa, parse_identify
from imaging.commands import CommandRunner
from imaging.errors import ProbeError, SystemDiskRefused, TargetInUse, TargetMounted
from imaging.nvme_info import (
    NvmeController,
    NvmeParseError,
    SanitizeLog,
    parse_id_ctrl,
    parse_id_ns_reads_zeros,
    parse_sanitize_log,
)
from imaging.result import CommandRecord, MediaIdentity
from imaging.usage import Usage, block_usage, file_usage

BLKROGET = 0x125E
BLKSSZGET = 0x1268
BLKPBSZGET = 0x127B
BLKGETSIZE64 = 0x80081272
IDENTIFY_TIMEOUT = 30.0
T = TypeVar("T")


def ioctl_int(fd: int, request: int, fmt: str) -> int:
    buf = bytearray(struct.calcsize(fmt))
    fcntl.ioctl(fd, request, buf)
    return int(struct.unpack(fmt, buf)[0])


def block_size_bytes(fd: int) -> int:
    return ioctl_int(fd, BLKGETSIZE64, "Q")


@dataclass(frozen=True)
class Probe:
    path: str
    kind: str  # "block" or "file"
    name: str | None  # kernel name (sda, nvme0n1, loop3); None for a file
    rdev: int | None
    inode: tuple[int, int]  # (st_dev, st_ino) of the path, to notice a replaced node
    size_bytes: int
    logical_sector_size: int
    physical_sector_size: int
    rotational: bool | None
    transport: str  # nvme, sata, usb, mmc, ufs, scsi, virtio, loop, file
    media_type: str  # hdd, sata-ssd, nvme, emmc, sd, ufs, usb, loop, virtio, file
    read_only: bool
    usage: Usage
    model: str | None = None
    serial: str | None = None
    vendor: str | None = None
    nvme: NvmeController | None = None
    nvme_reads_zeros: bool | None = None
    sanitize_log: SanitizeLog | None = None
    ata: AtaIdentity | None = None
    hpa: HpaState | None = None
    firmware_notes: tuple[str, ...] = ()
    commands: tuple[CommandRecord, ...] = field(default=(), repr=False)

    @property
    def solid_state(self) -> bool:
        """Flash media: an overwrite cannot reach remapped or over-provisioned cells."""
        if self.media_type in ("nvme", "sata-ssd", "emmc", "sd", "ufs", "usb"):
            return True
        if self.ata is not None and self.ata.solid_state is not None:
            return self.ata.solid_state
        return self.rotational is False and self.media_type not in ("file", "loop", "hdd")

    def identity(self) -> MediaIdentity:
        return MediaIdentity(
            path=self.path,
            target_kind=self.kind,
            media_type=self.media_type,
            size_bytes=self.size_bytes,
            logical_sector_size=self.logical_sector_size,
            physical_sector_size=self.physical_sector_size,
            model=self.model,
            serial=self.serial,
            manufacturer=self.vendor,
            transport=self.transport,
            rotational=self.rotational,
        )

    def refuse_if_unsafe(self) -> None:
        """Raise a ``TargetRefused`` if the target is the system disk, mounted or in use."""
        if self.usage.system_reason:
            raise SystemDiskRefused(f"refusing {self.path}: {self.usage.system_reason}")
        if self.usage.mountpoints:
            raise TargetMounted(f"refusing {self.path}: mounted at {', '.join(self.usage.mountpoints)}")
        if reason := self.usage.in_use_reason:
            raise TargetInUse(f"refusing {self.path}: {reason}")


@dataclass(frozen=True)
class DiskQueue:
    """A whole disk's sector sizes and rotation (its ``queue`` in sysfs), and the transport and
    media type they and its device path imply: fields of a ``Probe``, under the same names."""

    logical_sector_size: int
    physical_sector_size: int
    rotational: bool | None
    transport: str
    media_type: str


def read_disk_queue(
    name: str,
    int_attr: Callable[[str], int | None],
    *,
    device_path: Callable[[], str],
    mmc_type: Callable[[], str | None],
) -> DiskQueue | None:
    """The disk ``name``'s queue from its sysfs attributes, read locally or on a remote kernel;
    ``None`` when sysfs gives no sector sizes."""
    logical = int_attr("queue/logical_block_size")
    physical = int_attr("queue/physical_block_size")
    if logical is None or physical is None:
        return None
    rotational_attr = int_attr("queue/rotational")
    rotational = None if rotational_attr is None else rotational_attr == 1
    transport, media = transport_and_media(name, rotational, device_path=device_path, mmc_type=mmc_type)
    return DiskQueue(logical, physical, rotational, transport, media)


def transport_and_media(
    name: str,
    rotational: bool | None,
    *,
    device_path: Callable[[], str],
    mmc_type: Callable[[], str | None],
) -> tuple[str, str]:
    """Transport and media type from the kernel name and sysfs facts (read lazily: local or remote)."""
    if name.startswith("nvme"):
        return "nvme", "nvme"
    if name.startswith("loop"):
        return "loop", "loop"
    if name.startswith("mmcblk"):
        kind = (mmc_type() or "").upper()
        return "mmc", "sd" if kind == "SD" else "emmc"
    if name.startswith("vd"):
        return "virtio", "virtio"
    path = device_path()
    if "/usb" in path:
        return "usb", "usb"
    if "ufs" in path:
        return "ufs", "ufs"
    if "/ata" in path:
        return "sata", "hdd" if rotational else "sata-ssd"
    return "scsi", "hdd" if rotational else "sata-ssd"


def _probe_block(path: str, st: os.stat_result) -> Probe:
    name = sysfs.name_for_rdev(st.st_rdev)
    if name is None:
        raise ProbeError(f"{path}: block device {os.major(st.st_rdev)}:{os.minor(st.st_rdev)} not in sysfs")
    # Geometry from sysfs: it needs no open, so even a device this process may not open (the
    # system disk inside a sandbox) is probed and then refused.
    disk = sysfs.whole_disk(name)
    sectors = sysfs.int_attr(name, "size")
    queue = read_disk_queue(
        disk,
        lambda attr: sysfs.int_attr(disk, attr),
        device_path=lambda: sysfs.device_path(disk),
        mmc_type=lambda: sysfs.attr(disk, "device/type"),
    )
    if sectors is None or queue is None:
        raise ProbeError(f"{path}: sysfs has no size or sector size for {name}")
    udev = sysfs.udev_properties(st.st_rdev)
    return Probe(
        path=path,
        kind="block",
        name=name,
        rdev=st.st_rdev,
        inode=(st.st_dev, st.st_ino),
        size_bytes=sectors * 512,  # sysfs "size" counts 512-byte units whatever the sector size
        read_only=sysfs.int_attr(name, "ro") == 1,
        usage=block_usage(name),
        model=sysfs.attr(disk, "device/model") or udev.get("ID_MODEL") or None,
        serial=sysfs.attr(disk, "device/serial") or udev.get("ID_SERIAL_SHORT") or None,
        vendor=sysfs.attr(disk, "device/vendor") or udev.get("ID_VENDOR") or None,
        **dataclasses.asdict(queue),
    )


def _probe_file(path: str, st: os.stat_result) -> Probe:
    try:
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY) or not os.access(path, os.W_OK)
    except OSError as exc:
        raise ProbeError(f"{path}: cannot stat its filesystem: {exc.strerror}") from exc
    return Probe(
        path=path,
        kind="file",
        name=None,
        rdev=None,
        inode=(st.st_dev, st.st_ino),
        size_bytes=st.st_size,
        logical_sector_size=512,
        physical_sector_size=max(512, st.st_blksize),
        rotational=None,
        transport="file",
        media_type="file",
        read_only=read_only,
        usage=file_usage(path),
    )


def _run_parse(
    runner: CommandRunner,
    argv: list[str],
    parse: Callable[[str], T],
    notes: list[str],
    records: list[CommandRecord],
) -> T | None:
    record = runner.run(argv, IDENTIFY_TIMEOUT)
    records.append(record)
    if record.returncode != 0:
        notes.append(f"{' '.join(argv)} exited {record.returncode}: {record.stderr.strip()[:200]}")
        return None
    try:
        return parse(record.stdout)
    except (NvmeParseError, AtaParseError) as exc:
        notes.append(str(exc))
        return None


def with_firmware_info(probe: Probe, runner: CommandRunner) -> Probe:
    """Add NVMe/ATA capabilities read with nvme-cli/hdparm through the command seam."""
    notes: list[str] = list(probe.firmware_notes)
    records: list[CommandRecord] = list(probe.commands)
    dev = probe.path
    changes: dict[str, object] = {}
    if probe.transport == "nvme":
        ctrl: NvmeController | None = _run_parse(
            runner, ["nvme", "id-ctrl", dev, "-o", "json"], parse_id_ctrl, notes, records
        )
        changes["nvme"] = ctrl
        if ctrl is not None:
            changes["model"] = probe.model or ctrl.model or None
            changes["serial"] = ctrl.serial or probe.serial
            changes["nvme_reads_zeros"] = _run_parse(
                runner, ["nvme", "id-ns", dev, "-o", "json"], parse_id_ns_reads_zeros, notes, records
            )
            if ctrl.sanicap:
                changes["sanitize_log"] = _run_parse(
                    runner, ["nvme", "sanitize-log", dev, "-o", "json"], parse_sanitize_log, notes, records
                )
    elif probe.transport == "sata":
        ata: AtaIdentity | None = _run_parse(runner, ["hdparm", "-I", dev], parse_identify, notes, records)
        changes["ata"] = ata
        if ata is not None:
            changes["model"] = ata.model or probe.model
            changes["serial"] = ata.serial or probe.serial
            changes["hpa"] = _run_parse(runner, ["hdparm", "-N", dev], parse_hpa, notes, records)
    return dataclasses.replace(probe, firmware_notes=tuple(notes), commands=tuple(records), **changes)  # type: ignore[arg-type]


def probe_target(path: str, runner: CommandRunner | None = None) -> Probe:
    """Probe ``path``; with a runner, NVMe and SATA devices also get their firmware capabilities."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ProbeError(f"{path}: {exc.strerror}") from exc
    if stat.S_ISBLK(st.st_mode):
        probe = _probe_block(path, st)
    elif stat.S_ISREG(st.st_mode):
        probe = _probe_file(path, st)
    else:
        raise ProbeError(f"{path}: neither a block device nor a regular file")
    if runner is not None and probe.transport in ("nvme", "sata"):
        probe = with_firmware_info(probe, runner)
    return probe
