"""Personalisation for the officer through the line, for real: an allocated laptop on a bench runs
playbooks/personalise.yml with its officer's assistive-technology profile (ansible-runner over SSH
to a real sshd), the QA says what is missing, the issue is refused with it; once the tools are
there a second run passes and the device can be issued."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.custody_data import accept
from harness.domain import move, receive, verifier
from harness.provisioning_site import secrets, site
from harness.sshd import SshdTarget, one_sshd_target
from harness.vehicle_tablet import dock
from sqlmodel import col, select

from factory.custody.models import Personalisation
from factory.custody.service import (
    allocate,
    approve_exception,
    issue_device,
    register_officer,
    request_exception,
)
from factory.intake.service import MediaSpec, register_endpoint
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import GuardRefused
from factory.kernel.lifecycle.states import Event
from factory.line.bench_config import simulated_config
from factory.line.controller import Controller
from factory.line.models import Job, JobLog
from factory.line.simulate import SimulatedLine
from factory.provisioning.line_provisioner import AnsibleProvisioner
from factory.provisioning.service import RunnerOptions

pytestmark = pytest.mark.slow  # Ansible runs over SSH

DISK = 2 * 2**20
SLOT = "bench-1/slot-1"
DCONF = "etc/dconf/db/local.d/50-device-factory-accessibility"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdTarget]:
    yield from one_sshd_target(tmp_path_factory.mktemp("personalise-sshd"), prefix="df-pers")


def _installed(root: Path, *packages: str) -> None:
    """The image's dpkg database, as the golden image left it: these packages installed."""
    status = root / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text("".join(f"Package: {p}\nStatus: install ok installed\nVersion: 1.0\n\n" for p in packages))


def _allocated_laptop(ctx: AppContext, target: SshdTarget) -> int:
    device_id = receive(ctx, "PL-1", [MediaSpec("sata-ssd", "PL1DISK", DISK)], new_stock=True, asset_tag="DF-PL1")
    move(ctx, device_id, Event.START_PROVISION, new_stock=True)
    move(ctx, device_id, Event.PROVISIONED)
    with session_scope(ctx.engine) as s:
        register_officer(s, staff_number="PC7001", name="Ravi Shah", at_profile="screen-reader, magnifier x3")
        allocation_id = allocate(s, serial="PL-1", actor="tech.one", staff_number="PC7001").record.id or 0
        register_endpoint(s, "PL-1", address="127.0.0.1", port=target.port, username="root",
                          host_key=target.host_key_pub, actor="sim:service-env")  # fmt: skip
    return allocation_id


def _issue(ctx: AppContext, allocation_id: int) -> str:
    with session_scope(ctx.engine) as s:
        approval = request_exception(s, allocation_id=allocation_id, reason="new starter", requested_by="tech.one")
        approve_exception(s, approval_id=approval.record.id or 0, approver="admin.one")
    with session_scope(ctx.engine) as s:
        return issue_device(s, allocation_id=allocation_id, acceptance=accept("Ravi Shah"), actor="tech.one",
                            verifier=verifier(ctx), approval_id=approval.record.id).handed_over or ""  # fmt: skip


def _latest_job(ctx: AppContext) -> tuple[Job, list[str]]:
    with session_scope(ctx.engine) as s:
        job = s.exec(select(Job).order_by(col(Job.id).desc())).first()
        assert job is not None
        logs = [r.message for r in s.exec(select(JobLog).where(JobLog.job_id == job.id).order_by(col(JobLog.id)))]
        s.expunge(job)
        return job, logs


def test_personalisation_applies_the_officers_profile_and_its_qa_gates_the_issue(
    ctx: AppContext, target: SshdTarget, tmp_path: Path
) -> None:
    target.reset_root()
    _installed(target.root, "orca")  # the magnifier's package is not on the image
    allocation_id = _allocated_laptop(ctx, target)
    provisioner = AnsibleProvisioner(
        engine=ctx.engine, site=site(), secrets=secrets(), private_key_path=target.client_key,
        work_dir=tmp_path / "runner", options=RunnerOptions(forks=1, max_attempts=1, timeout_s=120),
        target_root=lambda _serial: str(target.root), python_interpreter="/usr/bin/python3",
    )  # fmt: skip
    config = simulated_config("1x1", agent="personalise-agent")
    holder: dict[str, SimulatedLine] = {}
    controller = Controller(ctx, config, present=lambda: holder["sim"].present(), provisioner=provisioner)
    holder["sim"] = sim = SimulatedLine(ctx, config, controller.submit, disk_bytes=DISK, auto=False, seed=3)
    controller.start()
    try:
        dock(sim, "PL1DISK", DISK)
        assert controller.wait_idle(180), "line did not go idle"
        failed, logs = _latest_job(ctx)
        assert (failed.pipeline, failed.status) == ("personalise", "failed"), failed.reason
        assert "magnifier: magnus is not installed" in (failed.reason or "")
        assert any("QA assistive technology is installed and configured: failed" in line for line in logs), logs
        with pytest.raises(GuardRefused, match="last personalisation QA failed: magnifier: magnus is not installed"):
            _issue(ctx, allocation_id)

        _installed(target.root, "orca", "magnus")  # the technician installs it; the device goes back on
        sim.depart(SLOT)
        assert controller.wait_idle(60)
        dock(sim, "PL1DISK", DISK)
        assert controller.wait_idle(180), "line did not go idle"
        passed, logs = _latest_job(ctx)
        assert (passed.pipeline, passed.status) == ("personalise", "succeeded"), passed.reason
    finally:
        controller.stop(drain_seconds=5)
    dconf = (target.root / DCONF).read_text()
    assert "screen-reader-enabled=true" in dconf and "mag-factor=3.0" in dconf  # the officer's x3 zoom
    record = (target.root / "etc/device-factory/accessibility/pc7001.json").read_text()
    assert '"screen_reader"' in record and '"magnifier"' in record
    with session_scope(ctx.engine) as s:
        results = [(p.passed, p.missing) for p in s.exec(select(Personalisation).order_by(col(Personalisation.id)))]
    assert results == [(False, "magnifier: magnus is not installed"), (True, "")]
    assert _issue(ctx, allocation_id) == "PL-1"
