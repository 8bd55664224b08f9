"""Network boot on a bench network: Debian's dnsmasq (DHCP + TFTP) chain-loads iPXE, and iPXE
fetches its script from the controller over HTTP.

The sequence (docs/operations.md has the picture):

1. The laptop's firmware PXE client asks for an address. dnsmasq answers with one from the bench
   range and, by TFTP, an iPXE binary (``undionly.kpxe`` for BIOS, ``snponly.efi`` for UEFI), taken
   from Debian's ``ipxe`` package. That iPXE is not signed for UEFI Secure Boot: a laptop with Secure
   Boot on fetches it and does not run it (``TftpSent`` with no iPXE request after it).
2. iPXE asks again, now with user class ``iPXE``; dnsmasq gives it the controller's chain script
   (``/netboot/boot.ipxe``), which asks the controller for the script of this very NIC:
   ``/netboot/ipxe/<mac>``.
3. The controller answers per MAC: work to do, the service environment's kernel and initramfs with a
   one-time boot token on the kernel command line; work done, boot from the internal disk.

This module only builds text and runs the process; no database here (the decision is intake's).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Debian's ipxe package: the first-stage binaries dnsmasq serves by TFTP.
IPXE_DIR = Path("/usr/lib/ipxe")
BIOS_LOADER = "undionly.kpxe"
UEFI_LOADER = "snponly.efi"
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

    @property
    def chain_url(self) -> str:
        return self.controller_url.rstrip("/") + CHAIN_PATH


def dnsmasq_conf(net: BenchNetwork, *, tftp_root: Path, lease_file: Path, log_file: Path, user: str) -> str:
    """dnsmasq's configuration for one bench network: DHCP and TFTP only (``port=0``: no DNS)."""
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
            f"dhcp-boot=tag:!ipxe,tag:efi64,{UEFI_LOADER}",
            f"dhcp-boot=tag:!ipxe,tag:!efi64,{BIOS_LOADER}",
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


@dataclass(frozen=True)
class DhcpEvent:
    """One DHCP exchange dnsmasq logged: ``DHCPDISCOVER``/``DHCPACK``..., and who asked."""

    kind: str
    mac: str
    address: str | None
    ipxe: bool  # the request carried user class iPXE (the second stage)


@dataclass(frozen=True)
class TftpSent:
    """dnsmasq sent a whole file by TFTP (``dnsmasq-tftp[PID]: sent PATH to ADDRESS``, logged with
    or without ``log-dhcp``): the path is the file's path on the host, the address the laptop's."""

    path: str
    address: str


BootLogEvent = DhcpEvent | TftpSent
_LOG_LINE = re.compile(r"dnsmasq-dhcp\[\d+\]: (?P<id>\d+) (?P<kind>DHCP[A-Z]+)\(\S+\)\s+(?P<rest>.*)$")
_USER_CLASS = re.compile(r"dnsmasq-dhcp\[\d+\]: (?P<id>\d+) user class: (?P<cls>.*)$")
_TFTP_SENT = re.compile(r"dnsmasq-tftp\[\d+\]: sent (?P<path>\S+) to (?P<address>[0-9.]+)\s*$")


def dhcp_events(log_text: str) -> list[DhcpEvent]:
    """The DHCP exchanges in a dnsmasq log (``log-dhcp``), oldest first.

    dnsmasq numbers each exchange; the user-class line shares the number of its request.
    """
    ipxe_ids: set[str] = set()
    events: list[tuple[str, str, str, str | None]] = []
    for line in log_text.splitlines():
        if (m := _USER_CLASS.search(line)) is not None:
            if "iPXE" in m.group("cls"):
                ipxe_ids.add(m.group("id"))
            continue
        if (m := _LOG_LINE.search(line)) is not None and (found := _mac_and_address(m)) is not None:
            events.append((m.group("id"), m.group("kind"), *found))
    return [DhcpEvent(kind, mac, addr, ident in ipxe_ids) for ident, kind, mac, addr in events]


def tftp_sends(log_text: str) -> list[TftpSent]:
    """The files dnsmasq sent by TFTP, oldest first (a failed or aborted transfer is not one)."""
    return [e for e in boot_log_events(log_text) if isinstance(e, TftpSent)]


