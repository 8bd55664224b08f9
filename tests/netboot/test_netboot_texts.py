"""What the project hands dnsmasq and iPXE, and what it reads back from dnsmasq's log: checked as
text (the namespace tests run them for real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardware_drivers.netboot import (
    BenchNetwork,
    NetbootConfigError,
    dhcp_events,
    dnsmasq_conf,
    ipxe_hold_script,
    ipxe_local_script,
    mac_from_hexhyp,
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
    assert "dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi" in lines


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
