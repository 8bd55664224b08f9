"""Crash test: kill -9 the controller at random points while the simulated line runs.

After every kill, before the restart, the evidence must already be consistent (the audit):
ledger verifies, device states match their custody, no certificate for an incomplete wipe, a
device in progress has its (dead) job. Every disk the evidence calls erased holds the pattern
its certificate records (random by default, regenerated from its key). After the last restart,
a clean run must leave no device in progress and every interrupted wipe restarted from a new
erase round or waiting for a technician.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from harness.line_agent import erased_disk_problems, kill9, start_agent, wait_started
from harness.line_history import explain_audit
from sqlmodel import Session, col, select

from factory.kernel.config import Settings
from factory.kernel.context import AppContext
from factory.kernel.db.migrate import upgrade
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device
from factory.kernel.site_keys import init_keys
from factory.line.consistency import audit_line
from factory.line.models import Job, JobStatus

SQLITE_TRIALS = 20
PG_TRIALS = 3
# Disks big enough that a wipe outlasts the controller's own work: with a fast controller and
# tiny disks most kills would land between jobs and prove little.
AGENT_ARGS = ("--simulate", "1x4", "--agent", "crash-agent", "--disk-mib", "24", "--gap", "0.4", "--dwell", "0.3")


def _context(home: Path, url: str) -> AppContext:
    ctx = AppContext(Settings(home=home, database_url=url, site_name="crash-site"))
    init_keys(ctx.settings)
    upgrade(url)
    return ctx


def _run_trials(ctx: AppContext, home: Path, url: str, trials: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    for trial in range(trials):
        proc = start_agent(home, url, *AGENT_ARGS, "--seed", str(seed * 1000 + trial), "--pull-rate", "0.1")
        try:
            wait_started(proc)
            time.sleep(rng.uniform(0.05, 1.6))  # deliberate: kill -9 lands at a random point of the run
        finally:
            kill9(proc)
        problems = audit_line(ctx.engine, ctx.settings)
        with Session(ctx.engine) as s:
            problems += erased_disk_problems(s, home)
        assert not problems, f"after kill {trial + 1}: {explain_audit(ctx.engine, problems)}"
    # A last, clean run: reconciles the final kill and drains.
    proc = start_agent(home, url, *AGENT_ARGS, "--duration", "2.5", "--max-devices", "0")
    try:
        wait_started(proc)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        kill9(proc)
    problems = audit_line(ctx.engine, ctx.settings)
    assert problems == [], explain_audit(ctx.engine, problems)
    with Session(ctx.engine) as s:
        in_progress = s.exec(select(Device).where(col(Device.state).in_(["sanitising", "provisioning"]))).all()
        assert in_progress == [], [d.serial for d in in_progress]
        assert s.exec(select(Job).where(Job.status == JobStatus.RUNNING)).all() == []
        interrupted = s.exec(select(Job).where(Job.status == JobStatus.INTERRUPTED)).all()
        for job in interrupted:  # the device was failed with the reason, in the same transaction
            assert job.reason == "interrupted: controller restarted"
        failed_entries = s.exec(select(CustodyEntry).where(CustodyEntry.event == "fail")).all()
        restarted = [e for e in failed_entries if "interrupted: controller restarted" in e.evidence]
        devices = s.exec(select(Device)).all()
        return {
            "devices": len(devices),
            "ready": sum(d.state == "ready" for d in devices),
            "interrupted_jobs": len(interrupted),
            "interrupted_devices": len(restarted),
            "jobs": len(s.exec(select(Job)).all()),
        }


@pytest.mark.slow  # kill -9 trials of whole agent processes
def test_kill9_at_random_points_sqlite(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'factory.db'}"
    ctx = _context(home, url)
    stats = _run_trials(ctx, home, url, SQLITE_TRIALS, seed=7)
    print(f"crash test (SQLite, {SQLITE_TRIALS} kills): {stats}")
    assert stats["ready"] > 0, "the line made no progress between kills"
    assert stats["interrupted_jobs"] > 0, "no kill landed while a job was running: the test proved nothing"


@pytest.mark.slow  # kill -9 trials of whole agent processes
def test_kill9_at_random_points_postgresql(tmp_path: Path, pg_admin_dsn: str) -> None:
    import psycopg

    name = f"df_crash_{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    home = tmp_path / "home"
    ctx = _context(home, url)
    try:
        stats = _run_trials(ctx, home, url, PG_TRIALS, seed=11)
        print(f"crash test (PostgreSQL, {PG_TRIALS} kills): {stats}")
        assert stats["ready"] > 0
    finally:
        ctx.engine.dispose()
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
