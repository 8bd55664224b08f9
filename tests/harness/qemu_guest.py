"""A QEMU guest that plays a laptop booted into the factory's service environment.

The guest (built by ``scripts/build-guest.sh``) has an emulated NVMe drive and an emulated SATA disk,
each backed by a fresh raw image filled with a known non-zero pattern, and is reached over SSH
through a loopback-only port forward. Software emulation (TCG) only: KVM is not usable here.

Usage::

    image = build_guest_image()
    with qemu_guest(tmp_path, image) as guest:
        runner = SshCommandRunner(guest.ssh_target())
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hardware_drivers.remote_commands import PinnedHostKey, SshTarget
from harness.ports import free_tcp_port
from harness.processes import stop_process
from harness.requirements import require_root, require_tool
from harness.xdist_groups import GUEST_GROUP

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-guest.sh"
MIB = 1 << 20

# 16 bytes, no zero byte: any zero read back where this was written was put there by an erase.
PATTERN_UNIT = b"DF-TEST-PATTERN\xa5"
NVME_SERIAL = "DFNVME0001"
SATA_SERIAL = "DFSATA0001"

# For the modules that boot QEMU guests (in their pytestmark): CI runs the slow tests on both cores
# (pytest -n 2 --dist loadgroup), and these run on one worker, one after another
# (harness/xdist_groups.py does the grouping). A TCG guest keeps a whole core busy; two booting at
# once on a 2-core machine would starve each other towards their deadlines.
ONE_GUEST_AT_A_TIME = pytest.mark.xdist_group(GUEST_GROUP)


def default_guest_dir() -> Path:
    """Where the built guest is cached between runs (keys included, so pinned copies stay valid)."""
    if "DF_GUEST_DIR" in os.environ:
        return Path(os.environ["DF_GUEST_DIR"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "device-factory" / "qemu-guest"


class GuestBuildError(RuntimeError):
    """scripts/build-guest.sh failed."""


class GuestBootError(RuntimeError):
    """The guest did not come up with SSH in time; the message carries its serial console log."""


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initramfs: Path
    host_key_pub: Path
    client_key: Path
    ready_marker: str
    fail_marker: str
    kernel_version: str


def build_guest_image(out_dir: Path | None = None, timeout: float = 180.0) -> GuestImage:
    """Build (or reuse, when its inputs are unchanged) the guest kernel, initramfs and keys."""
    out = out_dir or default_guest_dir()
    out.mkdir(parents=True, exist_ok=True)
    # One build at a time: test processes running side by side share the cached guest directory.
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(
            ["bash", str(BUILD_SCRIPT), str(out)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if done.returncode != 0:
        raise GuestBuildError(f"build-guest.sh failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    env = dict(line.split("=", 1) for line in (out / "guest.env").read_text().splitlines() if "=" in line)
    return GuestImage(
        kernel=out / env["KERNEL"],
        initramfs=out / "initramfs.cpio",
        host_key_pub=out / "host_key.pub",
        client_key=out / "client_key",
        ready_marker=env["READY_MARKER"],
        fail_marker=env["FAIL_MARKER"],
        kernel_version=env["KERNEL_VERSION"],
    )


def pattern_bytes(offset: int, length: int) -> bytes:
    """What a fresh test disk holds at ``[offset, offset + length)``."""
    start = offset % len(PATTERN_UNIT)
    reps = (start + length) // len(PATTERN_UNIT) + 1
    return (PATTERN_UNIT * reps)[start : start + length]


def make_patterned_disk(path: Path, size: int) -> None:
    if size % MIB:
        raise ValueError("test disk sizes are whole MiB")
    chunk = PATTERN_UNIT * (MIB // len(PATTERN_UNIT))
    with path.open("wb") as f:
        for _ in range(size // MIB):
            f.write(chunk)


@dataclass(frozen=True)
class GuestDisk:
    device: str  # path inside the guest
    image: Path  # backing raw file on the host
    size: int
    serial: str

    def restore_pattern(self, offset: int, length: int) -> None:
        """Rewrite the test pattern into the backing file (the guest sees it on its next direct read)."""
        with self.image.open("r+b") as f:
            f.seek(offset)
            f.write(pattern_bytes(offset, length))
            f.flush()
            os.fsync(f.fileno())

    def read_image(self, offset: int, length: int) -> bytes:
        """Ground truth: what the emulated medium holds, read from the backing file on the host."""
        with self.image.open("rb") as f:
            f.seek(offset)
            return f.read(length)


@dataclass(frozen=True)
class RunningGuest:
    host: str
    port: int
    username: str
    client_key: Path
    host_key: str  # OpenSSH public key line generated at build time
    nvme: GuestDisk
    sata: GuestDisk
    serial_log: Path
    pid: int

    def ssh_target(self, host_key: str | None = None, connect_timeout: float = 30.0) -> SshTarget:
        """Connection details with the build-time host key pinned (or ``host_key`` to pin instead)."""
        return SshTarget(
            host=self.host,
            port=self.port,
            username=self.username,
            client_key_path=self.client_key,
            host_key=PinnedHostKey.parse(host_key or self.host_key),
            connect_timeout=connect_timeout,
        )

    def serial_text(self) -> str:
        return _read_text(self.serial_log)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _ssh_banner(port: int, timeout: float) -> bool:
    """True once something on the forwarded port answers with an SSH banner."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _qemu_argv(image: GuestImage, nvme: GuestDisk, sata: GuestDisk, port: int, serial: Path, mem: int) -> list[str]:
    return [
        "qemu-system-x86_64",
        "-accel", "tcg",
        "-cpu", "max",
        "-m", str(mem),
        "-smp", "1",
        "-nodefaults",
        "-no-user-config",
        "-display", "none",
        "-no-reboot",
        "-serial", f"file:{serial}",
        "-kernel", str(image.kernel),
        "-initrd", str(image.initramfs),
        "-append", "console=ttyS0 panic=-1 loglevel=4",
        "-drive", f"file={nvme.image},if=none,id=nv0,format=raw",
        "-device", f"nvme,serial={nvme.serial},drive=nv0",
        "-drive", f"file={sata.image},if=none,id=sd0,format=raw",
        "-device", "ahci,id=ahci",
        "-device", f"ide-hd,drive=sd0,bus=ahci.0,serial={sata.serial}",
        # restrict=on: the guest reaches nothing; only the loopback forward reaches the guest.
        "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "e1000,netdev=n0",
    ]  # fmt: skip


