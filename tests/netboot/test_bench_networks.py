"""The site file's bench networks: parsed with their reasons, and an agent that cannot serve one
refuses to start (a bench whose laptops cannot boot never looks ready)."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.netboot_site import netboot_site_file
from harness.requirements import require_root, require_tool

from factory.kernel.context import AppContext
from factory.kernel.errors import InvalidInput
from factory.line.bench_config import load_line_config
from factory.line.controller import Controller
from factory.line.netboot_service import BenchNetworkError

NET = """[[netboot]]
name = "bench-net-1"
interface = "{interface}"
range_start = "198.18.0.100"
range_end = "198.18.0.150"
controller_url = "http://198.18.0.1:8000"
"""


def test_bench_networks_are_read_from_the_site_file(tmp_path: Path) -> None:
    config = load_line_config(netboot_site_file(tmp_path, extra=NET.format(interface="br-bench")))
    (net,) = config.network.netboot
    assert (net.name, net.interface, net.range_start, net.range_end, net.lease_seconds) == (
        "bench-net-1", "br-bench", "198.18.0.100", "198.18.0.150", 600
    )  # fmt: skip
    assert net.chain_url == "http://198.18.0.1:8000/netboot/boot.ipxe"
    assert net.uefi_boot == "shim"  # UEFI laptops get the signed chain unless the site says iPXE
    ipxe = load_line_config(netboot_site_file(tmp_path, extra=NET.format(interface="br0") + 'uefi_boot = "ipxe"\n'))
    assert ipxe.network.netboot[0].uefi_boot == "ipxe"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (NET.format(interface="br-bench").replace("198.18.0.150", "198.18.1.5"), "is not one range of"),
        (NET.format(interface="bad name!"), "is not an interface name"),
        (NET.format(interface="br0").replace("http://", "ftp://"), "must be an http(s) URL"),
        (NET.format(interface="br0") + 'speed = "fast"\n', "unknown key(s) speed"),
        (NET.format(interface="br0") * 2, "defined twice"),
        (NET.format(interface="br0") + 'uefi_boot = "grub"\n', "uefi_boot must be one of shim, ipxe"),
    ],
)
def test_a_bad_bench_network_is_refused_with_the_reason(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason.replace("(", r"\(").replace(")", r"\)")):
        load_line_config(netboot_site_file(tmp_path, extra=text))


@pytest.mark.root
def test_an_agent_whose_bench_network_cannot_be_served_does_not_start(ctx: AppContext, tmp_path: Path) -> None:
    require_root()
    require_tool("dnsmasq")
    config = load_line_config(netboot_site_file(tmp_path, extra=NET.format(interface="dfnosuch0")))
    controller = Controller(ctx, config)
    with pytest.raises(BenchNetworkError, match="bench network not served: dnsmasq for bench-net-1 exited"):
        controller.start()
