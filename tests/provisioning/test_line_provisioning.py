"""The line's provision step done for real: Ansible to the device's pinned endpoint (real sshd),
task results in the job log, stats stored with the job; a mismatched host key fails the job."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness.provisioning_site import secrets, site
from harness.sshd import SshdTarget, one_sshd_target
from harness.vehicle_tablet import dock, installed_vehicle_tablet, new_vehicle_tablet
from sqlmodel import col, select

from factory.custody.service import decommission_vehicle
from factory.custody.views import vehicle_fleet_number
from factory.intake.service import register_endpoint
from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.models.device import Device, StorageMedium
from factory.line.bench_config import simulated_config
from factory.line.controller import Controller
from factory.line.identify import Identity
from factory.line.models import Job, JobLog, JobStep
from factory.line.provision_step import ProvisionRequest
from factory.line.simulate import SimulatedLine
from factory.provisioning.line_provisioner import AnsibleProvisioner
from factory.provisioning.service import RunnerOptions
from hardware_drivers.events import DeviceAttached

SLOT = "bench-1/slot-1"
ED25519_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBlqmo5ElKw3cTJW8R6aGGcd3yVhqJ0mBzRh2a0Xz7Bq"  # pinned, never dialled
)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdTarget]:
    yield from one_sshd_target(tmp_path_factory.mktemp("line-sshd"), prefix="df-line")


def _new_laptop(sim: SimulatedLine) -> None:
    sim.arrive(SLOT, Identity.NEW_STOCK, kind="laptop", role="response")


def _run_line(
    ctx: AppContext,
    target: SshdTarget,
    tmp_path: Path,
    pinned_key: str,
    arrive: Callable[[SimulatedLine], object] = _new_laptop,
) -> Job:
    target.reset_root()
    provisioner = AnsibleProvisioner(
        engine=ctx.engine,
        site=site(),
        secrets=secrets(),
        private_key_path=target.client_key,
        work_dir=tmp_path / "runner",
        options=RunnerOptions(forks=1, max_attempts=1, timeout_s=120),
        target_root=lambda _serial: str(target.root),
        python_interpreter="/usr/bin/python3",
    )
    config = simulated_config("1x1", agent="provision-agent")
    holder: dict[str, SimulatedLine] = {}
    controller = Controller(ctx, config, present=lambda: holder["sim"].present(), provisioner=provisioner)

    def submit(event: object) -> None:
        # The device booted into the service environment: its asset tag and SSH endpoint are on record.
        if isinstance(event, DeviceAttached):
            with session_scope(ctx.engine) as s:
                device = s.exec(
                    select(Device).join(StorageMedium, col(StorageMedium.device_id) == Device.id)
                    .where(StorageMedium.serial == event.serial)
                ).one()  # fmt: skip
                device.asset_tag = f"DF-{device.id:04d}"
                s.add(device)
                register_endpoint(s, device.serial, address="127.0.0.1", port=target.port, username="root",
                                  host_key=pinned_key, actor="sim:service-env")  # fmt: skip
        controller.submit(event)  # type: ignore[arg-type]

    sim = SimulatedLine(ctx, config, submit, disk_bytes=4 * 2**20, auto=False, seed=11)
    holder["sim"] = sim
    controller.start()
    try:
        arrive(sim)
        assert controller.wait_idle(180), "line did not go idle"
    finally:
        controller.stop(drain_seconds=5)
    with session_scope(ctx.engine) as s:
        return s.exec(select(Job).order_by(col(Job.id).desc())).first()  # type: ignore[return-value]


def _logs(ctx: AppContext, job_id: int) -> list[str]:
    with session_scope(ctx.engine) as s:
        return [r.message for r in s.exec(select(JobLog).where(JobLog.job_id == job_id).order_by(col(JobLog.id)))]


@pytest.mark.slow  # an Ansible run over SSH
def test_line_provisions_over_ssh_and_stores_stats(ctx: AppContext, target: SshdTarget, tmp_path: Path) -> None:
    job = _run_line(ctx, target, tmp_path, target.host_key_pub)
    assert job.status == "succeeded", job.reason
    logs = _logs(ctx, job.id or 0)
    assert any(line.startswith("provision stats ") and '"failures": 0' in line for line in logs), logs
    assert any("qa : QA disk encryption is on: ok" in line for line in logs), logs
    assert not any(secrets().enrolment_token in line for line in logs)
    with session_scope(ctx.engine) as s:
        device = get_device(s, job.device_serial)
        assert device.state == "ready"
        steps = s.exec(select(JobStep).where(JobStep.job_id == job.id)).all()
        assert [(st.name, st.status) for st in steps] == [("provision (ansible)", "succeeded")]
    assert (target.root / "etc" / "hostname").read_text().strip().lower() == f"df-{device.id:04d}".lower()


@pytest.mark.slow  # an Ansible run over SSH
def test_line_refuses_a_host_key_that_does_not_match_the_pin(
    ctx: AppContext, target: SshdTarget, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other / "k")], check=True)
    wrong = " ".join((other / "k.pub").read_text().split()[:2])
    job = _run_line(ctx, target, tmp_path, wrong)
    assert job.status == "failed"
    assert "host key" in (job.reason or "").lower()
    with session_scope(ctx.engine) as s:
        assert get_device(s, job.device_serial).state == "provision_failed"
    assert (
        not (target.root / "etc" / "hostname").exists() or "df-" not in (target.root / "etc" / "hostname").read_text()
    )


@pytest.mark.slow  # an Ansible run over SSH
def test_line_provisions_a_vehicle_tablet_for_its_vehicle(ctx: AppContext, target: SshdTarget, tmp_path: Path) -> None:
    """Brought back from vehicle FL-204, the tablet is booked back, wiped and rebuilt for FL-204."""
    installed_vehicle_tablet(ctx, "VT-9", "VT9DISK", "FL-204", size=4 * 2**20)
    job = _run_line(ctx, target, tmp_path, target.host_key_pub, lambda sim: dock(sim, "VT9DISK", 4 * 2**20))
    assert (job.device_serial, job.pipeline, job.status) == ("VT-9", "return-sanitise-provision", "succeeded"), (
        job.reason
    )
    conf = (target.root / "etc/device-factory/profile.d/50-vehicle-tablet.conf").read_text()
    assert "fleet_number = FL-204" in conf and "ssid = VEH-FL-204" in conf


@pytest.mark.slow  # an Ansible run over SSH
def test_line_builds_a_new_vehicle_tablet_for_the_vehicle_it_is_earmarked_for(
    ctx: AppContext, target: SshdTarget, tmp_path: Path
) -> None:
    """New from the supplier, earmarked for FL-207 before its build: provisioned for FL-207."""
    new_vehicle_tablet(ctx, "VT-10", "VT10DISK", "FL-207", size=4 * 2**20, earmark=True)
    job = _run_line(ctx, target, tmp_path, target.host_key_pub, lambda sim: dock(sim, "VT10DISK", 4 * 2**20))
    assert (job.device_serial, job.pipeline, job.status) == ("VT-10", "provision", "succeeded"), job.reason
    conf = (target.root / "etc/device-factory/profile.d/50-vehicle-tablet.conf").read_text()
    assert "fleet_number = FL-207" in conf and "ssid = VEH-FL-207" in conf
    with session_scope(ctx.engine) as s:
        assert get_device(s, "VT-10").state == "ready"


def test_a_vehicle_tablet_without_a_vehicle_in_service_is_refused_with_the_reason(
    ctx: AppContext, tmp_path: Path
) -> None:
    device_id = installed_vehicle_tablet(ctx, "VT-3", "VT3DISK", "FL-301", size=4 * 2**20, asset_tag="DF-VT3")
    with session_scope(ctx.engine) as s:
        register_endpoint(s, "VT-3", address="127.0.0.1", port=22, username="root",
                          host_key=ED25519_KEY, actor="sim:service-env")  # fmt: skip
        assert vehicle_fleet_number(s, device_id) == "FL-301"
        decommission_vehicle(s, fleet_number="FL-301", removed_by="Sam Fitter", actor="tech.one")
        assert vehicle_fleet_number(s, device_id) is None  # a decommissioned vehicle gets no tablet
    provisioner = AnsibleProvisioner(
        engine=ctx.engine, site=site(), secrets=secrets(), private_key_path=tmp_path / "key", work_dir=tmp_path / "w"
    )
    request = ProvisionRequest(1, "VT-3", "vehicle-tablet", None, "vehicle-tablet/standard", SLOT, threading.Event())
    outcome = provisioner(request)
    assert not outcome.ok
    no_vehicle = "vehicle tablet VT-3 is not earmarked for, allocated to or installed in a vehicle in service"
    assert no_vehicle in outcome.detail
    assert not (tmp_path / "w").exists(), "nothing was run"


def test_provisioning_site_config(ctx: AppContext, tmp_path: Path) -> None:
    from harness.provisioning_site import ENROLMENT_TOKEN, provisioning_config

    from factory.kernel.errors import InvalidInput
    from factory.provisioning.settings import load_provisioner

    conf = provisioning_config(tmp_path)
    provisioner = load_provisioner(conf, engine=ctx.engine, work_dir=tmp_path / "w")
    assert provisioner.secrets.enrolment_token == ENROLMENT_TOKEN and provisioner.name == "provision (ansible)"
    assert (provisioner.reboot_grace_s, provisioner.os_family) == (300.0, "linux")  # the defaults
    base = conf.read_text()
    conf.write_text(base + 'os_family = "windows"\nreboot_grace_seconds = 600\n')
    provisioner = load_provisioner(conf, engine=ctx.engine, work_dir=tmp_path / "w")
    assert (provisioner.reboot_grace_s, provisioner.os_family) == (600.0, "windows")
    conf.write_text(base + 'os_family = "macos"\n')
    with pytest.raises(InvalidInput, match="os_family must be one of linux, windows"):
        load_provisioner(conf, engine=ctx.engine, work_dir=tmp_path / "w")
    conf.write_text(base + "reboot_grace_seconds = 0\n")
    with pytest.raises(InvalidInput, match="reboot_grace_seconds must be a number in 1-3600"):
        load_provisioner(conf, engine=ctx.engine, work_dir=tmp_path / "w")
    assert ENROLMENT_TOKEN not in repr(provisioner)
    conf.write_text('[provisioning]\nenrolment_tenant = "x"\n')
    with pytest.raises(InvalidInput, match="needs site_ca_file, enrolment_server_url"):
        load_provisioner(conf, engine=ctx.engine, work_dir=tmp_path / "w")