def _boot_failure(reason: str, serial: Path, qemu_log: Path) -> GuestBootError:
    console = "\n".join(_read_text(serial).splitlines()[-40:]) or "(empty)"
    qemu = _read_text(qemu_log).strip() or "(empty)"
    return GuestBootError(f"{reason}\n--- serial console (tail) ---\n{console}\n--- qemu stderr ---\n{qemu}")


@contextlib.contextmanager
def qemu_guest(
    work_dir: Path,
    image: GuestImage,
    *,
    nvme_size: int = 64 * MIB,
    sata_size: int = 64 * MIB,
    memory_mib: int = 384,
    boot_timeout: float = 120.0,
) -> Iterator[RunningGuest]:
    """Boot the guest on fresh patterned disks; QEMU is always stopped on exit."""
    work_dir.mkdir(parents=True, exist_ok=True)
    nvme = GuestDisk("/dev/nvme0n1", work_dir / "nvme.img", nvme_size, NVME_SERIAL)
    sata = GuestDisk("/dev/sda", work_dir / "sata.img", sata_size, SATA_SERIAL)
    make_patterned_disk(nvme.image, nvme.size)
    make_patterned_disk(sata.image, sata.size)
    serial = work_dir / "serial.log"
    qemu_log = work_dir / "qemu.log"

    for _attempt in range(3):  # the free port can be taken between probing and QEMU binding it
        port = free_tcp_port()
        serial.unlink(missing_ok=True)
        with qemu_log.open("wb") as log:
            proc = subprocess.Popen(
                _qemu_argv(image, nvme, sata, port, serial, memory_mib),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            time.sleep(0.3)  # deliberate: a port clash makes QEMU exit at once; give it that moment to say so
            if proc.poll() is not None and "host forwarding" in _read_text(qemu_log):
                continue
            _wait_for_ssh(proc, image, port, serial, qemu_log, boot_timeout)
            yield RunningGuest(
                host="127.0.0.1",
                port=port,
                username="root",
                client_key=image.client_key,
                host_key=image.host_key_pub.read_text().strip(),
                nvme=nvme,
                sata=sata,
                serial_log=serial,
                pid=proc.pid,
            )
            return
        finally:
            stop_process(proc)
    raise _boot_failure("QEMU could not bind a loopback port for SSH forwarding", serial, qemu_log)


def _wait_for_ssh(
    proc: subprocess.Popen[bytes], image: GuestImage, port: int, serial: Path, qemu_log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _boot_failure(f"QEMU exited with status {proc.returncode} before SSH came up", serial, qemu_log)
        console = _read_text(serial)
        if image.fail_marker in console:
            raise _boot_failure("the guest's init reported a failure", serial, qemu_log)
        if image.ready_marker in console and _ssh_banner(port, timeout=5.0):
            return
        time.sleep(0.25)
    raise _boot_failure(f"no SSH on 127.0.0.1:{port} within {timeout:g}s", serial, qemu_log)


def booted_guest(work_dir: Path, **sizes: int) -> Iterator[RunningGuest]:
    """The body of a module fixture: the guest booted (needs root and QEMU); sizes: nvme_size, sata_size."""
    require_root()
    require_tool("qemu-system-x86_64")
    with qemu_guest(work_dir, build_guest_image(), **sizes) as running:
        yield running
