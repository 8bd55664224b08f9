"""A real line fails closed without provisioning settings, and a vehicle tablet is provisioned for
its vehicle (a new one for the vehicle it is earmarked for, and held without one).

A "real" line here is one built from a site file (udev port map), not ``--simulate``; the
simulated line's disks and udev events drive it through the controller's one entry point. Without
a provisioner it erases and certifies as usual, then stops: returned devices at 'sanitised', new
stock where it was, each job held with the reason on the board; the no-op stand-in is refused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from harness.bench_line import SLOT, Line, running_line
from harness.line_agent import holds_certified_pattern, start_agent
from harness.vehicle_tablet import dock, installed_vehicle_tablet, new_vehicle_tablet
from harness.waiting import wait_until
from harness.web import bearer
from sqlmodel import select

from factory.identity.service import add_user
from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.models.custody_entry import CustodyEntry
from factory.line import service
from factory.line.agent import LineAgentProcess, SimulationOptions
from factory.line.bench_config import LineConfig, load_line_config, simulated_config
from factory.line.controller import Controller
from factory.line.errors import SimulationOnly
from factory.line.identify import Identity
from factory.line.job_steps import NO_VEHICLE, NO_VEHICLE_ACTION
from factory.line.models import Job, JobStep
from factory.line.provision_step import (
    NO_PROVISIONING,
    NO_PROVISIONING_NOTICE,
    UNCONFIGURED_STEP,
    ProvisionOutcome,
    ProvisionRequest,
)
from factory.line.simulate import NoOpProvisioner
from factory.line.views import board_snapshot, job_detail

DISK = 2 * 2**20


def real_site(tmp_path: Path) -> LineConfig:
    """A site file whose docks are wired (by ID_PATH) to the simulated line's ports."""
    site = tmp_path / "site.toml"
    site.write_text(
        'agent = "real-agent"\nerase_processes = 0\n'
        '[[bench]]\nname = "bench-1"\nslots = [{position = 1}]\n'
        '[port_map]\nudev = [{id_path = "sim-bench-1-port-1", slot = "bench-1/slot-1"}]\n'
    )
    return load_line_config(site)


@pytest.fixture
def real(ctx: AppContext, tmp_path: Path) -> Iterator[Line]:
    yield from running_line(ctx, real_site(tmp_path), None, disk_bytes=DISK, seed=7)


def test_real_line_without_provisioning_stops_a_returned_device_at_sanitised(real: Line, client, tokens) -> None:
    dev = real.sim.arrive(SLOT, Identity.RETURNED, role="response")
    job = real.wait_job(timeout=60)
    serial = dev.device_serial or ""
    assert (job.pipeline, job.status, job.reason) == ("sanitise-provision", "held", NO_PROVISIONING)
    assert job.action and "--provisioning FILE" in job.action
    assert real.history(serial) == ["receive", "start_sanitise", "sanitised"]  # no provision entry
    with session_scope(real.ctx.engine) as s:
        assert holds_certified_pattern(s, dev.disk_serial, dev.path), "the erase still runs"
        assert get_device(s, serial).state == "sanitised"
        detail = job_detail(s, job.id or 0)
        board = board_snapshot(s)
    assert [(st["name"], st["status"], st["outcome"]) for st in detail["steps"]][1] == (
        UNCONFIGURED_STEP,
        "skipped",
        NO_PROVISIONING,
    )
    assert [(j["id"], j["reason"]) for j in board["attention"]] == [(job.id, NO_PROVISIONING)]
    slot_job = board["benches"][0]["slots"][0]["job"]
    assert (slot_job["status"], slot_job["reason"]) == ("held", NO_PROVISIONING)

    # The same on the board's API, with the agent's notice once its heartbeat has stored it.
    h = bearer(tokens["auditor"])

    def notices() -> list[str]:
        return [n["message"] for n in client.get("/api/board", headers=h).json()["notices"]]

    assert wait_until(lambda: NO_PROVISIONING_NOTICE in notices(), 10, 0.1, "the notice on the board")
    attention = client.get("/api/board", headers=h).json()["attention"]
    assert [(j["status"], j["reason"], j["action"]) for j in attention] == [("held", NO_PROVISIONING, job.action)]


def test_real_line_without_provisioning_holds_new_stock_where_it_is(real: Line) -> None:
    dev = real.sim.arrive(SLOT, Identity.NEW_STOCK)
    job = real.wait_job(timeout=60)
    assert (job.pipeline, job.status, job.reason) == ("provision", "held", NO_PROVISIONING)
    assert real.history(dev.device_serial or "") == ["receive"]
    with session_scope(real.ctx.engine) as s:
        assert get_device(s, dev.device_serial or "").state == "received"


def test_a_retry_on_a_real_line_does_not_run_the_no_op(real: Line) -> None:
    dev = real.sim.arrive(SLOT, Identity.NEW_STOCK)
    held = real.wait_job(timeout=60)
    with session_scope(real.ctx.engine) as s:  # as a cancel would leave it: retryable
        job = s.get(Job, held.id)
        assert job is not None
        job.status = "cancelled"
        s.add(job)
    with session_scope(real.ctx.engine) as s:
        retried = service.retry_job(s, held.id or 0, actor="tech.one")
        names = [st.name for st in s.exec(select(JobStep).where(JobStep.job_id == retried.id)).all()]
    assert names == [UNCONFIGURED_STEP]
    again = real.wait_job(timeout=60)
    assert (again.id, again.status, again.reason) == (retried.id, "held", NO_PROVISIONING)
    assert real.history(dev.device_serial or "") == ["receive"]


