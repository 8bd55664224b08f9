"""The project's dnsmasq configuration, run by the real dnsmasq on a bench network inside network
namespaces, with the controller's HTTP server beside it: a PXE client is given iPXE by TFTP, iPXE
is given the chain script's URL, and the chain script and the per-MAC script come from the
controller. A NIC's DHCP conversation is played by busybox's udhcpc in a namespace of its own.

The controller process runs inside the bench namespace and reaches PostgreSQL by its Unix socket
(tests/netboot/conftest.py): these tests run on both databases.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from harness.netns import NETMASK, RANGE, SERVER_ADDRESS, BenchNamespace, bench_network
from harness.requirements import require_root, require_tool
from harness.waiting import wait_until

from factory.line.loader_watch import LoaderNotStarted, LoaderStarted, LoaderWatch
from hardware_drivers.netboot import (
    BIOS_LOADER,
    IPXE_DIR,
    UEFI_LOADER,
    BenchNetwork,
    BootLogTail,
    Dnsmasq,
    DnsmasqError,
    lease_address,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]  # slow: namespaces, dnsmasq and a server process

MAC = "52:54:00:0b:00:01"
PORT = 8080
CONTROLLER = f"http://{SERVER_ADDRESS}:{PORT}"
REPO = Path(__file__).resolve().parents[2]
# udhcpc hands what the server said to this script; it configures the NIC and keeps the answer.
UDHCPC_SCRIPT = """#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/$mask" dev "$interface"
echo "boot_file=$boot_file" > "$OUT"
echo "ip=$ip" >> "$OUT"
"""


@pytest.fixture
def bench(ctx: object, database_in_namespace: str, tmp_path: Path) -> Iterator[tuple[BenchNamespace, Dnsmasq]]:
    with serving_dnsmasq(tmp_path) as (ns, dnsmasq):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        ns.spawn(
            [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", SERVER_ADDRESS,
             "--port", str(PORT), "--log-level", "warning"],
            log=str(tmp_path / "server.log"), env=env,
        )  # fmt: skip
        yield ns, dnsmasq


@contextmanager
def serving_dnsmasq(tmp_path: Path, *, uefi_boot: str = "shim") -> Iterator[tuple[BenchNamespace, Dnsmasq]]:
    """The bench network's namespace with our dnsmasq serving it (needs root, dnsmasq and busybox)."""
    require_root()
    require_tool("dnsmasq")
    require_tool("busybox")
    with bench_network() as ns:
        net = BenchNetwork("bench-net", ns.bridge, RANGE[0], RANGE[1], CONTROLLER, netmask=NETMASK, uefi_boot=uefi_boot)
        dnsmasq = Dnsmasq(net, tmp_path / "dnsmasq", wrapper=ns.argv())
        dnsmasq.start()
        try:
            yield ns, dnsmasq
        finally:
            dnsmasq.stop()


def dhcp(ns: BenchNamespace, client: str, tmp_path: Path, *extra: str) -> dict[str, str]:
    """One DHCP exchange from the client's NIC; what the server offered (boot file, address)."""
    script = tmp_path / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    out = tmp_path / "dhcp.out"
    out.unlink(missing_ok=True)
    ns.run("ip", "addr", "flush", "dev", "eth0", ns=client)
    done = ns.run(
        "env", f"OUT={out}", "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-T", "1",
        "-s", str(script), *extra, ns=client, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in out.read_text().splitlines())


def fetch(ns: BenchNamespace, client: str, url: str) -> str:
    done = ns.run("busybox", "wget", "-q", "-O", "-", url, ns=client)
    assert done.returncode == 0, f"{url}: {done.stderr}"
    return done.stdout


