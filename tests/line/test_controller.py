"""The controller in-process, on SQLite and PostgreSQL: identification and pipelines, slots,
a pulled device, technician actions, and reconciliation after a simulated crash."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict

import orjson
import pytest
from harness.bench_line import SLOT, Line, running_line
from harness.domain import move, receive
from harness.line_agent import holds_certified_pattern
from harness.udev_events import attached_disk
from harness.waiting import wait_until
from sqlmodel import col, select

from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from factory.line import service
from factory.line.bench_config import simulated_config
from factory.line.consistency import audit_line
from factory.line.identify import Identity
from factory.line.models import Job, JobStep
from factory.line.simulate import NoOpProvisioner
from factory.line.views import board_snapshot
from hardware_drivers.events import DeviceAttached, DeviceDetached
from imaging.engine import Progress

DISK = 4 * 2**20

# The custody history of a device whose first erase round failed and whose retry went through.
FAILED_THEN_RETRIED = [
    "receive",
    "start_sanitise",
    "fail",
    "start_sanitise",
    "sanitised",
    "start_provision",
    "provisioned",
]


def _line(ctx: AppContext, observers: list | None = None, layout: str = "1x2") -> Iterator[Line]:
    config = simulated_config(layout, agent="test-agent")
    yield from running_line(ctx, config, NoOpProvisioner(), disk_bytes=DISK, seed=3, observers=observers)


@pytest.fixture
def line(ctx: AppContext) -> Iterator[Line]:
    yield from _line(ctx)


def test_returned_device_is_sanitised_certified_and_provisioned(line: Line) -> None:
    dev = line.sim.arrive(SLOT, Identity.RETURNED, role="response")
    job = line.wait_job()
    assert (job.identification, job.pipeline, job.status) == ("returned", "sanitise-provision", "succeeded")
    assert line.history(dev.device_serial or "") == [
        "receive",
        "start_sanitise",
        "sanitised",
        "start_provision",
        "provisioned",
    ]
    with session_scope(line.ctx.engine) as s:
        assert holds_certified_pattern(s, dev.disk_serial, dev.path), "the disk was not erased"
        device = get_device(s, dev.device_serial or "")
        assert device.state == "ready"
        certs = s.exec(select(Certificate).where(Certificate.device_id == device.id)).all()
        assert [(c.medium_serial, c.erase_round_seq) for c in certs] == [(dev.disk_serial, device.erase_round_seq)]
        steps = s.exec(select(JobStep).where(JobStep.job_id == job.id).order_by(col(JobStep.position))).all()
        assert [(st.name, st.status) for st in steps] == [
            ("sanitise", "succeeded"),
            ("provision (simulated: nothing applied)", "noop"),
        ]
        assert all(st.started_at and st.ended_at for st in steps)
    assert job.detected_epoch is not None and job.started_epoch is not None
    assert job.work_seconds > 0
    assert audit_line(line.ctx.engine, line.ctx.settings) == []


def test_new_stock_is_provisioned_without_erase(line: Line) -> None:
    dev = line.sim.arrive(SLOT, Identity.NEW_STOCK)
    job = line.wait_job()
    assert (job.identification, job.pipeline, job.status) == ("new_stock", "provision", "succeeded")
    assert line.history(dev.device_serial or "") == ["receive", "start_provision", "provisioned"]
    evidence = _last_evidence(line, dev.device_serial or "")
    assert evidence["noop"] is True and evidence["provisioner"] == "provision (simulated: nothing applied)"


def test_unknown_device_is_quarantined_for_a_technician(line: Line) -> None:
    dev = line.sim.arrive(SLOT, Identity.UNKNOWN)
    job = line.wait_job()
    assert (job.identification, job.pipeline, job.status) == ("unknown", "quarantine", "held")
    assert job.action and "triage" in job.action
    assert line.history(dev.disk_serial) == ["receive", "quarantine"]
    data = dev.path.read_bytes()
    assert data.count(0) == 0, "an unknown device's disk must not be touched"


def test_role_leaving_the_fleet_stops_after_sanitise_with_that_destination(line: Line) -> None:
    dev = line.sim.arrive(SLOT, Identity.RETURNED, role="redistribution")
    job = line.wait_job()
    assert (job.pipeline, job.status) == ("sanitise", "succeeded")
    with session_scope(line.ctx.engine) as s:
        device = get_device(s, dev.device_serial or "")
        assert device.state == "sanitised"
        cert = s.exec(select(Certificate).where(Certificate.device_id == device.id)).one()
        assert cert.destination == "external_reuse"


def test_issued_device_found_on_a_bench_is_booked_back_then_wiped(line: Line) -> None:
    device_id = receive(line.ctx, "ISSUED-1", media=("DISK-ISSUED-1",), new_stock=True)
    for event in (Event.START_PROVISION, Event.PROVISIONED, Event.ALLOCATE, Event.ISSUE):
        move(line.ctx, device_id, event)
    # Put its disk in a slot through the same event path (a file-backed disk with data on it).
    path = line.sim.root / SLOT / "DISK-ISSUED-1.img"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"officer data" * (DISK // 12))
    line.controller.submit(line.sim.event_for(line.sim.slots[0], path))
    job = line.wait_job()
    assert (job.identification, job.pipeline, job.status) == ("returned", "return-sanitise-provision", "succeeded")
    assert line.history("ISSUED-1")[-5:] == ["return", "start_sanitise", "sanitised", "start_provision", "provisioned"]


def test_second_device_in_an_occupied_slot_is_a_clear_error(line: Line) -> None:
    first = line.sim.arrive(SLOT, Identity.NEW_STOCK)
    line.wait_job()
    intruder = attached_disk(
        "INTRUDER-9", line.sim.slots[0].id_path, sys_path="/sys/x", device_node="/nonexistent", size_bytes=DISK
    )
    line.controller.submit(intruder)
    assert line.controller.wait_idle(10)
    slot = line.controller.slot(SLOT)
    assert slot is not None and slot.attached_serial == first.disk_serial
    assert slot.error and "second device INTRUDER-9" in slot.error and first.disk_serial in slot.error
    with session_scope(line.ctx.engine) as s:
        assert len(s.exec(select(Job)).all()) == 1, "no job may start for the second device"
    line.controller.submit(_removed(intruder))
    assert line.controller.wait_idle(10)
    slot = line.controller.slot(SLOT)
    assert slot is not None and slot.error is None and slot.attached_serial == first.disk_serial


def _removed(event: DeviceAttached) -> DeviceDetached:
    return DeviceDetached(**{k: v for k, v in asdict(event).items() if k != "action"})


class _Gate:
    """Holds the engine inside its write pass (at its first progress report) until released."""

    def __init__(self) -> None:
        self.in_write = threading.Event()
        self.release = threading.Event()

    def __call__(self, _job_id: int, progress: Progress) -> None:
        if progress.phase == "write" and not self.in_write.is_set():
            self.in_write.set()
            self.release.wait(10)


@pytest.fixture
def gated(ctx: AppContext) -> Iterator[tuple[Line, _Gate]]:
    gate = _Gate()
    for line in _line(ctx, observers=[gate]):
        yield line, gate
        gate.release.set()


def _published(line: Line, result: str) -> bool:
    """Whether the controller has announced a slot ``result`` on its bus (after acting on it)."""
    return any(e.kind == "slot" and e.data.get("result") == result for e in line.controller.bus.since(0))


def _arrive_big(line: Line, identity: Identity = Identity.RETURNED) -> object:
    line.sim.disk_bytes = 64 * 2**20  # several progress reports: the gate catches the write pass
    return line.sim.arrive(SLOT, identity)


def test_pulled_device_mid_wipe_fails_the_job_frees_the_slot_and_flags_the_device(gated) -> None:
    line, gate = gated
    dev = _arrive_big(line)
    assert gate.in_write.wait(20), "the wipe never started"
    line.sim.pull(SLOT)
    # The controller handles the removal (stops the runner) while the engine is still mid-pass.
    wait_until(lambda: _published(line, "detached"), 10, message="the controller to handle the removal")
    gate.release.set()
    job = line.wait_job()
    assert job.status == "failed"
    assert job.reason and job.reason.startswith("device removed from slot during 'sanitise'")
    assert job.action and "restart from the beginning" in job.action
    slot = line.controller.slot(SLOT)
    assert slot is not None and slot.attachment_id is None and slot.device_id is None
    with session_scope(line.ctx.engine) as s:
        device = get_device(s, dev.device_serial)
        assert device.state == "sanitise_failed"
        assert s.exec(select(Certificate).where(Certificate.device_id == device.id)).all() == []
    assert line.history(dev.device_serial)[-1] == "fail"
    assert "device removed from slot" in _last_evidence(line, dev.device_serial)["reason"]
    assert audit_line(line.ctx.engine, line.ctx.settings) == []


def test_technician_cancel_then_retry_restarts_from_a_new_erase_round(gated) -> None:
    line, gate = gated
    dev = _arrive_big(line)
    assert gate.in_write.wait(20)
    first = line.job()
    with session_scope(line.ctx.engine) as s:
        service.request_stop(s, first.id or 0, kind="cancel", actor="tech.one")
    runner = line.controller.runner(first.id or 0)
    assert runner is not None
    assert runner.cancel.wait(10), "the heartbeat did not relay the cancel to the running job"
    gate.release.set()
    cancelled = line.wait_job()
    expected = f"cancelled by tech.one during 'sanitise' (medium {dev.disk_serial}: cancelled by operator during write)"
    assert (cancelled.status, cancelled.reason) == ("cancelled", expected)
    with session_scope(line.ctx.engine) as s:
        assert get_device(s, dev.device_serial).state == "sanitise_failed"
        retried = service.retry_job(
            s, cancelled.id or 0, actor="tech.one", provision_name="provision (simulated: nothing applied)"
        )
        retried_id = retried.id
    done = line.wait_job(timeout=60)
    assert done.id == retried_id and done.status == "succeeded" and done.attempt == 2
    with session_scope(line.ctx.engine) as s:
        device = get_device(s, dev.device_serial)
        certs = s.exec(select(Certificate).where(Certificate.device_id == device.id)).all()
        assert [c.erase_round_seq for c in certs] == [device.erase_round_seq]
    events = line.history(dev.device_serial)
    assert events == FAILED_THEN_RETRIED


def test_unmapped_port_is_a_notice_not_a_job(line: Line) -> None:
    line.controller.submit(attached_disk("X1", "pci-0000:99", sys_path="/sys/y", device_node="/dev/sdz", size_bytes=1))
    assert line.controller.wait_idle(10)
    assert line.controller.stats.unmapped == 1
    assert "unmapped port pci-0000:99" in line.controller.stats.notices[-1].message

    # The heartbeat stores it on the agent's row, so a board served by another process shows it.
    def stored_notices() -> list[dict[str, str]]:
        with session_scope(line.ctx.engine) as s:
            return board_snapshot(s)["notices"]

    notices = wait_until(stored_notices, 10, 0.1, "the heartbeat to store the notice")
    assert [(n["agent"], n["message"]) for n in notices] == [("test-agent", "X1 on unmapped port pci-0000:99")]


def _last_evidence(line: Line, serial: str) -> dict:
    with session_scope(line.ctx.engine) as s:
        device = get_device(s, serial)
        entry = s.exec(
            select(CustodyEntry).where(CustodyEntry.device_id == device.id).order_by(col(CustodyEntry.seq).desc())
        ).first()
        assert entry is not None
        return orjson.loads(entry.evidence)
