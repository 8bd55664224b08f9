"""Laptops that fetched a network boot loader and never ran it: UEFI Secure Boot refused it, most likely.

What a stall means depends on the loader the bench network gives UEFI firmware (``uefi_boot``):

* ``shimx64.efi`` (the default, the Secure Boot chain): shim is signed by the Microsoft UEFI CA 2011,
  the "third party" CA. A laptop that fetches shim and never asks for ``grubx64.efi`` refused shim:
  its firmware does not trust that CA (Secured-core PCs ship with it off, "Allow Microsoft 3rd Party
  UEFI CA" in Lenovo's set-up; a firmware holding only the 2023 CAs, or shim revoked in dbx), or a
  Windows update raised the laptop's SBAT level past this shim (the screen says "SBAT self-check
  failed"). One that fetches ``grubx64.efi`` and never asks for ``grub/grub.cfg``: shim refused GRUB
  (its SBAT generation revoked). Both mean the bench's shim-signed/grub-efi-amd64-signed are older
  than the laptop's revocations, or the CA setting is off; neither is fixed by the bench.
* ``snponly.efi`` (iPXE, a bench set to ``uefi_boot = "ipxe"``): not signed; a laptop with Secure
  Boot on refuses it, so iPXE never asks for its own address (a request with user class ``iPXE``).

dnsmasq's log shows the firmware's ``DHCPACK`` and each ``sent PATH to ADDRESS``; a laptop whose next
step does not follow within ``LOADER_START_SECONDS`` is taken to be stuck there and the board says
what to do. No job is started or failed for it; when it later goes on, the board says so.

BIOS laptops (``undionly.kpxe``) have no Secure Boot and are not watched. Pure decisions: the caller
gives the log's events and the time (``netboot_service`` polls the logs, the controller shows it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from hardware_drivers.netboot import UEFI_LOADER, BootLogEvent, DhcpEvent, TftpSent
from hardware_drivers.netboot_grub import GRUB_CONFIG, GRUB_LOADER, SHIM_LOADER

# From the end of the TFTP send to iPXE's first DHCP request a laptop takes a few seconds: the
# firmware verifies and starts the image, iPXE opens the NIC and asks at once (1-2 s on real
# laptops, under 10 s in a QEMU/TCG guest). A minute leaves room for a slow firmware (logo, image
# measurement into the TPM, a NIC whose link renegotiates when iPXE takes it over, a switch port
# with spanning tree holding the link 30 s), yet the hint is up before a technician gives up on the
# laptop. A laptop switched off in that minute gets the hint too: it says "probably".
LOADER_START_SECONDS = 60.0
SECURE_BOOT_MARK = "UEFI Secure Boot is probably on"  # in every note about a laptop stuck at the loader
# The file whose send shows the loader sent before it ran (None: iPXE's own DHCP request shows it).
NEXT_FILE: dict[str, str | None] = {SHIM_LOADER: GRUB_LOADER, GRUB_LOADER: GRUB_CONFIG, UEFI_LOADER: None}


@dataclass(frozen=True)
class LoaderNotStarted:
    """A laptop fetched the UEFI loader and did not run it within ``LOADER_START_SECONDS``."""

    network: str
    mac: str
    address: str
    loader: str = SHIM_LOADER  # the file it fetched and did not run


@dataclass(frozen=True)
class LoaderStarted:
    """A laptop said to be stuck at the loader ran it after all (its firmware's setting changed)."""

    network: str
    mac: str


_WHAT_TO_DO = {
    SHIM_LOADER: (
        "(the firmware refused the Microsoft-signed shim). In the firmware set-up (F2 on Dell, F10 on HP, "
        "F1 on Lenovo) allow the Microsoft 3rd Party UEFI CA (Secured-core laptops ship with it off; Lenovo: "
        "'Allow Microsoft 3rd Party UEFI CA'); if the screen says 'SBAT self-check failed', the laptop's "
        "revocations are newer than the bench's shim: update shim-signed on the bench. Or boot it from "
        "the bench's USB stick, then restart it"
    ),
    GRUB_LOADER: (
        "(shim refused the bench's GRUB: an SBAT revocation newer than the bench's GRUB). Update "
        "grub-efi-amd64-signed and shim-signed on the bench host, or boot it from the bench's USB stick, "
        "then restart it"
    ),
    UEFI_LOADER: (
        "(the bench's iPXE is not signed). Turn Secure Boot off in the firmware set-up "
        "(F2 on Dell, F10 on HP, F1 on Lenovo), or boot it from the bench's USB stick, then restart it"
    ),
}


def secure_boot_note(who: str, address: str, loader: str = SHIM_LOADER) -> str:
    """What the board says about a laptop stuck at ``loader`` (``who``: its serial, or its MAC)."""
    what = "the network boot loader" if loader == UEFI_LOADER else f"the network boot loader ({loader})"
    return f"{who} ({address}) fetched {what} but did not start it: {SECURE_BOOT_MARK} {_WHAT_TO_DO[loader]}"


def loader_started_note(who: str) -> str:
    return f"{who} now starts the network boot loader: its network boot goes on"


@dataclass
class LoaderWatch:
    """One bench network's laptops between the loader's TFTP send and iPXE's own DHCP request."""

    network: str
    limit: float = LOADER_START_SECONDS
    _macs: dict[str, str] = field(default_factory=dict, init=False)  # address -> MAC of its firmware's lease
    # MAC -> (when, address, loader): sent, its next step not seen yet
    _fetched: dict[str, tuple[float, str, str]] = field(default_factory=dict, init=False)
    _stuck: dict[str, str] = field(default_factory=dict, init=False)  # MAC -> loader: the board was told

    def seen(self, events: Iterable[BootLogEvent], now: float) -> list[LoaderStarted]:
        """Take the log's new events (in its order, read at ``now``); the stuck laptops that went on."""
        started: list[LoaderStarted] = []
        for event in events:
            if isinstance(event, TftpSent):
                mac = self._macs.get(event.address)
                if mac is not None:
                    started.extend(self._sent(mac, _tftp_name(event.path), event.address, now))
            elif isinstance(event, DhcpEvent) and event.ipxe:
                started.extend(self._went_on(event.mac))
            elif event.kind == "DHCPACK" and event.address is not None:
                self._macs[event.address] = event.mac  # the firmware's address: the TFTP line names only that
        return started

    def _sent(self, mac: str, name: str, address: str, now: float) -> list[LoaderStarted]:
        """A file sent to ``mac``: the step it was waiting for (it went on), and maybe a new wait."""
        started: list[LoaderStarted] = []
        waiting = self._fetched[mac][2] if mac in self._fetched else self._stuck.get(mac)
        if waiting is not None and NEXT_FILE[waiting] == name:
            started = self._went_on(mac)
        if name in NEXT_FILE and mac not in self._stuck:
            kept = self._fetched.get(mac)
            if kept is None or kept[2] != name:  # a retry of the same loader keeps the first send's time
                self._fetched[mac] = (now, address, name)
        return started

    def _went_on(self, mac: str) -> list[LoaderStarted]:
        self._fetched.pop(mac, None)
        if self._stuck.pop(mac, None) is not None:
            return [LoaderStarted(self.network, mac)]
        return []

    def overdue(self, now: float) -> list[LoaderNotStarted]:
        """The laptops whose loader has not started ``limit`` seconds after it was sent (each once)."""
        late = [(mac, at, loader) for mac, (when, at, loader) in self._fetched.items() if now - when >= self.limit]
        for mac, _, loader in late:
            del self._fetched[mac]
            self._stuck[mac] = loader
        return [LoaderNotStarted(self.network, mac, address, loader) for mac, address, loader in late]


def _tftp_name(path: str) -> str:
    """The file's name as the TFTP root has it (``grub/grub.cfg``): dnsmasq logs the host path."""
    parts = PurePosixPath(path).parts
    in_grub_dir = len(parts) >= 2 and parts[-2] == PurePosixPath(GRUB_CONFIG).parent.name
    return "/".join(parts[-2:]) if in_grub_dir else parts[-1]
