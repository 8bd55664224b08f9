"""Laptops that fetched the network boot loader and never ran it: UEFI Secure Boot, most likely.

Debian's iPXE (``snponly.efi``) is not signed by the Microsoft UEFI CA. A laptop with Secure Boot
on (police laptops ship that way) gets its address, fetches the loader by TFTP, then refuses to run
it ("Secure Boot violation" on its screen, or it quietly tries its next boot option), so iPXE never
asks for its own address. dnsmasq's log shows the first two (``DHCPACK``, ``sent .../snponly.efi
to ADDRESS``) and not the third (a request with user class ``iPXE``): after ``LOADER_START_SECONDS``
the laptop is taken to be stuck there and the board says what to do. No job is started or failed
for it; when it later runs iPXE (Secure Boot turned off) the board says so and the usual flow goes on.

BIOS laptops (``undionly.kpxe``) have no Secure Boot and are not watched. Pure decisions: the caller
gives the log's events and the time (``netboot_service`` polls the logs, the controller shows it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from hardware_drivers.netboot import UEFI_LOADER, BootLogEvent, DhcpEvent, TftpSent

# From the end of the TFTP send to iPXE's first DHCP request a laptop takes a few seconds: the
# firmware verifies and starts the image, iPXE opens the NIC and asks at once (1-2 s on real
# laptops, under 10 s in a QEMU/TCG guest). A minute leaves room for a slow firmware (logo, image
# measurement into the TPM, a NIC whose link renegotiates when iPXE takes it over, a switch port
# with spanning tree holding the link 30 s), yet the hint is up before a technician gives up on the
# laptop. A laptop switched off in that minute gets the hint too: it says "probably".
LOADER_START_SECONDS = 60.0
SECURE_BOOT_MARK = "UEFI Secure Boot is probably on"  # in every note about a laptop stuck at the loader


@dataclass(frozen=True)
class LoaderNotStarted:
    """A laptop fetched the UEFI loader and did not run it within ``LOADER_START_SECONDS``."""

    network: str
    mac: str
    address: str


@dataclass(frozen=True)
class LoaderStarted:
    """A laptop said to be stuck at the loader ran iPXE after all (Secure Boot turned off)."""

    network: str
    mac: str


def secure_boot_note(who: str, address: str) -> str:
    """What the board says about a laptop stuck at the loader (``who``: its serial, or its MAC)."""
    return (
        f"{who} ({address}) fetched the network boot loader but did not start it: {SECURE_BOOT_MARK} "
        "(the bench's iPXE is not signed). Turn Secure Boot off in the firmware set-up "
        "(F2 on Dell, F10 on HP, F1 on Lenovo), or boot it from the bench's USB stick, then restart it"
    )


def loader_started_note(who: str) -> str:
    return f"{who} now starts the network boot loader (Secure Boot off): its network boot goes on"


@dataclass
class LoaderWatch:
    """One bench network's laptops between the loader's TFTP send and iPXE's own DHCP request."""

    network: str
    limit: float = LOADER_START_SECONDS
    _macs: dict[str, str] = field(default_factory=dict, init=False)  # address -> MAC of its firmware's lease
    _fetched: dict[str, tuple[float, str]] = field(default_factory=dict, init=False)  # MAC -> (when, address)
    _stuck: set[str] = field(default_factory=set, init=False)  # MACs the board was told about

    def seen(self, events: Iterable[BootLogEvent], now: float) -> list[LoaderStarted]:
        """Take the log's new events (in its order, read at ``now``); the stuck laptops that ran iPXE."""
        started: list[LoaderStarted] = []
        for event in events:
            if isinstance(event, TftpSent):
                mac = self._macs.get(event.address)
                if mac is not None and PurePosixPath(event.path).name == UEFI_LOADER and mac not in self._stuck:
                    self._fetched.setdefault(mac, (now, event.address))  # a retry keeps the first send's time
            elif isinstance(event, DhcpEvent) and event.ipxe:
                self._fetched.pop(event.mac, None)
                if event.mac in self._stuck:
                    self._stuck.discard(event.mac)
                    started.append(LoaderStarted(self.network, event.mac))
            elif event.kind == "DHCPACK" and event.address is not None:
                self._macs[event.address] = event.mac  # the firmware's address: the TFTP line names only that
        return started

    def overdue(self, now: float) -> list[LoaderNotStarted]:
        """The laptops whose loader has not started ``limit`` seconds after it was sent (each once)."""
        late = [(mac, address) for mac, (when, address) in self._fetched.items() if now - when >= self.limit]
        for mac, _ in late:
            del self._fetched[mac]
            self._stuck.add(mac)
        return [LoaderNotStarted(self.network, mac, address) for mac, address in late]
