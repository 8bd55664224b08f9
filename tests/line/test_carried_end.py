"""The erase step's end (its certificates and ``sanitised``) commits with the next step's start,
one transaction fewer per device; whatever happens next, a verified erase keeps its certificates
and a failed certification yields none (carried_end.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from harness.bench_line import SLOT, Line, running_line
from sqlalchemy import Engine, event
from sqlmodel import select

from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.models.certificate import Certificate
from factory.line import erase_step, job_steps
from factory.line.bench_config import simulated_config
from factory.line.consistency import audit_line
from factory.line.errors import StepFailed
from factory.line.identify import Identity
from factory.line.simulate import NoOpProvisioner, SimDevice

DISK = 2 * 2**20


def _line(ctx: AppContext, provisioner: NoOpProvisioner | None) -> Iterator[Line]:
    yield from running_line(ctx, simulated_config("1x1", agent="carry-agent"), provisioner, disk_bytes=DISK, seed=5)


@pytest.fixture
def line(ctx: AppContext) -> Iterator[Line]:
    yield from _line(ctx, NoOpProvisioner())


@contextmanager
def _commits_by_job_threads() -> Iterator[list[str]]:
    """The names of the job threads ("job-N") that committed, one entry per commit."""
    seen: list[str] = []

    def note(_conn) -> None:
        name = threading.current_thread().name
        if name.startswith("job-"):
            seen.append(name)

    event.listen(Engine, "commit", note)  # on the class: the line's engine is the controller's
    try:
        yield seen
    finally:
        event.remove(Engine, "commit", note)


def _certificates(line: Line, dev: SimDevice) -> list[Certificate]:
    with session_scope(line.ctx.engine) as s:
        device = get_device(s, dev.device_serial or "")
        return list(s.exec(select(Certificate).where(Certificate.device_id == device.id)).all())


def _device_state(line: Line, dev: SimDevice) -> str:
    with session_scope(line.ctx.engine) as s:
        return get_device(s, dev.device_serial or "").state


def test_the_certificates_commit_with_the_next_steps_start(line: Line) -> None:
    with _commits_by_job_threads() as commits:
        dev = line.sim.arrive(SLOT, Identity.RETURNED, role="response")
        job = line.wait_job()
    assert (job.pipeline, job.status) == ("sanitise-provision", "succeeded")
    history = line.history(dev.device_serial or "")
    assert history == ["receive", "start_sanitise", "sanitised", "start_provision", "provisioned"]
    # Opening the round; certifying with the provision step's start; the provision step's end.
    assert commits == [f"job-{job.id}"] * 3
    assert [c.medium_serial for c in _certificates(line, dev)] == [dev.disk_serial]
    assert audit_line(line.ctx.engine, line.ctx.settings) == []


def test_a_refused_next_start_keeps_the_certificates_and_fails_the_job(
    line: Line, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object) -> str | None:
        raise StepFailed("vehicle register unreadable")

    monkeypatch.setattr(job_steps, "vehicle_of_build", refuse)  # inside the provision step's first transaction
    dev = line.sim.arrive(SLOT, Identity.RETURNED, role="response")
    job = line.wait_job()
    assert (job.status, job.reason) == ("failed", "vehicle register unreadable")
    assert line.history(dev.device_serial or "") == ["receive", "start_sanitise", "sanitised"]
    assert _device_state(line, dev) == "sanitised"  # erased, verified and certified: not failed
    assert [c.medium_serial for c in _certificates(line, dev)] == [dev.disk_serial]
    assert audit_line(line.ctx.engine, line.ctx.settings) == []


def test_a_failed_certification_yields_no_certificate_and_fails_the_device(
    line: Line, monkeypatch: pytest.MonkeyPatch
) -> None:
    def round_changed(*_args: object, **_kwargs: object) -> None:
        raise StepFailed("the device's erase round changed under the job")

    monkeypatch.setattr(erase_step, "certify_round", round_changed)
    dev = line.sim.arrive(SLOT, Identity.RETURNED, role="response")
    job = line.wait_job()
    assert (job.status, job.reason) == ("failed", "the device's erase round changed under the job")
    assert line.history(dev.device_serial or "") == ["receive", "start_sanitise", "fail"]
    assert _certificates(line, dev) == []
    assert audit_line(line.ctx.engine, line.ctx.settings) == []


@pytest.fixture
def line_without_provisioning(ctx: AppContext) -> Iterator[Line]:
    yield from _line(ctx, None)


def test_a_held_next_step_keeps_the_certificates(line_without_provisioning: Line) -> None:
    line = line_without_provisioning
    dev = line.sim.arrive(SLOT, Identity.RETURNED, role="response")
    job = line.wait_job()
    assert job.status == "held"  # no provisioning settings: the provision step does not run
    assert line.history(dev.device_serial or "") == ["receive", "start_sanitise", "sanitised"]
    assert [c.medium_serial for c in _certificates(line, dev)] == [dev.disk_serial]


def test_the_last_steps_certificates_commit_on_their_own(line: Line) -> None:
    with _commits_by_job_threads() as commits:
        dev = line.sim.arrive(SLOT, Identity.RETURNED, role="redistribution")  # leaves the fleet: sanitise only
        job = line.wait_job()
    assert (job.pipeline, job.status) == ("sanitise", "succeeded")
    assert commits == [f"job-{job.id}"] * 2
    assert [c.medium_serial for c in _certificates(line, dev)] == [dev.disk_serial]
