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
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.netns import RANGE, SERVER_ADDRESS, BenchNamespace
from harness.qemu_guest import GuestImage, make_patterned_disk
from harness.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
PORT = 8080
CONTROLLER = f"http://{SERVER_ADDRESS}:{PORT}"
IPXE_ROM = "/usr/lib/ipxe/qemu/pxe-e1000.rom"
GOLDEN_MARKER = b"DF-GOLDEN-IMAGE-BOOTED"


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


def site_file(work: Path, guest: GuestImage, *, slots: int = 2, extra: str = "") -> Path:
    """The agent's site file: one bench of network-boot slots, its bench network on ``br0``."""
    slot_list = ", ".join(f'{{position = {n}, port_kind = "netboot"}}' for n in range(1, slots + 1))
    path = work / "site.toml"
    path.write_text(
        f"""agent = "net-agent"
erase_processes = 0
[[bench]]
name = "bench-net"
slots = [{slot_list}]
[service_env]
ssh_private_key = "{guest.client_key}"
[[netboot]]
name = "bench-net"
interface = "br0"
range_start = "{RANGE[0]}"
range_end = "{RANGE[1]}"
controller_url = "{CONTROLLER}"
{extra}"""
    )
    return path


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
    ns: BenchNamespace, work: Path, guest: GuestImage, *, provisioning: Path | None = None, site_extra: str = ""
) -> Iterator[FactoryOnBench]:
    """``factory serve`` (the iPXE scripts, files and enrolment API) and ``factory line run`` (which
    starts dnsmasq on the bridge) inside the namespace; the environment names the test's database."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "FACTORY_NETBOOT_DIR": str(guest.kernel.parent)}
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
    agent = [
        sys.executable,
        "-m",
        "factory.cli.main",
        "line",
        "run",
        "--config",
        str(site_file(work, guest, extra=site_extra)),
    ]
    if provisioning is not None:
        agent += ["--provisioning", str(provisioning)]
    ns.spawn(agent, log=str(logs.agent_log), env=env)
    probe = [sys.executable, "-c", f"import urllib.request; urllib.request.urlopen('{CONTROLLER}/healthz', timeout=2)"]
    try:
        wait_until(
            lambda: ns.run(*probe).returncode == 0 and "DHCP, IP range" in _text(logs.dnsmasq_log),
            timeout=90, interval=0.5, message="the factory serving the bench network",
        )  # fmt: skip
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{logs.logs()}") from None
    yield logs


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


def qemu_argv(tap: str, laptop: PxeLaptop, *, memory_mib: int = 384) -> list[str]:
    return [
        "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", str(memory_mib), "-smp", "1",
        "-nodefaults", "-no-user-config", "-display", "none", "-serial", f"file:{laptop.serial_log}",
        "-smbios", f"type=1,manufacturer=QEMU,product=DF-Laptop,serial={laptop.serial}",
        "-drive", f"file={laptop.nvme_image},if=none,id=nv0,format=raw",
        "-device", f"nvme,serial={laptop.nvme_serial},drive=nv0,bootindex=2",
        "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
        "-device", f"e1000,netdev=n0,mac={laptop.mac},romfile={IPXE_ROM},bootindex=1",
    ]  # fmt: skip


@contextlib.contextmanager
def pxe_laptop(
    ns: BenchNamespace, work: Path, *, mac: str, serial: str, nvme_serial: str, disk_mib: int = 16
) -> Iterator[PxeLaptop]:
    """Power on a laptop (a fresh disk full of the test pattern) that boots from the network first."""
    work.mkdir(parents=True, exist_ok=True)
    image = work / "nvme.img"
    make_patterned_disk(image, disk_mib << 20)
    tap = ns.add_tap(f"tap{mac[-2:]}")
    laptop = PxeLaptop(mac, serial, nvme_serial, image, work / "serial.log", None)  # type: ignore[arg-type]
    laptop.proc = ns.spawn(qemu_argv(tap, laptop), log=str(work / "qemu.log"))
    yield laptop