def test_the_no_op_provisioner_is_refused_outside_simulate(ctx: AppContext, tmp_path: Path) -> None:
    config = real_site(tmp_path)
    with pytest.raises(SimulationOnly, match="runs only on a simulated line: pass --provisioning FILE"):
        Controller(ctx, config, provisioner=NoOpProvisioner())
    real_agent = LineAgentProcess(ctx, config)  # what `factory line run --config` builds without --provisioning
    simulated = LineAgentProcess(ctx, simulated_config("1x1", agent="sim"), simulation=SimulationOptions())
    try:
        assert real_agent.controller.provisioner is None
        assert real_agent.controller.provision_name == UNCONFIGURED_STEP
        assert isinstance(simulated.controller.provisioner, NoOpProvisioner)
    finally:
        real_agent.controller.engine.dispose()
        simulated.controller.engine.dispose()


# ---------------------------------------------------------------------------- vehicle tablets


@dataclass
class Recording:
    """A provisioner that keeps the requests it was given (the Ansible one is tested over SSH in
    tests/provisioning); it applies nothing and says so."""

    name: str = "provision (recording)"
    requests: list[ProvisionRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: ProvisionRequest) -> ProvisionOutcome:
        with self.lock:
            self.requests.append(request)
        return ProvisionOutcome(True, f"recorded for {request.vehicle_fleet_number}")


def test_a_vehicle_tablet_is_provisioned_with_its_vehicles_fleet_number(ctx: AppContext, tmp_path: Path) -> None:
    installed_vehicle_tablet(ctx, "VT-7", "VT7DISK", "FL-204", size=DISK)
    recording = Recording()
    for bench in running_line(ctx, real_site(tmp_path), recording, disk_bytes=DISK, seed=7):
        dock(bench.sim, "VT7DISK", DISK)
        job = bench.wait_job(timeout=60)
        assert (job.pipeline, job.status) == ("return-sanitise-provision", "succeeded"), job.reason
        assert bench.history("VT-7")[-5:] == ["return", "start_sanitise", "sanitised", "start_provision", "provisioned"]
    [request] = recording.requests
    assert (request.device_serial, request.kind, request.vehicle_fleet_number) == ("VT-7", "vehicle-tablet", "FL-204")
    assert last_start_provision(ctx, "VT-7")["vehicle"] == "FL-204"  # the evidence names the vehicle it was built for


def last_start_provision(ctx: AppContext, serial: str) -> dict[str, object]:
    """The evidence of the device's latest ``start_provision`` entry."""
    with session_scope(ctx.engine) as s:
        device = get_device(s, serial)
        started = s.exec(
            select(CustodyEntry).where(CustodyEntry.device_id == device.id, CustodyEntry.event == "start_provision")
        ).all()[-1]
    return orjson.loads(started.evidence)


def test_a_new_vehicle_tablet_is_built_for_the_vehicle_it_is_earmarked_for(ctx: AppContext, tmp_path: Path) -> None:
    new_vehicle_tablet(ctx, "VT-N", "VTNDISK", "FL-204", size=DISK, earmark=True)
    recording = Recording()
    for bench in running_line(ctx, real_site(tmp_path), recording, disk_bytes=DISK, seed=7):
        dock(bench.sim, "VTNDISK", DISK)
        job = bench.wait_job(timeout=60)
        assert (job.pipeline, job.status) == ("provision", "succeeded"), job.reason
        assert bench.history("VT-N") == ["receive", "start_provision", "provisioned"]
    [request] = recording.requests
    assert (request.device_serial, request.kind, request.vehicle_fleet_number) == ("VT-N", "vehicle-tablet", "FL-204")
    assert last_start_provision(ctx, "VT-N")["vehicle"] == "FL-204"
    with session_scope(ctx.engine) as s:
        assert get_device(s, "VT-N").state == "ready"


def test_a_new_vehicle_tablet_with_no_vehicle_is_held_where_it_is(ctx: AppContext, tmp_path: Path) -> None:
    new_vehicle_tablet(ctx, "VT-U", "VTUDISK", "FL-204", size=DISK)  # the vehicle exists; no earmark
    recording = Recording()
    for bench in running_line(ctx, real_site(tmp_path), recording, disk_bytes=DISK, seed=7):
        dock(bench.sim, "VTUDISK", DISK)
        job = bench.wait_job(timeout=60)
        held = ("provision", "held", NO_VEHICLE, NO_VEHICLE_ACTION)
        assert (job.pipeline, job.status, job.reason, job.action) == held
        assert bench.history("VT-U") == ["receive"]  # no start_provision: nothing was built
        with session_scope(ctx.engine) as s:
            assert get_device(s, "VT-U").state == "received"
            assert [(j["id"], j["reason"]) for j in board_snapshot(s)["attention"]] == [(job.id, NO_VEHICLE)]
    assert recording.requests == []


@pytest.mark.slow  # a whole agent process
def test_factory_line_run_without_provisioning_says_so(ctx: AppContext, tmp_path: Path) -> None:
    real_site(tmp_path)  # writes site.toml
    with session_scope(ctx.engine) as s:
        add_user(s, "tech.runner", "technician")  # a real line runs for a named technician
    proc = start_agent(ctx.settings.home, ctx.settings.database_url, "--config", str(tmp_path / "site.toml"),
                       "--duration", "0.5", "--technician", "tech.runner")  # fmt: skip
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"warning: {NO_PROVISIONING_NOTICE}" in out.splitlines()
