"""A laptop that network-boots: QEMU (TCG) with an emulated NVMe drive and an e1000 NIC whose
option ROM is Debian's iPXE, on a tap device of the bench network's bridge (tests/harness/netns.py).
The factory side (``factory serve`` and ``factory line run``, which starts dnsmasq) runs inside the
same namespace as processes of their own, on the test's SQLite database.

Usage::

    with bench_network() as ns, factory_on_bench(ns, work, guest) as factory:
        with pxe_laptop(ns, work, mac=..., serial="LT-1", nvme_serial="NV-1") as laptop:
            wait_until(lambda: "DF-ENROLLED" in laptop.serial_text())
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.line_sites import net_agent_site_file
from harness.netns import RANGE, SERVER_ADDRESS, BenchNamespace
from harness.qemu_guest import GuestImage, make_patterned_disk
from harness.waiting import wait_until
from imaging.image_manifest import build_manifest, manifest_path_for, save_manifest

REPO = Path(__file__).resolve().parents[2]
PORT = 8080
CONTROLLER = f"http://{SERVER_ADDRESS}:{PORT}"
IPXE_ROM = "/usr/lib/ipxe/qemu/pxe-e1000.rom"
ArgvFor = Callable[[str, "PxeLaptop"], list[str]]  # (tap, laptop) -> QEMU's command line
GOLDEN_MARKER = b"DF-GOLDEN-IMAGE-BOOTED"
TECHNICIAN = "tech.netboot"  # the signed-in technician the line runs for (add_user it first)


def golden_boot_sector() -> bytes:
    """A 512-byte MBR that writes ``GOLDEN_MARKER`` to COM1 and halts: the "operating system" of the
    golden image, so a boot from the internal disk shows on the serial console."""
    code = bytes.fromhex(
        "fa"  # cli
        "31c0"  # xor ax, ax
        "8ed8"  # mov ds, ax
        "be167c"  # mov si, 0x7c16 (the message)
        "baf803"  # mov dx, 0x3f8 (COM1)
        "ac"  # next: lodsb
        "84c0"  # test al, al
        "7403"  # jz done
        "ee"  # out dx, al
        "ebf8"  # jmp next
        "f4"  # done: hlt
        "ebfd"  # jmp done
    )
    body = code + GOLDEN_MARKER + b"\r\n\x00"
    return body.ljust(510, b"\x00") + b"\x55\xaa"


def make_golden_image(path: Path, size_mib: int = 8) -> None:
    """A raw golden image with its manifest: the boot sector above, one Linux partition from 1 MiB
    holding an ext4 filesystem (what provisioning writes into), so the deployed disk boots."""
    size = size_mib << 20
    with path.open("wb") as f:
        f.truncate(size)
    # The system's own configuration as the image ships it: its root is a LUKS volume (QA checks).
    root = path.parent / "golden-root"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "crypttab").write_text("cryptroot UUID=8d0e1c7a-4f3b-4e2a-9b1d-2f6c5a7e9d10 none luks,discard\n")
    (root / "etc" / "hostname").write_text("golden\n")
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-L", "df-golden", "-d", str(root), "-E", "offset=1048576", str(path),
         f"{size_mib - 1}M"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    mbr = bytearray(golden_boot_sector())
    first_lba, sectors = 2048, (size - (1 << 20)) // 512
    entry = bytes([0x00, 0xFE, 0xFF, 0xFF, 0x83, 0xFE, 0xFF, 0xFF]) + first_lba.to_bytes(4, "little")
    mbr[446:462] = entry + sectors.to_bytes(4, "little")
    with path.open("r+b") as f:
        f.write(bytes(mbr))
    save_manifest(build_manifest(path, name="laptop-golden", version="2026.12"), manifest_path_for(path))


def provisioning_file(work: Path, guest: GuestImage) -> Path:
    """Provisioning settings for the line's Ansible provisioner (test CA, enrolment service)."""
    from harness.provisioning_site import ENROLMENT_TOKEN, site_ca_pem

    (work / "ca.pem").write_text(site_ca_pem())
    (work / "enrol-token").write_text(ENROLMENT_TOKEN + "\n")
    path = work / "provisioning.toml"
    path.write_text(
        f"""[provisioning]
site_ca_file = "{work / "ca.pem"}"
enrolment_server_url = "https://mdm.devicefactory.test/enrol"
enrolment_tenant = "df-test"
enrolment_token_file = "{work / "enrol-token"}"
ssh_private_key = "{guest.client_key}"
"""
    )
    return path


def site_file(work: Path, guest: GuestImage, *, slots: int = 2, extra: str = "") -> Path:
    """The agent's site file: one bench of network-boot slots, its bench network on ``br0``."""
    network = f"""[service_env]
ssh_private_key = "{guest.client_key}"
[[netboot]]
name = "bench-net"
interface = "br0"
range_start = "{RANGE[0]}"
range_end = "{RANGE[1]}"
controller_url = "{CONTROLLER}"
{extra}"""
    return net_agent_site_file(work, bench="bench-net", port_kind="netboot", slots=slots, tables=network)


