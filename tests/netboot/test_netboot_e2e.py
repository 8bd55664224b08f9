"""End to end on a bench network: a QEMU laptop (TCG; an NVMe drive with a serial, full of a known
"user data" pattern; an e1000 NIC with Debian's iPXE ROM on a bridge inside a network namespace)
PXE-boots from the dnsmasq the line agent started, gets its iPXE script from the controller,
boots the service environment, enrols itself with the one-time token, and is driven by the line
over SSH like a docked device.

One boot, 16 MiB disk: the slow part is TCG itself. On both databases: the factory's processes in
the namespace reach PostgreSQL by its Unix socket (tests/netboot/conftest.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.domain import receive
from harness.netboot_laptop import (
    GOLDEN_MARKER,
    TECHNICIAN,
    factory_on_bench,
    make_golden_image,
    provisioning_file,
    pxe_laptop,
)
from harness.netns import bench_network
from harness.qemu_guest import ONE_GUEST_AT_A_TIME, PATTERN_UNIT, GuestImage, build_guest_image
from harness.requirements import require_root, require_tool
from harness.waiting import wait_until
from sqlmodel import col, select

from factory.identity.service import add_user
from factory.intake.media import MediaSpec
from factory.intake.models import DeviceImage, Enrolment
from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.site_keys import load_public_key
from factory.line.models import Job, JobLog, JobStatus
from imaging.certificate import verify_certificate
from imaging.image_manifest import ImageManifest, load_manifest, manifest_path_for

pytestmark = [pytest.mark.root, pytest.mark.slow, ONE_GUEST_AT_A_TIME]  # slow: a TCG boot over the network

MAC = "52:54:00:0d:f0:01"
SERIAL = "LT-NB-1"
NVME = "NV-NB-1"
DISK_MIB = 16


@pytest.fixture(scope="module")
def guest() -> Iterator[GuestImage]:
    require_root()
    for tool in ("qemu-system-x86_64", "dnsmasq"):
        require_tool(tool)
    yield build_guest_image()


def finished_job(ctx: AppContext) -> Job | None:
    with session_scope(ctx.engine) as s:
        job = s.exec(select(Job).where(col(Job.status).not_in([JobStatus.QUEUED, JobStatus.RUNNING]))).first()
        if job is not None:
            s.expunge(job)
        return job


def job_log(ctx: AppContext, job_id: int) -> list[str]:
    with session_scope(ctx.engine) as s:
        return [row.message for row in s.exec(select(JobLog).where(JobLog.job_id == job_id).order_by(col(JobLog.id)))]


def assert_records(ctx: AppContext, manifest: ImageManifest) -> None:
    """The evidence: the enrolment, a verified certificate, every step's custody entry, the image."""
    with session_scope(ctx.engine) as s:
        (enrolment,) = s.exec(select(Enrolment)).all()
        assert (enrolment.outcome, enrolment.mac, enrolment.dmi_serial) == ("accepted", MAC, SERIAL)
        assert [d["serial"] for d in json.loads(enrolment.report)["disks"]] == [NVME]
        device = get_device(s, SERIAL)
        assert device.state == "ready"
        (cert,) = s.exec(select(Certificate).where(Certificate.device_id == device.id)).all()
        body = verify_certificate(json.loads(cert.envelope), load_public_key(ctx.settings)).certificate
        assert body["verification"]["passed"] is True and cert.medium_serial == NVME
        entries = s.exec(
            select(CustodyEntry).where(CustodyEntry.device_id == device.id).order_by(col(CustodyEntry.seq))
        ).all()
        assert [e.event for e in entries] == [
            "receive",
            "start_sanitise",
            "sanitised",
            "start_provision",
            "deploy_image",
            "provisioned",
        ]
        deployed = json.loads(entries[-2].evidence)
        assert (deployed["image"], deployed["readback_sha256"]) == ("laptop-golden", manifest.sha256)
        assert f"read back (sha256 {manifest.sha256})" in json.loads(entries[-1].evidence)["detail"]
        (image,) = s.exec(select(DeviceImage).where(DeviceImage.device_id == device.id)).all()
        assert (image.image_name, image.image_sha256, image.bytes_written) == (
            "laptop-golden",
            manifest.sha256,
            manifest.size_bytes,
        )


@pytest.mark.timeout(600)  # one TCG boot, an erase, a deploy, an Ansible run in the guest, one more boot
def test_a_laptop_boots_from_the_network_is_erased_imaged_provisioned_and_boots_its_disk(
    ctx: AppContext, database_in_namespace: str, guest: GuestImage, tmp_path: Path
) -> None:
    golden = tmp_path / "golden.img"
    make_golden_image(golden)
    with session_scope(ctx.engine) as s:
        add_user(s, TECHNICIAN, "technician")
    receive(
        ctx, SERIAL, [MediaSpec("nvme", NVME, DISK_MIB << 20)], make="QEMU", model="DF-Laptop", asset_tag="DF-NB-0001"
    )
    site = f'[deploy]\ndefault = "{golden}"\n'
    provisioning = provisioning_file(tmp_path, guest)
    with (
        bench_network() as ns,
        factory_on_bench(ns, tmp_path, guest, provisioning=provisioning, site_extra=site) as factory,
    ):
        with pxe_laptop(ns, tmp_path / "laptop", mac=MAC, serial=SERIAL, nvme_serial=NVME, disk_mib=DISK_MIB) as lt:
            try:
                job = wait_until(lambda: finished_job(ctx), timeout=420, interval=0.5, message="the laptop's job")
                # Work done: the agent reboots the laptop, iPXE is told to boot the disk, the image boots.
                wait_until(lambda: GOLDEN_MARKER in lt.serial_bytes(), timeout=180, interval=0.5,
                           message="the laptop booting its own disk")  # fmt: skip
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n--- serial ---\n{lt.serial_text()[-3000:]}\n{factory.logs()}") from None
            console = lt.serial_text()
    assert "DF-ENROLLED" in console and "DF-BOOT-TO-DISK" in console, console[-3000:]
    assert (job.device_serial, job.pipeline, job.status) == (SERIAL, "sanitise-provision", "succeeded"), job.reason
    assert_records(ctx, load_manifest(manifest_path_for(golden)))
    stats = [line for line in job_log(ctx, job.id or 0) if line.startswith("provision stats ")]
    assert stats and json.loads(stats[0].removeprefix("provision stats ")), "no Ansible stats in the job log"
    disk = (tmp_path / "laptop" / "nvme.img").read_bytes()
    assert PATTERN_UNIT not in disk, "the user-data pattern survived"
    # The deployed image's boot sector and partition gap are on the disk as built (the filesystem
    # after it was then provisioned, so it differs from the golden image by design).
    assert disk[: 1 << 20] == golden.read_bytes()[: 1 << 20]
    assert verify_ledger(ctx.engine).ok
