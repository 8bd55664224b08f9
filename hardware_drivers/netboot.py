"""Network boot on a bench network: Debian's dnsmasq (DHCP + TFTP) hands each laptop its first loader.

The sequence (docs/operations.md has the picture):

1. The laptop's firmware PXE client asks for an address. dnsmasq answers with one from the bench
   range and a loader by TFTP: ``undionly.kpxe`` (Debian's iPXE) for BIOS; for UEFI, by default
   the Secure Boot chain of ``netboot_grub`` (``shimx64.efi`` -> ``grubx64.efi``), which runs with
   Secure Boot on or off. A bench network set to ``uefi_boot = "ipxe"`` gives UEFI ``snponly.efi``
   instead, which is not signed: a laptop with Secure Boot on fetches it and never runs it.
2. iPXE asks again, now with user class ``iPXE``; dnsmasq gives it the controller's chain script
   (``/netboot/boot.ipxe``), which asks the controller for the script of this very NIC:
   ``/netboot/ipxe/<mac>``. GRUB cannot fetch over HTTP: dnsmasq's ``dhcp-script``
   (``netboot_hook``) asks the controller for GRUB's per-MAC config at the firmware's DHCPACK and
   leaves it in the TFTP root.
3. The controller answers per MAC: work to do, the service environment's kernel and initramfs with a
   one-time boot token on the kernel command line; work done, boot from the internal disk.

This module only builds text and runs the process; no database here (the decision is intake's).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hardware_drivers.netboot_grub import SHIM_LOADER, SignedChainMissing, install_signed_chain

# The log readers live in netboot_log; callers keep importing them from here (explicit re-exports).
from hardware_drivers.netboot_log import BootLogEvent as BootLogEvent
from hardware_drivers.netboot_log import BootLogTail as BootLogTail
from hardware_drivers.netboot_log import DhcpEvent as DhcpEvent
from hardware_drivers.netboot_log import TftpSent as TftpSent
from hardware_drivers.netboot_log import boot_log_events as boot_log_events
from hardware_drivers.netboot_log import dhcp_events as dhcp_events
from hardware_drivers.netboot_log import lease_address as lease_address
from hardware_drivers.netboot_log import lease_addresses as lease_addresses
from hardware_drivers.netboot_log import tftp_sends as tftp_sends

# Debian's ipxe package: the first-stage binaries dnsmasq serves by TFTP.
IPXE_DIR = Path("/usr/lib/ipxe")
BIOS_LOADER = "undionly.kpxe"
UEFI_LOADER = "snponly.efi"  # iPXE for UEFI: unsigned, so only for laptops with Secure Boot off
UEFI_BOOTS = ("shim", "ipxe")  # a bench network's uefi_boot: the signed chain (default) or iPXE
REPO_ROOT = Path(__file__).resolve().parents[1]  # for the hook dnsmasq runs
CHAIN_PATH = "/netboot/boot.ipxe"
_IFNAME = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class NetbootConfigError(ValueError):
    """A bench network description that dnsmasq would misread or refuse."""


class DnsmasqError(RuntimeError):
    """dnsmasq could not be started or exited on its own; the message carries its log tail."""


@dataclass(frozen=True)
class BenchNetwork:
    """One bench network that dnsmasq serves: the interface it listens on, its DHCP range, and the
    controller URL (as the laptops reach it) that iPXE fetches its scripts from."""

    name: str
    interface: str
    range_start: str
    range_end: str
    controller_url: str
    netmask: str = "255.255.255.0"
    lease_seconds: int = 600
    uefi_boot: str = "shim"  # what UEFI firmware is given: "shim" (Secure Boot chain) or "ipxe"

    def __post_init__(self) -> None:
        if not _IFNAME.match(self.interface):
            raise NetbootConfigError(
                f"bench network {self.name}: interface '{self.interface}' is not an interface name"
            )
        try:
            start = ipaddress.IPv4Address(self.range_start)
            end = ipaddress.IPv4Address(self.range_end)
            net = ipaddress.IPv4Network(f"{start}/{self.netmask}", strict=False)
        except ValueError as exc:
            raise NetbootConfigError(f"bench network {self.name}: {exc}") from exc
        if end < start or end not in net:
            raise NetbootConfigError(f"bench network {self.name}: range {start}-{end} is not one range of {net}")
        if not self.controller_url.startswith(("http://", "https://")) or any(c in self.controller_url for c in ' \n"'):
            raise NetbootConfigError(f"bench network {self.name}: controller_url must be an http(s) URL")
        if not 120 <= self.lease_seconds <= 86400:
            raise NetbootConfigError(f"bench network {self.name}: lease_seconds must be 120-86400")
        if self.uefi_boot not in UEFI_BOOTS:
            raise NetbootConfigError(f"bench network {self.name}: uefi_boot must be one of {', '.join(UEFI_BOOTS)}")

    @property
    def uefi_loader(self) -> str:
        return SHIM_LOADER if self.uefi_boot == "shim" else UEFI_LOADER

    @property
    def chain_url(self) -> str:
        return self.controller_url.rstrip("/") + CHAIN_PATH


def dnsmasq_conf(
    net: BenchNetwork, *, tftp_root: Path, lease_file: Path, log_file: Path, user: str, hook: Path | None = None
) -> str:
    """dnsmasq's configuration for one bench network: DHCP and TFTP only (``port=0``: no DNS).
    ``hook``: the ``dhcp-script`` that leaves GRUB's per-MAC decision (the Secure Boot chain)."""
    # The hook runs again when a known laptop's lease is renewed (each boot asks anew), as dnsmasq's
    # own user (not root, dnsmasq's default for scripts), which must own what tftp-secure serves.
    hooked = [f"dhcp-script={hook}", f"dhcp-scriptuser={user}", "script-on-renewal"] if hook is not None else []
    return "\n".join(
        [
            f"# bench network {net.name}: written by the factory line; edits are overwritten",
            "port=0",
            f"interface={net.interface}",
            "bind-interfaces",
            f"user={user}",
            f"dhcp-range={net.range_start},{net.range_end},{net.netmask},{net.lease_seconds}s",
            "dhcp-authoritative",
            "dhcp-option=option:router",  # no gateway: the laptops talk to the controller only
            f"dhcp-leasefile={lease_file}",
            "log-dhcp",
            f"log-facility={log_file}",
            "enable-tftp",
            f"tftp-root={tftp_root}",
            "tftp-secure",
            # The second request, from iPXE itself, carries user class "iPXE": it gets the chain script.
            "dhcp-userclass=set:ipxe,iPXE",
            "dhcp-match=set:efi64,option:client-arch,7",
            "dhcp-match=set:efi64,option:client-arch,9",
            f"dhcp-boot=tag:ipxe,{net.chain_url}",
            f"dhcp-boot=tag:!ipxe,tag:efi64,{net.uefi_loader}",
            f"dhcp-boot=tag:!ipxe,tag:!efi64,{BIOS_LOADER}",
            *hooked,
            "",
        ]
    )