@dataclass
class FactoryOnBench:
    server_log: Path
    agent_log: Path
    dnsmasq_log: Path

    def logs(self) -> str:
        parts = []
        for path in (self.server_log, self.agent_log, self.dnsmasq_log):
            text = path.read_text(errors="replace") if path.exists() else "(none)"
            parts.append(f"--- {path.name} (tail) ---\n" + "\n".join(text.splitlines()[-30:]))
        return "\n".join(parts)


@contextlib.contextmanager
def factory_on_bench(
    ns: BenchNamespace,
    work: Path,
    guest: GuestImage,
    *,
    provisioning: Path | None = None,
    site_extra: str = "",
    netboot_dir: Path | None = None,
) -> Iterator[FactoryOnBench]:
    """``factory serve`` (the iPXE scripts, files and enrolment API) and ``factory line run`` (which
    starts dnsmasq on the bridge) inside the namespace; the environment names the test's database.
    ``netboot_dir``: the service environment the controller serves (default: the test guest's)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "FACTORY_NETBOOT_DIR": str(netboot_dir or guest.kernel.parent),
        "FACTORY_ORGANISATION": os.environ.get("FACTORY_ORGANISATION", "Test Constabulary"),
    }
    logs = FactoryOnBench(
        work / "server.log",
        work / "agent.log",
        Path(env["FACTORY_HOME"]) / "work" / "netboot" / "bench-net" / "dnsmasq.log",
    )
    ns.spawn(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", SERVER_ADDRESS,
         "--port", str(PORT), "--log-level", "warning"],
        log=str(logs.server_log), env=env,
    )  # fmt: skip
    site = site_file(work, guest, extra=site_extra)
    agent = [sys.executable, "-m", "factory.cli.main", "line", "run", "--config", str(site), "--technician", TECHNICIAN]
    if provisioning is not None:
        agent += ["--provisioning", str(provisioning)]
    spawned = [ns.procs[-1], ns.spawn(agent, log=str(logs.agent_log), env=env)]
    probe = [sys.executable, "-c", f"import urllib.request; urllib.request.urlopen('{CONTROLLER}/healthz', timeout=2)"]
    try:
        wait_until(
            lambda: _alive(spawned) and ns.run(*probe).returncode == 0 and "DHCP, IP range" in _text(logs.dnsmasq_log),
            timeout=90, interval=0.5, message="the factory serving the bench network",
        )  # fmt: skip
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{logs.logs()}") from None
    yield logs


def _alive(procs: list[subprocess.Popen]) -> bool:  # type: ignore[type-arg]
    """True while every process runs; one that exited fails the wait at once (its log says why)."""
    if any(p.poll() is not None for p in procs):
        raise AssertionError("a factory process exited")
    return True


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class PxeLaptop:
    mac: str
    serial: str
    nvme_serial: str
    nvme_image: Path
    serial_log: Path
    proc: subprocess.Popen  # type: ignore[type-arg]

    def serial_text(self) -> str:
        return _text(self.serial_log)

    def serial_bytes(self) -> bytes:
        return self.serial_log.read_bytes() if self.serial_log.exists() else b""


def _laptop_argv(tap: str, laptop: PxeLaptop, memory_mib: int, firmware: list[str], nic: str) -> list[str]:
    """What every test laptop has: TCG, one CPU, its serial console, its DMI serial, an NVMe drive
    (booted second) and ``nic`` on the bench network's tap (booted first), after ``firmware``."""
    return [
        "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", str(memory_mib), "-smp", "1", *firmware,
        "-nodefaults", "-no-user-config", "-display", "none", "-serial", f"file:{laptop.serial_log}",
        "-smbios", f"type=1,manufacturer=QEMU,product=DF-Laptop,serial={laptop.serial}",
        "-drive", f"file={laptop.nvme_image},if=none,id=nv0,format=raw",
        "-device", f"nvme,serial={laptop.nvme_serial},drive=nv0,bootindex=2",
        "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
        "-device", f"{nic},netdev=n0,mac={laptop.mac},bootindex=1",
    ]  # fmt: skip


def qemu_argv(tap: str, laptop: PxeLaptop, *, memory_mib: int = 384) -> list[str]:
    """A BIOS laptop (SeaBIOS) whose e1000 NIC's option ROM is Debian's iPXE."""
    return _laptop_argv(tap, laptop, memory_mib, [], f"e1000,romfile={IPXE_ROM}")


@contextlib.contextmanager
def _powered_on(
    ns: BenchNamespace, work: Path, mac: str, serial: str, nvme_serial: str, disk_mib: int, argv: ArgvFor
) -> Iterator[PxeLaptop]:
    """A laptop with a fresh disk full of the test pattern, started by ``argv(tap, laptop)``."""
    work.mkdir(parents=True, exist_ok=True)
    image = work / "nvme.img"
    make_patterned_disk(image, disk_mib << 20)
    tap = ns.add_tap(f"tap{mac[-2:]}")
    laptop = PxeLaptop(mac, serial, nvme_serial, image, work / "serial.log", None)  # type: ignore[arg-type]
    laptop.proc = ns.spawn(argv(tap, laptop), log=str(work / "qemu.log"))
    yield laptop