def test_pxe_client_gets_ipxe_by_tftp_then_its_script_from_the_controller(
    bench: tuple[BenchNamespace, Dnsmasq], tmp_path: Path
) -> None:
    ns, dnsmasq = bench
    client = ns.add_client(MAC)
    # First stage: the firmware's PXE client. It is given iPXE, which it fetches by TFTP.
    first = dhcp(ns, client, tmp_path, "-V", "PXEClient")
    assert first["boot_file"] == BIOS_LOADER
    assert first["ip"].startswith("198.18.0.1")
    loader = tmp_path / "loader.kpxe"
    got = ns.run("busybox", "tftp", "-g", "-r", BIOS_LOADER, "-l", str(loader), SERVER_ADDRESS, ns=client)
    assert got.returncode == 0, got.stderr
    assert loader.read_bytes() == (IPXE_DIR / BIOS_LOADER).read_bytes()
    # Second stage: iPXE asks again with user class "iPXE" and is sent to the controller.
    second = dhcp(ns, client, tmp_path, "-V", "PXEClient", "-x", "0x4d:69505845")
    assert second["boot_file"] == f"{CONTROLLER}/netboot/boot.ipxe"
    assert lease_address(dnsmasq.lease_file, MAC) == second["ip"]
    events = [(e.kind, e.ipxe) for e in dnsmasq.events() if e.mac == MAC and e.kind == "DHCPACK"]
    assert events == [("DHCPACK", False), ("DHCPACK", True)]

    wait_until(lambda: fetch(ns, client, f"{CONTROLLER}/healthz"), timeout=60, ignore=(AssertionError,),
               message="the controller answering in the namespace")  # fmt: skip
    chain = fetch(ns, client, second["boot_file"])
    assert chain.startswith("#!ipxe") and f"{CONTROLLER}/netboot/ipxe/${{netX/mac:hexhyp}}" in chain
    # What iPXE asks next, with the MAC expanded as :hexhyp: the service environment and a token.
    mine = fetch(ns, client, f"{CONTROLLER}/netboot/ipxe/{MAC.replace(':', '-')}")
    assert f"kernel {CONTROLLER}/netboot/files/bzImage" in mine
    assert re.search(rf"df\.enrol={re.escape(CONTROLLER)}/api/netboot/enrol df\.mac={MAC} df\.token=\S+", mine)


def test_dnsmasq_that_cannot_start_says_why(tmp_path: Path) -> None:
    require_root()
    require_tool("dnsmasq")
    with bench_network() as ns:
        net = BenchNetwork("bench-x", "nosuch0", RANGE[0], RANGE[1], CONTROLLER)
        dnsmasq = Dnsmasq(net, tmp_path, wrapper=ns.argv())
        with pytest.raises(DnsmasqError, match="dnsmasq for bench-x exited"):
            dnsmasq.start()


def test_a_uefi_laptop_that_fetched_ipxe_and_asked_no_more_is_told_from_the_real_log(tmp_path: Path) -> None:
    """Secure Boot on: the firmware's exchange and the TFTP send of snponly.efi, then nothing."""
    with serving_dnsmasq(tmp_path, uefi_boot="ipxe") as (ns, dnsmasq):
        client = ns.add_client(MAC)
        tail, watch = BootLogTail(dnsmasq.log_file), LoaderWatch("bench-net")
        first = dhcp(ns, client, tmp_path, "-V", "PXEClient:Arch:00007", "-x", "0x5d:0007")  # UEFI x64
        assert first["boot_file"] == UEFI_LOADER
        got = ns.run("busybox", "tftp", "-g", "-r", UEFI_LOADER, "-l", str(tmp_path / "l.efi"), SERVER_ADDRESS,
                     ns=client)  # fmt: skip
        assert got.returncode == 0, got.stderr
        wait_until(lambda: f"sent {dnsmasq.tftp_root / UEFI_LOADER} to {first['ip']}" in dnsmasq.log_text(),
                   timeout=10, message="dnsmasq logging the TFTP send")  # fmt: skip
        assert watch.seen(tail.read(), now=0.0) == []
        assert watch.overdue(now=60.0) == [LoaderNotStarted("bench-net", MAC, first["ip"], UEFI_LOADER)]
        dhcp(ns, client, tmp_path, "-V", "PXEClient", "-x", "0x4d:69505845")  # iPXE runs after all
        wait_until(lambda: "user class: iPXE" in dnsmasq.log_text(), timeout=10, message="iPXE's request")
        assert watch.seen(tail.read(), now=100.0) == [LoaderStarted("bench-net", MAC)]
