"""A UEFI laptop with Secure Boot on (OVMF's secure-boot build, Microsoft's keys enrolled, a virtio-net
NIC driven by the firmware's own driver) network-boots from the dnsmasq the line agent started:
Microsoft-signed shim -> Debian-signed GRUB, which reads the controller's per-MAC decision that the
dnsmasq hook left in the TFTP root -> the Debian-signed kernel of the service environment, which
enrols with its one-time token. And the same laptop given the bench's unsigned iPXE never runs it:
the line's loader watch reads that from the real log and the board's hint is the one for iPXE.

Slow: two TCG boots of UEFI firmware (about a minute each to the loader on two cores).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.domain import receive
from harness.netboot_laptop import (
    CONTROLLER,
    OVMF_CODE,
    OVMF_VARS_MS,
    SECURE_BOOT_ON,
    TECHNICIAN,
    factory_on_bench,
    secure_boot_laptop,
    service_env_with_virtio,
)
from harness.netns import RANGE, bench_network
from harness.qemu_guest import ONE_GUEST_AT_A_TIME, GuestImage, build_guest_image
from harness.requirements import require, require_root, require_tool
from harness.waiting import wait_until
from sqlmodel import select

from factory.identity.service import add_user
from factory.intake.media import MediaSpec
from factory.intake.models import Enrolment
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line.loader_watch import LoaderNotStarted, secure_boot_note
from factory.line.netboot_service import BenchNetworks
from hardware_drivers.netboot import UEFI_LOADER, BenchNetwork
from hardware_drivers.netboot_grub import GRUB_SOURCE, SHIM_SOURCE

pytestmark = [pytest.mark.root, pytest.mark.slow, ONE_GUEST_AT_A_TIME]

MAC = "52:54:00:0d:5b:01"
SERIAL = "LT-SB-1"
NVME = "NV-SB-1"


@pytest.fixture(scope="module")
def guest() -> Iterator[GuestImage]:
    require_root()
    for tool in ("qemu-system-x86_64", "dnsmasq", "cpio"):
        require_tool(tool)
    for part in (OVMF_CODE, OVMF_VARS_MS, SHIM_SOURCE, GRUB_SOURCE):
        require(part.is_file(), f"{part} is not installed (scripts/setup.sh)")  # a failure in CI
    yield build_guest_image()


def signers(efi_image: Path) -> str:
    """``sbverify --list``: who signed a PE image (empty without sbsigntool)."""
    if shutil.which("sbverify") is None:
        return ""
    return subprocess.run(["sbverify", "--list", str(efi_image)], capture_output=True, text=True, check=False).stdout


def enrolment(ctx: AppContext) -> Enrolment | None:
    with session_scope(ctx.engine) as s:
        found = s.exec(select(Enrolment).where(Enrolment.mac == MAC)).first()
        if found is not None:
            s.expunge(found)
        return found


@pytest.mark.timeout(360)
def test_a_secure_boot_laptop_boots_shim_grub_and_the_signed_kernel_and_enrols(
    ctx: AppContext, database_in_namespace: str, guest: GuestImage, tmp_path: Path
) -> None:
    served = service_env_with_virtio(guest, tmp_path / "service-env")
    with session_scope(ctx.engine) as s:
        add_user(s, TECHNICIAN, "technician")
    receive(ctx, SERIAL, [MediaSpec("nvme", NVME, 16 << 20)], make="QEMU", model="DF-Laptop", asset_tag="DF-SB-0001")
    with bench_network() as ns, factory_on_bench(ns, tmp_path, guest, netboot_dir=served) as factory:
        with secure_boot_laptop(ns, tmp_path / "laptop", mac=MAC, serial=SERIAL, nvme_serial=NVME) as laptop:
            try:
                found = wait_until(lambda: enrolment(ctx), timeout=300, interval=1.0, message="the enrolment")
                wait_until(lambda: "DF-ENROLLED" in laptop.serial_text(), timeout=30, message="the agent's word")
            except AssertionError as exc:
                raise AssertionError(
                    f"{exc}\n--- serial ---\n{laptop.serial_text()[-4000:]}\n{factory.logs()}"
                ) from None
            console, log = laptop.serial_text(), factory.dnsmasq_log.read_text()
    assert SECURE_BOOT_ON in console, console[-3000:]  # the kernel itself says Secure Boot was on
    assert (found.outcome, found.dmi_serial) == ("accepted", SERIAL), found.reason
    tftp = factory.dnsmasq_log.parent / "tftp"
    for step in ("shimx64.efi", "grubx64.efi", "grub/grub.cfg", f"grub/mac/{MAC}.cfg", "service/bzImage"):
        assert f"sent {tftp}/{step} to" in log, step  # the chain, each step by TFTP
    assert "user class: iPXE" not in log
    # The kernel GRUB booted is the Debian-signed one shim checked (the image GRUB read, byte for byte).
    assert (tftp / "service" / "bzImage").read_bytes() == (served / "bzImage").read_bytes()
    listed = signers(served / "bzImage")
    assert not listed or "Debian Secure Boot CA" in listed, listed


@pytest.mark.timeout(300)
def test_a_secure_boot_laptop_given_unsigned_ipxe_never_starts_it_and_the_hint_says_so(tmp_path: Path) -> None:
    """A bench set to iPXE for UEFI (``uefi_boot = "ipxe"``): the real dnsmasq and the line's own
    log reading (``BenchNetworks.poll``), the laptop's firmware refusing ``snponly.efi``."""
    require_root()
    for tool in ("qemu-system-x86_64", "dnsmasq"):
        require_tool(tool)
    require(OVMF_CODE.is_file(), f"{OVMF_CODE} is not installed (scripts/setup.sh)")
    with bench_network() as ns:
        net = BenchNetwork("bench-net", ns.bridge, RANGE[0], RANGE[1], CONTROLLER, uefi_boot="ipxe")
        networks = BenchNetworks([net], tmp_path, wrapper=ns.argv())
        networks.start()
        (server,) = networks.servers
        try:
            with secure_boot_laptop(ns, tmp_path / "laptop", mac=MAC, serial=SERIAL, nvme_serial=NVME) as laptop:
                sent = f"sent {server.tftp_root / UEFI_LOADER} to"
                wait_until(lambda: sent in server.log_text(), timeout=240, interval=1.0, message="snponly.efi sent")
                assert networks.poll(now=time.monotonic()) == []
                # The firmware refuses it: it says so on the console and never asks as iPXE.
                wait_until(lambda: "Access Denied" in laptop.serial_text(), timeout=60, interval=1.0,
                           message="the firmware refusing the unsigned loader")  # fmt: skip
                stuck = networks.poll(now=time.monotonic() + 60.0)  # a minute on: the watch's limit
                log = server.log_text()
        finally:
            networks.stop()
    assert "user class: iPXE" not in log
    (event,) = stuck
    assert isinstance(event, LoaderNotStarted) and (event.mac, event.loader) == (MAC, UEFI_LOADER)
    note = secure_boot_note(f"MAC {MAC}", event.address, event.loader)
    assert "UEFI Secure Boot is probably on (the bench's iPXE is not signed)" in note