@contextlib.contextmanager
def pxe_laptop(
    ns: BenchNamespace, work: Path, *, mac: str, serial: str, nvme_serial: str, disk_mib: int = 16
) -> Iterator[PxeLaptop]:
    """Power on a laptop (a fresh disk full of the test pattern) that boots from the network first."""
    with _powered_on(ns, work, mac, serial, nvme_serial, disk_mib, qemu_argv) as laptop:
        yield laptop


# UEFI with Secure Boot on and Microsoft's keys enrolled (Debian's ovmf): the 4 MiB secure-boot
# build, which needs SMM, and a copy of the variable store that holds PK/KEK/db/dbx with Microsoft's
# certificates (the third-party UEFI CA 2011 among them).
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd")
OVMF_VARS_MS = Path("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
SECURE_BOOT_ON = "secureboot: Secure boot enabled"  # the guest kernel's own word, on the serial console


def secure_boot_qemu_argv(tap: str, laptop: PxeLaptop, vars_file: Path, *, memory_mib: int = 512) -> list[str]:
    """A UEFI laptop with Secure Boot on. Its NIC is virtio-net with no option ROM (``romfile=``), so
    the firmware's own, signed-in driver does PXE (an unsigned iPXE ROM would not load)."""
    firmware = [
        "-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on",
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,unit=1,file={vars_file}",
    ]  # fmt: skip
    return _laptop_argv(tap, laptop, memory_mib, firmware, "virtio-net-pci,romfile=")


@contextlib.contextmanager
def secure_boot_laptop(
    ns: BenchNamespace, work: Path, *, mac: str, serial: str, nvme_serial: str, disk_mib: int = 16
) -> Iterator[PxeLaptop]:
    """Power on a UEFI laptop with Secure Boot on that boots from the network first."""
    work.mkdir(parents=True, exist_ok=True)
    vars_file = work / "OVMF_VARS.fd"
    shutil.copyfile(OVMF_VARS_MS, vars_file)

    def argv(tap: str, laptop: PxeLaptop) -> list[str]:
        return secure_boot_qemu_argv(tap, laptop, vars_file)

    with _powered_on(ns, work, mac, serial, nvme_serial, disk_mib, argv) as laptop:
        yield laptop


def service_env_with_virtio(guest: GuestImage, out: Path) -> Path:
    """The test guest's service environment plus the virtio-net driver (the Secure Boot laptop's NIC):
    its initramfs with a second cpio archive appended (the kernel unpacks both, the later files win)
    holding the modules and the guest's module list with them added. The kernel is the guest's own,
    Debian-signed one. Returns the directory to serve (``FACTORY_NETBOOT_DIR``)."""
    out.mkdir(parents=True, exist_ok=True)
    moddir = Path("/lib/modules") / guest.kernel_version
    extra = _with_dependencies(moddir, ["virtio_pci", "virtio_net"])
    listed = subprocess.run(
        ["cpio", "-i", "--quiet", "--to-stdout", "etc/guest-modules"],
        stdin=guest.initramfs.open("rb"), capture_output=True, check=True, timeout=60,
    ).stdout.decode().split()  # fmt: skip
    overlay = out / "overlay"
    (overlay / "lib" / "modules").mkdir(parents=True, exist_ok=True)
    (overlay / "etc").mkdir(exist_ok=True)
    for module in extra:
        shutil.copyfile(moddir / module, overlay / "lib" / "modules" / Path(module).name)
    names = listed + [Path(m).name for m in extra if Path(m).name not in listed]
    (overlay / "etc" / "guest-modules").write_text("\n".join(names) + "\n")
    members = "\n".join(["etc/guest-modules", *(f"lib/modules/{Path(m).name}" for m in extra)]) + "\n"
    appended = subprocess.run(["cpio", "-o", "--quiet", "-H", "newc"], input=members.encode(), cwd=overlay,
                              capture_output=True, check=True, timeout=60).stdout  # fmt: skip
    # Compressed (the kernel unpacks zstd): GRUB fetches it by TFTP in 1 KiB blocks, a third as many.
    whole = guest.initramfs.read_bytes() + appended
    packed = subprocess.run(["zstd", "-q", "-6", "-T0", "-c"], input=whole, capture_output=True, check=True,
                            timeout=120).stdout  # fmt: skip
    (out / "initramfs.cpio").write_bytes(packed)
    shutil.copyfile(guest.kernel.parent / "bzImage", out / "bzImage")
    return out


def _with_dependencies(moddir: Path, names: list[str]) -> list[str]:
    """Module paths (relative to ``moddir``) for ``names`` and what they need, dependencies first."""
    deps = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        path, _, needs = line.partition(":")
        deps[Path(path).name.split(".ko")[0].replace("-", "_")] = (path, needs.split())
    ordered: list[str] = []
    for name in names:
        path, needs = deps[name]
        for need in [*reversed(needs), path]:
            if need not in ordered:
                ordered.append(need)
    return ordered
