"""The controller after things go wrong: aborts of orphaned jobs, restart reconciliation, two agents
claiming one bench, and the agent process itself."""

import threading
import time

import pytest
from harness.bench_line import SLOT, Line
from harness.waiting import wait_until
from sqlmodel import col, select
from test_controller import DISK, FAILED_THEN_RETRIED, _line

from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.certificate import Certificate
from factory.line import jobs, leases, service
from factory.line.agent import LineAgentProcess, SimulationOptions
from factory.line.bench_config import simulated_config
from factory.line.consistency import audit_line
from factory.line.controller import Controller
from factory.line.identify import Identity
from factory.line.models import Job, JobStatus, JobStep, LineAgent, Slot
from factory.line.simulate import NoOpProvisioner, SimulatedLine


def test_abort_of_a_job_whose_agent_is_gone_settles_it_at_once(ctx: AppContext) -> None:
    for line in _line(ctx):
        dev = line.sim.arrive(SLOT, Identity.RETURNED)
        line.wait_job()
        with session_scope(ctx.engine) as s:  # fake a running job owned by a dead process
            device = get_device(s, dev.device_serial or "")
            job = s.exec(select(Job)).one()
            job.status, job.owner_run, job.lease_expires_at = "running", "dead-run", time.time() - 60
            s.add(job)
        with session_scope(ctx.engine) as s:
            stopped = service.request_stop(s, job.id or 0, kind="abort", actor="tech.two")
            assert stopped.status == "aborted" and stopped.reason == "aborted by tech.two"
        with session_scope(ctx.engine) as s:
            assert get_device(s, device.serial).state == "ready"  # not this job's in-progress state: untouched


def test_restart_reconciles_an_interrupted_wipe_and_restarts_it_from_a_new_round(ctx: AppContext) -> None:
    config = simulated_config("1x2", agent="test-agent")
    sim_holder: dict[str, SimulatedLine] = {}
    first = Controller(ctx, config, present=lambda: sim_holder["sim"].present())
    sim = SimulatedLine(ctx, config, first.submit, disk_bytes=DISK, auto=False, seed=5)
    sim_holder["sim"] = sim
    first.start()
    first.stop(drain_seconds=1)  # registered benches; no work yet
    # The state a kill -9 mid-wipe leaves: the device in sanitising, its job running under a dead run.
    dev = _place_without_controller(sim, SLOT)
    with session_scope(ctx.engine) as s:
        slot = s.exec(select(Slot).where(Slot.code == SLOT)).one()
        from factory.line.slots import Attachment, attach

        attach(s, slot, Attachment(dev.disk_serial, str(dev.path), DISK, time.time()))
        job, _ = jobs.create_job(s, slot, provision_name="provision (simulated: nothing applied)", detected_epoch=None)
        job.status, job.owner, job.owner_run, job.lease_expires_at = (
            "running",
            "test-agent",
            "dead-run",
            time.time() + 60,
        )
        s.add(job)
        s.flush()
        step = s.exec(select(JobStep).where(JobStep.job_id == job.id, JobStep.kind == "sanitise")).one()
        from factory.kernel.lifecycle.transition import TransitionRequest, change_state

        device = get_device(s, dev.device_serial or "")
        entry = change_state(s, [TransitionRequest(device.id or 0, Event.START_SANITISE)], actor="agent:test-agent")[0]
        step.custody_seq, step.status = entry.seq, "running"
        s.add(step)
        interrupted_round = entry.seq
        old_job = job.id
    second = Controller(ctx, config, present=sim.present, provisioner=NoOpProvisioner())
    report = second.start()
    try:
        assert report.interrupted == [old_job] and len(report.restarted) == 1
        assert second.wait_idle(30)
    finally:
        second.stop()
    with session_scope(ctx.engine) as s:
        old = s.get(Job, old_job)
        assert old is not None and (old.status, old.reason) == ("interrupted", "interrupted: controller restarted")
        device = get_device(s, dev.device_serial or "")
        assert device.state == "ready" and device.erase_round_seq != interrupted_round
        certs = s.exec(select(Certificate).where(Certificate.device_id == device.id)).all()
        assert [c.erase_round_seq for c in certs] == [device.erase_round_seq]
        agent = s.get(LineAgent, "test-agent")
        assert agent is not None and agent.run_id == second.run_id
    history = Line(ctx, second, sim).history(dev.device_serial or "")
    assert history == FAILED_THEN_RETRIED
    assert audit_line(ctx.engine, ctx.settings) == []


def _place_without_controller(sim: SimulatedLine, code: str):
    """Book in a returned device and put its disk in the slot while no controller listens."""
    submit, sim.submit = sim.submit, lambda _event: None
    try:
        return sim.arrive(code, Identity.RETURNED)
    finally:
        sim.submit = submit


def test_a_bench_driven_by_a_live_agent_cannot_be_taken(ctx: AppContext) -> None:
    config = simulated_config("1x1", agent="agent-a")
    a = Controller(ctx, config)
    a.start()
    try:
        from factory.kernel.errors import Conflict

        with pytest.raises(Conflict, match="bench-1 is driven by agent 'agent-a'"):
            Controller(ctx, simulated_config("1x1", agent="agent-b")).start()
    finally:
        a.stop()
    b = Controller(ctx, simulated_config("1x1", agent="agent-b"))
    b.start()  # a stopped agent releases its lease: the bench can be taken over at once
    b.stop()


def test_claims_never_hand_one_job_to_two_agents(ctx: AppContext) -> None:
    """Two claimers race over one queue (same benches): every job is claimed exactly once."""
    config = simulated_config("2x8", agent="agent-a")
    c = Controller(ctx, config)
    c.start()
    c.stop()
    with session_scope(ctx.engine) as s:
        slots = s.exec(select(Slot)).all()
        bench_ids = sorted({sl.bench_id for sl in slots})
        for n, slot in enumerate(slots):
            from factory.line.slots import Attachment, attach

            attach(s, slot, Attachment(f"UNK-{n}", f"/dev/null{n}", 1, time.time()))
            jobs.create_job(s, slot, provision_name="p", detected_epoch=None)
    claimed: dict[str, list[int]] = {"a": [], "b": []}

    def claimer(name: str) -> None:
        for _ in range(20):
            with session_scope(ctx.engine) as s:
                got = leases.claim_jobs(
                    s,
                    agent=name,
                    run_id=name,
                    bench_ids=bench_ids,
                    site="test-site",
                    site_limit=100,
                    limit=2,
                    lease_seconds=5,
                )
            claimed[name].extend(got)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    both = claimed["a"] + claimed["b"]
    assert len(both) == len(set(both)) == 16


@pytest.mark.slow  # starts an agent process
def test_agent_process_runs_the_simulated_line(ctx: AppContext) -> None:
    agent = LineAgentProcess(
        ctx,
        simulated_config("1x3", agent="sim-agent"),
        simulation=SimulationOptions(disk_bytes=DISK, seed=2, gap=(0.05, 0.2), dwell=(0.05, 0.1), max_devices=6),
    )

    def six_done() -> list[Job]:
        with session_scope(ctx.engine) as s:
            done = s.exec(select(Job).where(col(Job.status).in_(["succeeded", "held"]))).all()
        return list(done) if len(done) >= 6 else []

    agent.start()
    try:
        done = wait_until(six_done, 40, 0.2, "six jobs to finish on the simulated line")
        assert len(done) >= 6
    finally:
        agent.stop()
    assert audit_line(ctx.engine, ctx.settings) == []
    with session_scope(ctx.engine) as s:
        assert s.exec(select(Job).where(Job.status == JobStatus.RUNNING)).all() == []
