"""Claiming queued jobs and renewing leases (with the heartbeat's erase progress).

Claiming is safe with several agents on one PostgreSQL database: queued rows are taken with
``SELECT ... FOR UPDATE SKIP LOCKED`` (a row another transaction holds is passed over, not
waited on), and the per-bench / per-site limits are counted under a transaction-scoped advisory
lock so two agents cannot both take the last free place. On SQLite, ``BEGIN IMMEDIATE``
serialises the whole claim.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence

import orjson
from sqlalchemy import Select, bindparam, func, or_, update
from sqlmodel import Session, col, select

from factory.kernel.clock import utc_now
from factory.kernel.db.shared_statements import built_once, warmed
from factory.line.bench_config import LineConfig
from factory.line.errors import LostOwnership
from factory.line.job_log import JobLogBuffer, job_log_batch
from factory.line.models import Bench, Job, JobStatus, LineAgent, StopKind
from factory.line.slots import locked, register_benches

CLAIM_LOCK_KEY = 0x6C696E65  # "line": advisory lock serialising claims across agents


def claim_jobs(
    session: Session,
    *,
    agent: str,
    run_id: str,
    bench_ids: Sequence[int],
    site: str,
    site_limit: int,
    limit: int,
    lease_seconds: float,
    logs: JobLogBuffer | None = None,
    technician: str | None = None,
) -> list[int]:
    """Take up to ``limit`` queued jobs on our benches, within the bench and site limits."""
    if limit <= 0 or not bench_ids:
        return []
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.connection().exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (CLAIM_LOCK_KEY,))
    running, limits = _running_and_limits(session, site, bench_ids)
    site_running = sum(running.values())
    params = {"bench_ids": list(bench_ids), "take": limit + sum(limits.values())}
    now, stamp = time.time(), utc_now()
    claimed: list[int] = []
    for job in session.exec(_queued(postgres), params=params).all():  # type: ignore[call-overload]
        if len(claimed) >= limit or site_running >= site_limit:
            break
        if running.get(job.bench_id, 0) >= limits.get(job.bench_id, 0):
            continue
        job.status, job.owner, job.owner_run = JobStatus.RUNNING, agent, run_id
        job.started_by = job.started_by or technician  # the person the agent runs for
        job.lease_expires_at, job.started_epoch, job.started_at, job.updated_at = now + lease_seconds, now, stamp, stamp
        session.add(job)
        running[job.bench_id] = running.get(job.bench_id, 0) + 1
        site_running += 1
        claimed.append(job.id or 0)
    session.flush()
    with job_log_batch(session, logs) as lines:
        for job_id in claimed:
            lines.add(job_id, f"started by {agent}" + (f" for {technician}" if technician else ""))
    return claimed


@built_once
def _queued(postgres: bool) -> Select:
    """Queued jobs on the benches, oldest first; on PostgreSQL those no other claim holds."""
    stmt = (
        select(Job)
        .where(Job.status == JobStatus.QUEUED, col(Job.bench_id).in_(bindparam("bench_ids", expanding=True)))
        .order_by(col(Job.id))
        .limit(bindparam("take"))
    )
    return (stmt.with_for_update(skip_locked=True, key_share=True) if postgres else stmt).execution_options(
        populate_existing=True
    )


def _running_and_limits(session: Session, site: str, bench_ids: Sequence[int]) -> tuple[dict[int, int], dict[int, int]]:
    """Jobs running on each bench of ``site``, and the job limit of each of ``bench_ids``, in one
    query (the claim runs at every attachment: a round trip here is one per device)."""
    rows = session.execute(_RUNNING_AND_LIMITS, {"site": site, "bench_ids": list(bench_ids)}).all()
    ours = set(bench_ids)
    running = {bench: count for bench, bench_site, _, count in rows if bench_site == site and count}
    limits = {bench: max_jobs for bench, _, max_jobs, _ in rows if bench in ours}
    return running, limits


# Built once, as the statements below: the claim runs at every attachment.
_RUNNING_AND_LIMITS = warmed(
    select(Bench.id, Bench.site, Bench.max_jobs, func.count(col(Job.id)))
    .outerjoin(Job, (col(Job.bench_id) == Bench.id) & (col(Job.status) == JobStatus.RUNNING))
    .where(or_(Bench.site == bindparam("site"), col(Bench.id).in_(bindparam("bench_ids", expanding=True))))
    .group_by(col(Bench.id), col(Bench.site), col(Bench.max_jobs))
)
_JOB = Job.__table__  # type: ignore[attr-defined]
_PROGRESS_UPDATE = warmed(
    update(_JOB)
    .where(
        _JOB.c.id == bindparam("b_id"),
        _JOB.c.owner_run == bindparam("b_run"),
        _JOB.c.status == JobStatus.RUNNING.value,
        or_(_JOB.c.current_step == bindparam("b_step"), _JOB.c.current_step.like(bindparam("b_like"), escape="/")),
    )
    .values(current_step=bindparam("b_shown"), progress=bindparam("b_progress"), updated_at=bindparam("b_stamp"))
)


def _like_prefix(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def renew_leases(
    session: Session,
    *,
    agent: str,
    run_id: str,
    lease_seconds: float,
    progress: dict[int, tuple[str, str, float]] | None = None,
    notices: list[dict[str, str]] | None = None,
) -> dict[int, tuple[StopKind, str]]:
    """Extend our agent and job leases and record erase progress; return {job id: (requested
    stop, by whom)} to act on.

    ``progress`` is {job id: (step, step as shown, fraction)}. It is written only while the job is
    still in that step, so a late copy never overwrites the next step on the board, and only for
    jobs whose lease this beat renewed (a job its runner holds waits for the next beat).
    :raises LostOwnership: another process now runs under our agent name.
    """
    now = time.time()
    me = session.exec(locked(session, select(LineAgent).where(LineAgent.name == agent))).first()  # type: ignore[call-overload]
    if me is None or me.run_id != run_id:
        raise LostOwnership(f"agent '{agent}' was taken over by another process")
    me.lease_expires_at = now + lease_seconds
    if notices is not None:  # only when they changed since the last heartbeat
        me.notices = orjson.dumps(notices).decode()
    session.add(me)
    renewed = _renew_job_leases(session, run_id, now + lease_seconds)
    progress = {job_id: live for job_id, live in (progress or {}).items() if job_id in renewed}
    if progress:
        stamp = utc_now()
        session.connection().execute(  # one executemany for every running erase
            _PROGRESS_UPDATE,
            [
                {"b_id": job_id, "b_run": run_id, "b_step": step, "b_like": _like_prefix(f"{step} ("),
                 "b_shown": shown, "b_progress": round(fraction, 4), "b_stamp": stamp}
                for job_id, (step, shown, fraction) in progress.items()
            ],
        )  # fmt: skip
    rows = session.exec(
        select(Job.id, Job.requested, Job.requested_by).where(  # type: ignore[call-overload]
            col(Job.owner_run) == run_id, col(Job.status) == JobStatus.RUNNING, col(Job.requested).is_not(None)
        )
    ).all()
    return {job_id: (StopKind(kind), by or "technician") for job_id, kind, by in rows}


def _renew_job_leases(session: Session, run_id: str, until: float) -> set[int]:
    """Extend the leases of our running jobs; return their ids.

    On PostgreSQL a job row its runner holds locked (a step's transaction, perhaps queued for the
    ledger's lock) is passed over, not waited on: waiting, this transaction would keep every row it
    had already renewed locked, and every other runner's ownership check would queue behind it.
    The runner renews its own lease when it takes the row (``JobRunner.scope``).
    """
    mine = select(_JOB.c.id).where(_JOB.c.owner_run == run_id, _JOB.c.status == JobStatus.RUNNING.value)
    if session.get_bind().dialect.name == "postgresql":
        mine = mine.with_for_update(skip_locked=True, key_share=True)
    renewed = session.connection().execute(
        update(_JOB).where(_JOB.c.id.in_(mine)).values(lease_expires_at=until).returning(_JOB.c.id)
    )
    return set(renewed.scalars())


def register_agent(session: Session, config: LineConfig, *, site: str, run_id: str) -> list[int]:
    """Take the agent's name for this run (a restarted agent replaces its dead predecessor's
    run id, so its jobs can be told apart) and its benches; return the bench ids."""
    now = time.time()
    me = session.get(LineAgent, config.agent)
    if me is None:
        me = LineAgent(name=config.agent, run_id=run_id, started_at=utc_now(), lease_expires_at=0.0)
    me.run_id, me.host, me.pid, me.started_at = run_id, socket.gethostname(), os.getpid(), utc_now()
    me.lease_expires_at = now + config.lease_seconds
    session.add(me)
    benches = register_benches(session, config, site=site, run_id=run_id, now=now)
    return [b.id or 0 for b in benches]


def release_agent(session: Session, agent: str, run_id: str) -> None:
    """Hand the benches over at once: end our agent lease (if the name is still ours)."""
    me = session.get(LineAgent, agent)
    if me is not None and me.run_id == run_id:
        me.lease_expires_at = time.time()
        session.add(me)
