"""Scale-out: two agent processes, one per bench host, sharing one PostgreSQL database.

Each drives its own bench without touching the other's slots or jobs; a third agent cannot take
a bench whose agent is alive, and takes it over (reconciling the dead agent's jobs) once that
agent's lease has run out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from harness.line_agent import kill9, start_agent, wait_started
from harness.line_history import explain_audit
from harness.waiting import wait_until
from sqlmodel import Session, col, select

from factory.kernel.config import Settings
from factory.kernel.context import AppContext
from factory.kernel.db.migrate import upgrade
from factory.kernel.site_keys import init_keys
from factory.line.consistency import audit_line
from factory.line.models import Bench, Job, JobStatus

COMMON = ("--simulate", "1x4", "--disk-mib", "4", "--gap", "0.3", "--dwell", "0.2")


@pytest.fixture
def shared_pg(pg_admin_dsn: str, tmp_path: Path) -> Iterator[tuple[AppContext, str]]:
    name = f"df_scale_{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    ctx = AppContext(Settings(home=tmp_path / "home", database_url=url, site_name="scale-site"))
    init_keys(ctx.settings)
    upgrade(url)
    yield ctx, url
    ctx.engine.dispose()
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _owns_a_job(ctx: AppContext, agent: str) -> bool:
    with Session(ctx.engine) as s:
        return s.exec(select(Job).where(Job.owner == agent)).first() is not None


@pytest.mark.slow  # three agent processes, a lease expiry and kill -9
def test_two_agents_share_one_postgresql_without_stepping_on_each_other(shared_pg, tmp_path: Path) -> None:
    ctx, url = shared_pg
    # Each bench host has its own disks (its own FACTORY_HOME), the database is shared.
    home_a, home_b, home_c = (tmp_path / n for n in ("host-a", "host-b", "host-c"))
    for home in (home_a, home_b, home_c):
        (home / "keys").mkdir(parents=True)
        for key in ("site-signing-key.pem", "site-signing-key.pub.pem"):
            (home / "keys" / key).write_bytes((ctx.settings.keys_dir / key).read_bytes())
    a = start_agent(home_a, url, *COMMON, "--first-bench", "1", "--agent", "agent-a", "--seed", "1")
    b = start_agent(home_b, url, *COMMON, "--first-bench", "2", "--agent", "agent-b", "--seed", "2", "--duration", "8")
    try:
        wait_started(a)
        wait_started(b)
        # A third agent may not take bench-1 while agent-a is alive.
        c = start_agent(home_c, url, *COMMON, "--first-bench", "1", "--agent", "agent-c")
        assert c.wait(timeout=60) == 1
        assert "bench-1 is driven by agent 'agent-a'" in (c.stderr.read() if c.stderr else "")
        kill9(c)
        wait_until(lambda: _owns_a_job(ctx, "agent-a"), 30, 0.2, "agent-a to claim a job on bench-1")
        kill9(a)  # agent-a's host dies mid-run
        assert b.wait(timeout=60) == 0, b.stderr.read() if b.stderr else ""
    finally:
        kill9(a)
        kill9(b)
    with Session(ctx.engine) as s:
        benches = {x.id: x.name for x in s.exec(select(Bench)).all()}
        owners = {(benches[j.bench_id], j.owner) for j in s.exec(select(Job).where(col(Job.owner).is_not(None))).all()}
        assert owners == {("bench-1", "agent-a"), ("bench-2", "agent-b")}, owners
        done_b = s.exec(select(Job).where(Job.bench_id != 1, col(Job.status).in_(["succeeded", "held"]))).all()
        assert len(done_b) >= 3
        orphans = s.exec(select(Job).where(Job.owner == "agent-a", Job.status == JobStatus.RUNNING)).all()
        orphan_ids = {j.id for j in orphans}
    # agent-c takes bench-1 over once agent-a's lease (6 s) has expired, and reconciles its jobs.
    deadline = time.monotonic() + 30
    while True:
        c = start_agent(home_c, url, *COMMON, "--first-bench", "1", "--agent", "agent-c", "--duration", "3")
        try:
            if c.wait(timeout=60) == 0:
                break
            assert "driven by agent 'agent-a'" in (c.stderr.read() if c.stderr else "")
        finally:
            kill9(c)
        assert time.monotonic() < deadline, "agent-a's lease never expired"
        time.sleep(1)  # paces the retries: each one starts a whole agent process
    with Session(ctx.engine) as s:
        for job_id in orphan_ids:
            job = s.get(Job, job_id)
            assert job is not None and job.status == JobStatus.INTERRUPTED, (job_id, job and job.status)
        assert s.exec(select(Bench).where(Bench.name == "bench-1")).one().agent == "agent-c"
        assert s.exec(select(Job).where(Job.status == JobStatus.RUNNING)).all() == []
    problems = audit_line(ctx.engine, ctx.settings)
    assert problems == [], explain_audit(ctx.engine, problems)