def ipxe_chain_script(controller_url: str) -> str:
    """What every iPXE gets first: fetch the script of the NIC it booted from (``netX``)."""
    base = controller_url.rstrip("/")
    return _script(
        f"chain --autofree {base}/netboot/ipxe/${{netX/mac:hexhyp}} || goto failed",
        "exit",
        ":failed",
        f"echo Device Factory: no boot script from {base}; retrying in 10 s",
        "sleep 10",
        f"chain --autofree {base}{CHAIN_PATH}",
    )


def ipxe_service_script(kernel_url: str, initrd_url: str, cmdline: str) -> str:
    """Boot the service environment; ``cmdline`` carries the boot token and the enrolment URL."""
    return _script(
        "echo Device Factory: service environment",
        f"kernel {kernel_url} initrd=initrd {cmdline}",
        f"initrd --name initrd {initrd_url}",
        "boot",
    )


def ipxe_local_script(reason: str) -> str:
    """Work done: boot the internal disk (``exit`` hands back to the firmware's next boot device)."""
    return _script(f"echo Device Factory: {_one_line(reason)}", "sanboot --no-describe --drive 0x80 || exit")


def ipxe_hold_script(reason: str) -> str:
    """Neither: the laptop stops at iPXE's prompt with the reason, booting nothing."""
    return _script(f"echo Device Factory: held: {_one_line(reason)}", "echo Ask a technician.", "shell")


def _script(*lines: str) -> str:
    return "\n".join(("#!ipxe", *lines, ""))


def _one_line(text: str) -> str:
    return re.sub(r"[^\x20-\x7e]", " ", text)[:200]


