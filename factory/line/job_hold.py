"""The ownership check every step's transaction starts with: ``hold_for_step``.

One statement (UPDATE ... RETURNING): the ownership check, the row lock and the lease renewal,
where a SELECT ... FOR UPDATE and, at the next autoflush, an UPDATE of the lease alone cost two
round trips in every transaction of every job. On PostgreSQL the same statement can also lock the
job's device (``with_device``), which the step's transition or certificate would otherwise select
FOR UPDATE in a round trip of its own.

The statements are built once per shape (which job columns a step's start marks) with bound
parameters, not per call: building the CTEs and their column proxies and generating the cache
key of a fresh statement cost more CPU than the round trip itself, three times per job, on the
agent's one interpreter lock that every runner, the controller and the heartbeat share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, Update, bindparam, select, true, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from factory.kernel.db.shared_statements import built_once
from factory.kernel.lifecycle.transition import remember_locked
from factory.kernel.models.device import Device
from factory.line.errors import LostOwnership
from factory.line.models import Job, JobStatus

_JOB = Job.__table__  # type: ignore[attr-defined]
_DEVICE = Device.__table__  # type: ignore[attr-defined]
# Parameter names of the statements, prefixed so that no job column's name can clash with them.
_ID, _RUN, _LEASE, _MARK = "hold_id", "hold_run", "hold_lease", "hold_mark_"


def hold_for_step(
    session: Session,
    job_id: int,
    run_id: str,
    lease_expires_at: float,
    marks: Mapping[str, Any] | None = None,
    *,
    with_device: bool = False,
) -> Job:
    """The job, locked and its lease renewed to ``lease_expires_at``, if this agent run still runs it
    (``marks``: other columns of the job to set in the same statement, as a step's start).
    ``with_device``: on PostgreSQL the job's device (if it has one) is locked by the same statement,
    after the job's row, as when they were two statements.

    :raises LostOwnership: it does not (reconciled elsewhere, finished or cancelled outright).
    """
    marks = marks or {}
    params = {_ID: job_id, _RUN: run_id, _LEASE: lease_expires_at, **{_MARK + k: v for k, v in marks.items()}}
    columns = tuple(sorted(marks))
    if with_device and session.get_bind().dialect.name == "postgresql":
        row = session.execute(_held_with_device(columns), params).first()
        job, device = row if row is not None else (None, None)
        if device is not None:
            remember_locked(session, device)
    else:
        job = session.execute(_held(columns), params).scalars().first()
    if job is None:
        raise LostOwnership(f"job {job_id} is no longer run by this agent")
    return job  # type: ignore[no-any-return]


def _update(columns: tuple[str, ...]) -> Update:
    """UPDATE job SET lease (and ``columns``) WHERE it is this run's and running, with parameters."""
    return (
        update(Job)
        .where(col(Job.id) == bindparam(_ID), col(Job.owner_run) == bindparam(_RUN))
        .where(col(Job.status) == JobStatus.RUNNING)
        .values(lease_expires_at=bindparam(_LEASE), **{c: bindparam(_MARK + c) for c in columns})
    )


@built_once
def _held(columns: tuple[str, ...]) -> Update:
    return _update(columns).returning(Job).execution_options(populate_existing=True, synchronize_session=False)


@built_once
def _held_with_device(columns: tuple[str, ...]) -> Select[Any]:
    """``WITH held AS (UPDATE job ... RETURNING *), dev AS (SELECT device ... FOR UPDATE)``: the
    job and its device in one round trip."""
    job_cte = _update(columns).returning(*_JOB.c).cte("held")
    device_id = select(job_cte.c.device_id).scalar_subquery()
    device_cte = select(_DEVICE).where(_DEVICE.c.id == device_id).with_for_update(key_share=True).cte("dev")
    job_row, device_row = aliased(Job, job_cte), aliased(Device, device_cte)
    stmt = select(job_row, device_row).select_from(job_cte).outerjoin(device_cte, true())
    return stmt.execution_options(populate_existing=True)
