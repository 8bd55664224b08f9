"""dnsmasq's log and lease file read back: the DHCP exchanges and TFTP sends of the laptops on a bench
network (``log-dhcp``), read whole or as the log grows, and the addresses leased to a MAC.

Split from ``netboot.py`` (which re-exports these names) so the process and its configuration stay
apart from reading what it did.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


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