def mac_from_hexhyp(value: str) -> str:
    """``52-54-00-12-34-56`` (iPXE's ``:hexhyp``) or any colon form -> ``52:54:00:12:34:56``.

    :raises NetbootConfigError: not a MAC.
    """
    mac = value.strip().lower().replace("-", ":")
    if not _MAC.match(mac):
        raise NetbootConfigError(f"'{value[:40]}' is not a MAC address")
    return mac


class Dnsmasq:
    """A dnsmasq process serving one bench network, with its own configuration, TFTP root, lease
    file and log under ``work_dir``. Start and stop it by its own PID only."""

    def __init__(
        self,
        net: BenchNetwork,
        work_dir: Path,
        *,
        binary: str = "dnsmasq",
        ipxe_dir: Path = IPXE_DIR,
        wrapper: Sequence[str] = (),
    ) -> None:
        self.net = net
        self.wrapper = tuple(wrapper)  # e.g. ("ip", "netns", "exec", NS): where the bench network is
        self.dir = work_dir
        self.binary = binary
        self.ipxe_dir = ipxe_dir
        self.tftp_root = work_dir / "tftp"
        self.conf = work_dir / "dnsmasq.conf"
        self.lease_file = work_dir / "dnsmasq.leases"
        self.log_file = work_dir / "dnsmasq.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def prepare(self, user: str | None = None) -> None:
        """Write the configuration and fill the TFTP root with Debian's iPXE binaries (and, for the
        Secure Boot chain, shim, GRUB and the hook that leaves GRUB its per-MAC decision).

        :raises DnsmasqError: dnsmasq, the iPXE binaries or the signed chain are not installed.
        """
        if shutil.which(self.binary) is None:
            raise DnsmasqError(f"{self.binary} is not installed (Debian package dnsmasq-base)")
        self.tftp_root.mkdir(parents=True, exist_ok=True)
        for loader in (BIOS_LOADER, UEFI_LOADER):
            source = self.ipxe_dir / loader
            if not source.is_file():
                raise DnsmasqError(f"{source} is missing (Debian package ipxe)")
            shutil.copyfile(source, self.tftp_root / loader)
        hook = self._install_signed_chain() if self.net.uefi_boot == "shim" else None
        self.lease_file.touch()
        who = user or os.environ.get("USER") or "root"
        conf = dnsmasq_conf(
            self.net, tftp_root=self.tftp_root, lease_file=self.lease_file, log_file=self.log_file, user=who, hook=hook
        )
        self.conf.write_text(conf)

    def _install_signed_chain(self) -> Path:
        """shim, GRUB and its config in the TFTP root; the hook script dnsmasq runs. Returns the hook."""
        try:
            install_signed_chain(self.tftp_root)
        except SignedChainMissing as exc:
            raise DnsmasqError(str(exc)) from exc
        settings = self.dir / "hook.json"
        settings.write_text(json.dumps({"tftp_root": str(self.tftp_root), "controller_url": self.net.controller_url}))
        hook = self.dir / "dhcp-hook"
        command = [sys.executable, "-m", "hardware_drivers.netboot_hook", str(settings)]
        hook.write_text(
            "#!/bin/sh\n# dnsmasq's dhcp-script: written by the factory line\n"
            f'PYTHONPATH={shlex.quote(str(REPO_ROOT))} exec {shlex.join(command)} "$@"\n'
        )
        hook.chmod(0o755)
        return hook

    def start(self, timeout: float = 5.0) -> None:
        """Start dnsmasq in the foreground of its own process group; wait until it logs that it runs.

        :raises DnsmasqError: it exited (bad interface, port taken...) with its log's last lines.
        """
        self.prepare(user="root" if os.geteuid() == 0 else None)
        self.log_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [*self.wrapper, self.binary, "--keep-in-foreground", f"--conf-file={self.conf}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise DnsmasqError(f"dnsmasq for {self.net.name} exited ({self.proc.returncode}): {err.strip()[-500:]}")
            if "DHCP, IP range" in self.log_text():
                return
            time.sleep(0.05)
        self.stop()
        raise DnsmasqError(f"dnsmasq for {self.net.name} did not start within {timeout:g} s: {self.log_text()[-500:]}")

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def events(self) -> Sequence[DhcpEvent]:
        return dhcp_events(self.log_text())

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
