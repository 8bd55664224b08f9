"""What the project hands dnsmasq and iPXE, and what it reads back from dnsmasq's log: checked as
text (the namespace tests run them for real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardware_drivers.netboot import (
    BenchNetwork,
    BootLogTail,
    DhcpEvent,
    NetbootConfigError,
    TftpSent,
    boot_log_events,
    dhcp_events,
    dnsmasq_conf,
    ipxe_hold_script,
    ipxe_local_script,
    mac_from_hexhyp,
    tftp_sends,
)

NET = BenchNetwork("bench-net-1", "br0", "198.18.0.100", "198.18.0.150", "http://198.18.0.1:8000")
LOG = """Dec  6 08:30:06 dnsmasq-dhcp[18125]: 3501133066 vendor class: PXEClient
Dec  6 08:30:06 dnsmasq-dhcp[18125]: 3501133066 DHCPACK(br0) 198.18.0.112 52:54:00:0b:00:01
Dec  6 08:30:07 dnsmasq-dhcp[18125]: 125477176 user class: iPXE
Dec  6 08:30:07 dnsmasq-dhcp[18125]: 125477176 DHCPACK(br0) 198.18.0.112 52:54:00:0b:00:01
"""


def test_dnsmasq_serves_dhcp_and_tftp_only_and_sends_ipxe_to_the_controller(tmp_path: Path) -> None:
    conf = dnsmasq_conf(
        NET, tftp_root=tmp_path / "tftp", lease_file=tmp_path / "l", log_file=tmp_path / "g", user="root"
    )
    lines = conf.splitlines()
    assert "port=0" in lines and "interface=br0" in lines and "enable-tftp" in lines
    assert "dhcp-range=198.18.0.100,198.18.0.150,255.255.255.0,600s" in lines
    assert "dhcp-boot=tag:ipxe,http://198.18.0.1:8000/netboot/boot.ipxe" in lines
    assert "dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe" in lines
    assert "dhcp-boot=tag:!ipxe,tag:efi64,shimx64.efi" in lines  # the Secure Boot chain, by default


def test_the_log_tells_the_firmware_request_from_ipxes() -> None:
    events = dhcp_events(LOG)
    assert [(e.kind, e.mac, e.address, e.ipxe) for e in events] == [
        ("DHCPACK", "52:54:00:0b:00:01", "198.18.0.112", False),
        ("DHCPACK", "52:54:00:0b:00:01", "198.18.0.112", True),
    ]


def test_scripts_and_macs() -> None:
    assert mac_from_hexhyp("52-54-00-0B-00-01") == "52:54:00:0b:00:01"
    with pytest.raises(NetbootConfigError):
        mac_from_hexhyp("52-54-00")
    assert "sanboot --no-describe --drive 0x80" in ipxe_local_script("done")
    held = ipxe_hold_script("quarantined\nboot evil")
    assert "boot evil" in held and "\nboot evil" not in held  # one line: no command injected


# dnsmasq 2.90's own lines (Debian 12), from a UEFI first stage, the TFTP send of snponly.efi, a
# TFTP request for a missing file, and iPXE's request, logged by the project's configuration (dnsmasq
# ends a DHCP line with a space: \x20).
UEFI_LOG = """Dec  7 18:54:01 dnsmasq-dhcp[20764]: 2470889267 vendor class: PXEClient:Arch:00007
Dec  7 18:54:01 dnsmasq-dhcp[20764]: 2470889267 DHCPREQUEST(br0) 198.18.0.112 52:54:00:0b:00:01\x20
Dec  7 18:54:01 dnsmasq-dhcp[20764]: 2470889267 tags: efi64, br0
Dec  7 18:54:01 dnsmasq-dhcp[20764]: 2470889267 DHCPACK(br0) 198.18.0.112 52:54:00:0b:00:01\x20
Dec  7 18:54:01 dnsmasq-dhcp[20764]: 2470889267 bootfile name: snponly.efi
Dec  7 18:54:01 dnsmasq-dhcp[20764]: 2470889267 sent size:  1 option: 53 message-type  5
Dec  7 18:54:01 dnsmasq-tftp[20764]: sent /tmp/dmtest/w/dm/tftp/snponly.efi to 198.18.0.112
Dec  7 18:54:01 dnsmasq-tftp[20764]: file /tmp/dmtest/w/dm/tftp/nosuch.efi not found for 198.18.0.112
Dec  7 18:54:01 dnsmasq-dhcp[20764]: 4080203614 vendor class: PXEClient
Dec  7 18:54:01 dnsmasq-dhcp[20764]: 4080203614 user class: iPXE
Dec  7 18:54:01 dnsmasq-dhcp[20764]: 4080203614 DHCPDISCOVER(br0) 52:54:00:0b:00:01\x20
Dec  7 18:54:01 dnsmasq-dhcp[20764]: 4080203614 tags: ipxe, br0
"""
FIRMWARE_ACK = DhcpEvent("DHCPACK", "52:54:00:0b:00:01", "198.18.0.112", False)
LOADER_SENT = TftpSent("/tmp/dmtest/w/dm/tftp/snponly.efi", "198.18.0.112")


def test_the_log_tells_which_files_tftp_sent_and_to_whom() -> None:
    assert tftp_sends(UEFI_LOG) == [LOADER_SENT]  # the missing file is no send


def test_dhcp_and_tftp_events_come_in_the_logs_order() -> None:
    assert boot_log_events(UEFI_LOG) == [
        DhcpEvent("DHCPREQUEST", "52:54:00:0b:00:01", "198.18.0.112", False),
        FIRMWARE_ACK,
        LOADER_SENT,
        DhcpEvent("DHCPDISCOVER", "52:54:00:0b:00:01", None, True),
    ]


def test_a_log_read_as_it_grows_gives_each_whole_line_once(tmp_path: Path) -> None:
    log = tmp_path / "dnsmasq.log"
    tail = BootLogTail(log)
    assert tail.read() == []  # no log yet
    lines = UEFI_LOG.splitlines(keepends=True)
    cut = lines.index(next(line for line in lines if "user class" in line)) + 1
    log.write_text("".join(lines[:cut]) + lines[cut][:30])  # iPXE's exchange cut after its user class
    assert tail.read() == [DhcpEvent("DHCPREQUEST", "52:54:00:0b:00:01", "198.18.0.112", False), FIRMWARE_ACK,
                           LOADER_SENT]  # fmt: skip
    log.write_text("".join(lines))
    assert tail.read() == [DhcpEvent("DHCPDISCOVER", "52:54:00:0b:00:01", None, True)]  # still known as iPXE's
    assert tail.read() == []
    log.write_text(lines[6])  # dnsmasq restarted: a new, shorter log
    assert tail.read() == [LOADER_SENT]
