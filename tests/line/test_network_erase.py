"""A laptop in a switch-port slot is erased over SSH, through the line, down to certificates:
the QEMU service-environment guest plays the laptop, the controller gets the switch's events."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.domain import receive_guest_laptop
from harness.line_agent import holds_certified_pattern
from harness.line_sites import switch_site_file
from harness.qemu_guest import MIB, NVME_SERIAL, ONE_GUEST_AT_A_TIME, SATA_SERIAL, GuestDisk, RunningGuest, booted_guest
from sqlmodel import col, select

from factory.intake.service import register_endpoint
from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.site_keys import load_public_key
from factory.line.bench_config import load_line_config
from factory.line.consistency import audit_line
from factory.line.controller import Controller
from factory.line.models import Job, Slot
from factory.line.provision_step import NO_PROVISIONING
from hardware_drivers.events import LinkDown, MacSeen
from imaging.certificate import verify_certificate
from imaging.engine import Progress

pytestmark = [pytest.mark.root, pytest.mark.slow, ONE_GUEST_AT_A_TIME]  # slow: boots the QEMU guest

DISK = 16 * MIB
MAC = "52:54:00:12:34:56"  # QEMU's default NIC address, as the bench switch would learn it
SLOT = "bench-1/slot-1"


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGuest]:
    yield from booted_guest(tmp_path_factory.mktemp("qemu-line"), nvme_size=DISK, sata_size=DISK)


def site(tmp_path: Path, guest: RunningGuest) -> Path:
    port = f'{{switch = "sw-bench-1", if_name = "Gi1/0/1", slot = "{SLOT}"}}'
    service_env = f'[service_env]\nssh_private_key = "{guest.client_key}"\n'
    return switch_site_file(tmp_path, traps=service_env, ports=port, slots=1)


def returned_laptop(ctx: AppContext, guest: RunningGuest, serial: str, media: list[tuple[str, str]]) -> None:
    """A used laptop with its disks and its service-environment endpoint (and MAC) on record."""
    receive_guest_laptop(ctx, serial, media, DISK)
    with session_scope(ctx.engine) as s:
        register_endpoint(
            s,
            serial,
            address=guest.host,
            port=guest.port,
            username=guest.username,
            host_key=guest.host_key,
            actor="tech.one",
            mac=MAC,
        )


def fresh(*disks: GuestDisk) -> None:
    for disk in disks:
        disk.restore_pattern(0, disk.size)


def history(ctx: AppContext, serial: str) -> list[str]:
    with session_scope(ctx.engine) as s:
        device = get_device(s, serial)
        rows = s.exec(select(CustodyEntry).where(CustodyEntry.device_id == device.id).order_by(col(CustodyEntry.seq)))
        return [e.event for e in rows.all()]


def only_job(ctx: AppContext) -> Job:
    with session_scope(ctx.engine) as s:
        (job,) = s.exec(select(Job)).all()
        s.expunge(job)
        return job


def test_laptop_on_a_switch_port_is_erased_over_ssh_certified_and_held_without_provisioning_settings(
    ctx: AppContext, guest: RunningGuest, tmp_path: Path
) -> None:
    fresh(guest.nvme, guest.sata)
    returned_laptop(ctx, guest, "LT-1", [("nvme", NVME_SERIAL), ("hdd", SATA_SERIAL)])
    controller = Controller(ctx, load_line_config(site(tmp_path, guest)))
    controller.start()
    try:
        controller.submit(MacSeen("sw-bench-1", MAC, 1, 1, "Gi1/0/1", 20))  # as the poller reports it
        assert controller.wait_idle(240), "the job did not finish"
    finally:
        controller.stop(drain_seconds=5)

    job = only_job(ctx)
    # This real line has no provisioning settings: it stops at 'sanitised' with the reason.
    assert (job.device_serial, job.pipeline, job.status, job.reason) == (
        "LT-1",
        "sanitise-provision",
        "held",
        NO_PROVISIONING,
    )
    assert history(ctx, "LT-1") == ["receive", "start_sanitise", "sanitised"]
    public_key = load_public_key(ctx.settings)
    with session_scope(ctx.engine) as s:
        device = get_device(s, "LT-1")
        assert device.state == "sanitised"
        certs = s.exec(select(Certificate).where(Certificate.device_id == device.id)).all()
        assert sorted(c.medium_serial for c in certs) == sorted([NVME_SERIAL, SATA_SERIAL])
        assert {c.erase_round_seq for c in certs} == {device.erase_round_seq}
        for cert in certs:
            body = verify_certificate(json.loads(cert.envelope), public_key).certificate
            assert body["verification"]["passed"] is True
        # Each medium holds, byte for byte, the keyed random stream its certificate records (the remote
        # overwrite's default, which a medium that drops writes and reads back zeros cannot pass).
        for disk in (guest.nvme, guest.sata):
            assert holds_certified_pattern(s, disk.serial, disk.image)
        opened = s.exec(
            select(CustodyEntry).where(CustodyEntry.device_id == device.id, CustodyEntry.event == "start_sanitise")
        ).one()
        assert json.loads(opened.evidence)["remote"].startswith(f"ssh {guest.username}@{guest.host}:{guest.port}, ")
    assert verify_ledger(ctx.engine).ok
    assert audit_line(ctx.engine, ctx.settings) == []


def test_laptop_unplugged_mid_erase_fails_its_job_without_a_certificate(
    ctx: AppContext, guest: RunningGuest, tmp_path: Path
) -> None:
    fresh(guest.sata)
    returned_laptop(ctx, guest, "LT-2", [("hdd", SATA_SERIAL)])
    holding = threading.Event()
    controller: Controller

    def unplug_at_first_progress(job_id: int, _progress: Progress) -> None:
        """Pull the cable while the engine is inside the erase, and hold it until the stop lands."""
        if holding.is_set():
            return
        holding.set()
        controller.submit(LinkDown("sw-bench-1", 1, "Gi1/0/1"))
        runner = next(r for r in controller._runner_snapshot() if r.job_id == job_id)
        assert runner.cancel.wait(30), "the unplug never reached the job"

    controller = Controller(ctx, load_line_config(site(tmp_path, guest)), observers=[unplug_at_first_progress])
    controller.start()
    try:
        controller.submit(MacSeen("sw-bench-1", MAC, 1, 1, "Gi1/0/1", 20))
        assert controller.wait_idle(240), "the job did not finish"
    finally:
        controller.stop(drain_seconds=5)

    assert holding.is_set(), "the erase never reported progress"
    job = only_job(ctx)
    assert job.status == "failed"
    assert job.reason is not None and job.reason.startswith("device removed from slot during 'sanitise'")
    assert history(ctx, "LT-2") == ["receive", "start_sanitise", "fail"]
    with session_scope(ctx.engine) as s:
        device = get_device(s, "LT-2")
        assert device.state == "sanitise_failed"
        assert s.exec(select(Certificate)).all() == []
        slot = s.exec(select(Slot).where(Slot.code == SLOT)).one()
        assert (slot.attachment_id, slot.attached_mac) == (None, None)
    assert verify_ledger(ctx.engine).ok
    assert audit_line(ctx.engine, ctx.settings) == []