def boot_log_events(log_text: str, ipxe_ids: set[str] | None = None) -> list[BootLogEvent]:
    """The DHCP exchanges and TFTP sends in a dnsmasq log, in the log's order.

    dnsmasq logs an exchange's ``user class:`` line before its ``DHCP...`` lines, so an exchange is
    known to be iPXE's as it is read. ``ipxe_ids`` carries the exchanges seen to be iPXE's from one
    call to the next, for a log read as it grows (it is updated in place).
    """
    ids = ipxe_ids if ipxe_ids is not None else set()
    events: list[BootLogEvent] = []
    for line in log_text.splitlines():
        if (m := _USER_CLASS.search(line)) is not None:
            if "iPXE" in m.group("cls"):
                ids.add(m.group("id"))
        elif (m := _LOG_LINE.search(line)) is not None:
            if (found := _mac_and_address(m)) is not None:
                events.append(DhcpEvent(m.group("kind"), *found, m.group("id") in ids))
        elif (m := _TFTP_SENT.search(line)) is not None and _looks_ipv4(m.group("address")):
            events.append(TftpSent(m.group("path"), m.group("address")))
    return events


def _mac_and_address(m: re.Match[str]) -> tuple[str, str | None] | None:
    words = m.group("rest").split()
    mac = next((w for w in words if _MAC.match(w.lower())), None)
    if mac is None:
        return None
    return mac.lower(), next((w for w in words if _looks_ipv4(w)), None)


def _looks_ipv4(word: str) -> bool:
    try:
        ipaddress.IPv4Address(word)
    except ValueError:
        return False
    return True


class BootLogTail:
    """A dnsmasq log read as it grows: each ``read`` gives the events of the whole lines added since
    the last one (a line being written waits for the next read). A log that shrank is a new one
    (dnsmasq restarted): it is read from its start."""

    def __init__(self, log_file: Path) -> None:
        self.log_file = log_file
        self._offset = 0
        self._ipxe_ids: set[str] = set()

    def read(self) -> list[BootLogEvent]:
        try:
            with self.log_file.open("rb") as f:
                if os.fstat(f.fileno()).st_size < self._offset:
                    self._offset = 0
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        whole = data[: data.rfind(b"\n") + 1]
        self._offset += len(whole)
        if len(self._ipxe_ids) > 1024:  # only the exchange being logged matters; its next packet says it again
            self._ipxe_ids.clear()
        return boot_log_events(whole.decode(errors="replace"), self._ipxe_ids)


def lease_addresses(lease_file: Path, mac: str) -> list[str]:
    """Every address dnsmasq holds a lease on for ``mac`` (lease file: ``expiry mac ip host client-id``;
    the firmware's, iPXE's and the service environment's requests may differ in client id)."""
    try:
        lines = lease_file.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [p[2] for p in (line.split() for line in lines) if len(p) >= 3 and p[1].lower() == mac.lower()]


def lease_address(lease_file: Path, mac: str) -> str | None:
    """The first address dnsmasq leased to ``mac``, or None."""
    found = lease_addresses(lease_file, mac)
    return found[0] if found else None


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
        """Write the configuration and fill the TFTP root with Debian's iPXE binaries.

        :raises DnsmasqError: dnsmasq or the iPXE binaries are not installed.
        """
        if shutil.which(self.binary) is None:
            raise DnsmasqError(f"{self.binary} is not installed (Debian package dnsmasq-base)")
        self.tftp_root.mkdir(parents=True, exist_ok=True)
        for loader in (BIOS_LOADER, UEFI_LOADER):
            source = self.ipxe_dir / loader
            if not source.is_file():
                raise DnsmasqError(f"{source} is missing (Debian package ipxe)")
            shutil.copyfile(source, self.tftp_root / loader)
        self.lease_file.touch()
        who = user or os.environ.get("USER") or "root"
        conf = dnsmasq_conf(
            self.net, tftp_root=self.tftp_root, lease_file=self.lease_file, log_file=self.log_file, user=who
        )
        self.conf.write_text(conf)

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
