"""A UEFI laptop with Secure Boot on refuses a loader the bench sends it: shim (its firmware does not
trust the Microsoft third-party CA, or an SBAT revocation), GRUB (refused by shim), or the unsigned
iPXE of a bench set to ``uefi_boot = "ipxe"``. The line tells that from dnsmasq's log (the loader
sent, its next step not seen within a minute) and says on the board what to do; no job is started
or failed, and once the laptop goes on the hint clears.
Times are given, not waited for: the watch is pure and the log poll takes ``now``."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.line_sites import ONE_SWITCH, switch_site_file
from harness.switch_ports import seen, slot, with_mac
from sqlmodel import col, select

from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line.bench_config import load_line_config
from factory.line.bus import LineBus
from factory.line.controller import Controller
from factory.line.leases import register_agent
from factory.line.loader_watch import (
    LOADER_START_SECONDS,
    LoaderNotStarted,
    LoaderStarted,
    LoaderWatch,
    secure_boot_note,
)
from factory.line.models import Job
from factory.line.netboot_service import BenchNetworks
from factory.line.network_slots import NetworkSlots
from hardware_drivers.netboot import BIOS_LOADER, UEFI_LOADER, BenchNetwork, DhcpEvent, TftpSent
from hardware_drivers.netboot_grub import GRUB_CONFIG, GRUB_LOADER, SHIM_LOADER

MAC = "00:1b:63:aa:00:01"  # on sw-bench-1 Gi1/0/1 (bench-1/slot-1) in the switch site file
ADDRESS = "198.18.0.112"
SLOT1 = "bench-1/slot-1"
TFTP = "/var/lib/device-factory/work/netboot/bench-net/tftp"
FIRMWARE_ACK = DhcpEvent("DHCPACK", MAC, ADDRESS, False)
IPXE_ACK = DhcpEvent("DHCPACK", MAC, ADDRESS, True)
STUCK = LoaderNotStarted("bench-net", MAC, ADDRESS, UEFI_LOADER)
STUCK_AT_SHIM = LoaderNotStarted("bench-net", MAC, ADDRESS, SHIM_LOADER)


def test_a_laptop_that_fetched_the_uefi_loader_and_asked_nothing_more_is_stuck_once() -> None:
    watch = LoaderWatch("bench-net")
    assert watch.seen([FIRMWARE_ACK, TftpSent(f"{TFTP}/{UEFI_LOADER}", ADDRESS)], now=100.0) == []
    assert watch.overdue(100.0 + LOADER_START_SECONDS - 1) == []  # a slow firmware has its minute
    watch.seen([FIRMWARE_ACK, TftpSent(f"{TFTP}/{UEFI_LOADER}", ADDRESS)], now=130.0)  # its retry: same clock
    assert watch.overdue(100.0 + LOADER_START_SECONDS) == [STUCK]
    assert watch.overdue(1000.0) == [], "said once"
    watch.seen([TftpSent(f"{TFTP}/{UEFI_LOADER}", ADDRESS)], now=1000.0)  # retried again, still stuck
    assert watch.overdue(2000.0) == []
    # Secure Boot turned off: the laptop runs iPXE, which asks with user class iPXE.
    assert watch.seen([FIRMWARE_ACK, IPXE_ACK], now=2100.0) == [LoaderStarted("bench-net", MAC)]
    assert watch.overdue(9999.0) == []


def test_each_step_of_the_signed_chain_is_watched_until_grub_reads_its_config() -> None:
    watch = LoaderWatch("bench-net")
    watch.seen([FIRMWARE_ACK, TftpSent(f"{TFTP}/{SHIM_LOADER}", ADDRESS)], now=0.0)
    assert watch.overdue(LOADER_START_SECONDS) == [STUCK_AT_SHIM], "shim refused by the firmware"
    # The technician allows the third-party CA: shim runs and asks for GRUB, which is then refused.
    watch.seen([FIRMWARE_ACK, TftpSent(f"{TFTP}/{SHIM_LOADER}", ADDRESS)], now=100.0)
    assert watch.seen([TftpSent(f"{TFTP}/{GRUB_LOADER}", ADDRESS)], now=101.0) == [LoaderStarted("bench-net", MAC)]
    assert watch.overdue(101.0 + LOADER_START_SECONDS) == [LoaderNotStarted("bench-net", MAC, ADDRESS, GRUB_LOADER)]
    # The bench's GRUB updated: it runs and reads its config; nothing is waited for after that.
    assert watch.seen([TftpSent(f"{TFTP}/{GRUB_CONFIG}", ADDRESS)], now=300.0) == [LoaderStarted("bench-net", MAC)]
    assert watch.overdue(9999.0) == []


def test_a_chain_that_runs_in_time_is_never_stuck() -> None:
    watch = LoaderWatch("bench-net")
    sends = [TftpSent(f"{TFTP}/{name}", ADDRESS) for name in (SHIM_LOADER, SHIM_LOADER, GRUB_LOADER, GRUB_CONFIG)]
    assert watch.seen([FIRMWARE_ACK, *sends], now=0.0) == []
    assert watch.overdue(10 * LOADER_START_SECONDS) == []


def test_the_note_names_the_likely_cause_of_each_stall() -> None:
    shim = secure_boot_note("MAC x", ADDRESS)  # the default: what a bench gives UEFI laptops
    assert "(shimx64.efi)" in shim and "Allow Microsoft 3rd Party UEFI CA" in shim and "SBAT" in shim
    grub = secure_boot_note("MAC x", ADDRESS, GRUB_LOADER)
    assert "shim refused the bench's GRUB" in grub and "grub-efi-amd64-signed" in grub
    ipxe = secure_boot_note("MAC x", ADDRESS, UEFI_LOADER)
    assert "the bench's iPXE is not signed" in ipxe and "Turn Secure Boot off" in ipxe
    assert all("UEFI Secure Boot is probably on" in note for note in (shim, grub, ipxe))


def test_a_laptop_that_runs_ipxe_in_time_or_boots_bios_or_is_unknown_is_not_stuck() -> None:
    watch = LoaderWatch("bench-net")
    watch.seen([FIRMWARE_ACK, TftpSent(f"{TFTP}/{UEFI_LOADER}", ADDRESS), IPXE_ACK], now=0.0)
    other = DhcpEvent("DHCPACK", "52:54:00:0b:00:02", "198.18.0.113", False)
    watch.seen([other, TftpSent(f"{TFTP}/{BIOS_LOADER}", "198.18.0.113")], now=0.0)  # BIOS: no Secure Boot
    watch.seen([TftpSent(f"{TFTP}/{UEFI_LOADER}", "198.18.0.140")], now=0.0)  # no lease seen for it
    assert watch.overdue(10 * LOADER_START_SECONDS) == []


def test_the_bench_networks_read_their_logs_as_they_grow(tmp_path: Path) -> None:
    net = BenchNetwork("bench-net", "br0", "198.18.0.100", "198.18.0.150", "http://198.18.0.1:8000")
    networks = BenchNetworks([net], tmp_path)  # dnsmasq not started: its log is written here
    (server,) = networks.servers
    server.log_file.parent.mkdir(parents=True)
    firmware = (
        f"Dec  7 18:54:01 dnsmasq-dhcp[20764]: 2470889267 DHCPACK(br0) {ADDRESS} {MAC} \n"
        f"Dec  7 18:54:01 dnsmasq-tftp[20764]: sent {server.tftp_root}/{UEFI_LOADER} to {ADDRESS}\n"
    )
    server.log_file.write_text(firmware)
    assert networks.poll(now=10.0) == []
    assert networks.poll(now=10.0 + LOADER_START_SECONDS) == [STUCK]
    with server.log_file.open("a") as log:
        log.write("Dec  7 18:56:30 dnsmasq-dhcp[20764]: 4080203614 user class: iPXE\n")
        log.write(f"Dec  7 18:56:30 dnsmasq-dhcp[20764]: 4080203614 DHCPDISCOVER(br0) {MAC} \n")
    assert networks.poll(now=200.0) == [LoaderStarted("bench-net", MAC)]


@pytest.fixture
def board(ctx: AppContext, tmp_path: Path) -> tuple[NetworkSlots, list[str]]:
    """The switch-port slots of an agent serving network boot, and the notices they gave."""
    config = load_line_config(switch_site_file(tmp_path, ONE_SWITCH))
    with session_scope(ctx.engine) as s:
        benches = register_agent(s, config, site=ctx.settings.site_name, run_id="test-run")
    notices: list[str] = []
    slots = NetworkSlots(
        ctx.engine, config.port_map, LineBus(), bench_ids=lambda: benches,
        provision_name="provision", notice=notices.append, release=lambda *_a: None, wake=lambda: None,
        network_boot=True,
    )  # fmt: skip
    return slots, notices


def test_the_board_says_what_to_do_and_clears_once_ipxe_runs(
    ctx: AppContext, board: tuple[NetworkSlots, list[str]]
) -> None:
    slots, notices = board
    slots.handle(seen(MAC, 1), 0.0)  # powered on: its switch port's slot waits for its network boot
    waiting = slot(ctx, SLOT1).error
    assert waiting is not None and "waiting for its network boot" in waiting

    slots.handle(STUCK_AT_SHIM, 70.0)
    (said,) = notices
    assert said.startswith(f"bench network bench-net: MAC {MAC} ({ADDRESS}) fetched the network boot loader ")
    assert "did not start it: UEFI Secure Boot is probably on (the firmware refused the Microsoft-signed shim)" in said
    assert "allow the Microsoft 3rd Party UEFI CA" in said
    assert slot(ctx, SLOT1).error == said.removeprefix("bench network bench-net: ")
    assert _jobs(ctx) == [], "no job is started or failed for it"

    slots.handle(LoaderStarted("bench-net", MAC), 400.0)  # the CA allowed: shim runs
    assert (
        notices[1] == f"bench network bench-net: MAC {MAC} now starts the network boot loader: its network boot goes on"
    )
    assert slot(ctx, SLOT1).error == waiting
    assert _jobs(ctx) == []


def test_a_recorded_laptop_is_named_and_a_slot_with_another_note_keeps_it(
    ctx: AppContext, board: tuple[NetworkSlots, list[str]]
) -> None:
    slots, notices = board
    slots.handle(seen("52:54:00:0b:00:09", 1), 0.0)  # another laptop waits on slot-1
    with_mac(ctx, "LT-SB-1", MAC)  # recorded, on no slot (a network-boot pool laptop)
    before = slot(ctx, SLOT1).error
    slots.handle(STUCK, 70.0)
    assert notices[0].startswith(f"bench network bench-net: laptop LT-SB-1 (MAC {MAC}) ({ADDRESS}) fetched ")
    assert slot(ctx, SLOT1).error == before


def _jobs(ctx: AppContext) -> list[int | None]:
    with session_scope(ctx.engine) as s:
        return list(s.exec(select(col(Job.id))).all())


def test_the_controller_takes_it_as_a_network_event(controller: Controller) -> None:
    controller.submit(STUCK_AT_SHIM)  # as the bench networks' log watch submits it
    assert controller.wait_idle(30)
    assert any("UEFI Secure Boot is probably on" in n.message for n in controller.stats.notices)


@pytest.mark.parametrize(
    ("loader", "cause"),
    [
        (GRUB_LOADER, "(shim refused the bench's GRUB: an SBAT revocation newer than the bench's GRUB)"),
        (UEFI_LOADER, "(the bench's iPXE is not signed). Turn Secure Boot off"),
    ],
)
def test_the_slot_names_the_loader_that_stalled(
    ctx: AppContext, board: tuple[NetworkSlots, list[str]], loader: str, cause: str
) -> None:
    slots, notices = board
    slots.handle(seen(MAC, 1), 0.0)
    slots.handle(LoaderNotStarted("bench-net", MAC, ADDRESS, loader), 70.0)
    assert cause in notices[0] and "Microsoft 3rd Party UEFI CA" not in notices[0]
    assert slot(ctx, SLOT1).error == notices[0].removeprefix("bench network bench-net: ")
