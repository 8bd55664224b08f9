"""The bench line: benches, their slots, the agents that drive them, and jobs with steps and logs.

Jobs are operational records (status, progress, leases) and are updated in place; the evidence
of what happened to a device stays in the custody ledger and certificates, which each job step
references. Leases are wall-clock epoch seconds so agents on different hosts can compare them.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Column, Float, Text
from sqlmodel import Field, SQLModel, UniqueConstraint


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    HELD = "held"  # finished, but a technician must act (quarantine, device in a state the line cannot handle)
    FAILED = "failed"
    CANCELLED = "cancelled"
    ABORTED = "aborted"
    INTERRUPTED = "interrupted"  # the owning agent died; reconciled on restart


ACTIVE_JOB_STATUSES: frozenset[str] = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
FINISHED_JOB_STATUSES: frozenset[str] = frozenset(s.value for s in JobStatus) - ACTIVE_JOB_STATUSES
RETRYABLE_JOB_STATUSES: frozenset[str] = frozenset({JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.INTERRUPTED})


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOOP = "noop"  # ran, but does nothing yet (named as such on the board)


class StopKind(StrEnum):
    """Why a job is stopped from outside before it ends. A technician's cancel or abort is stored
    in ``Job.requested`` until the job's agent acts on it (the values are what the column holds)."""

    CANCEL = "cancel"  # by a technician: the device is failed; a retry restarts from the beginning
    ABORT = "abort"  # by a technician: the device leaves the line for manual handling
    REMOVED = "removed"  # the device was pulled from its slot
    STOPPING = "stopping"  # the controller is stopping, or another process took its agent name

    @property
    def done(self) -> str:
        """As written in a reason: 'cancelled by tech.one'."""
        return {"cancel": "cancelled", "abort": "aborted", "removed": "removed", "stopping": "stopped"}[self.value]


TECHNICIAN_STOPS: frozenset[StopKind] = frozenset({StopKind.CANCEL, StopKind.ABORT})


class LineAgent(SQLModel, table=True):
    """One controller process. ``run_id`` changes on every start, so a restarted agent can tell
    its own dead predecessor's jobs apart from those of a live process."""

    __tablename__ = "line_agent"

    name: str = Field(primary_key=True, max_length=64)
    run_id: str = Field(max_length=64)
    host: str = Field(default="", max_length=200)
    pid: int = Field(default=0)
    started_at: str = Field(max_length=32)
    lease_expires_at: float = Field(sa_column=Column(Float, nullable=False))
    # The agent's latest notices for the board (JSON list of {"at", "message"}), written by its
    # heartbeat, so a board served by another process (factory serve) shows them too.
    notices: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))


class Bench(SQLModel, table=True):
    __tablename__ = "bench"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    site: str = Field(default="", max_length=64)
    agent: str | None = Field(default=None, max_length=64)  # the agent currently driving it
    max_jobs: int = Field(default=4)  # concurrent running jobs on this bench
    created_at: str = Field(max_length=32)


class Slot(SQLModel, table=True):
    __tablename__ = "slot"
    __table_args__ = (UniqueConstraint("bench_id", "position", name="uq_slot_bench_position"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=128)  # "bench-1/slot-3": what the port map resolves to
    bench_id: int = Field(foreign_key="bench.id", index=True)
    position: int
    port_kind: str = Field(default="usb", max_length=16)  # usb, bay, switch
    default_kind: str = Field(default="laptop", max_length=32)  # device kind assumed for unknown arrivals
    device_id: int | None = Field(default=None, foreign_key="device.id", index=True)
    # What is physically attached: the detected serial, device node (or simulated disk file), size.
    # A fresh id per physical insertion: jobs name the attachment they were created for.
    attachment_id: str | None = Field(default=None, max_length=36)
    attached_serial: str | None = Field(default=None, max_length=128)
    attached_node: str | None = Field(default=None, max_length=500)
    attached_size: int | None = Field(default=None)
    attached_at: str | None = Field(default=None, max_length=32)
    attached_epoch: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    attached_mac: str | None = Field(default=None, max_length=17)  # switch-port slots: the MAC on the port
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at: str = Field(max_length=32)
    # An expected reboot (reboot_grace.py): until this epoch a link drop keeps the slot and its job;
    # link_down_at is when the link dropped in it (None: up, or back).
    reboot_until: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    link_down_at: float | None = Field(default=None, sa_column=Column(Float, nullable=True))


class Job(SQLModel, table=True):
    __tablename__ = "job"

    id: int | None = Field(default=None, primary_key=True)
    device_id: int | None = Field(default=None, foreign_key="device.id", index=True)
    slot_id: int = Field(foreign_key="slot.id", index=True)
    bench_id: int = Field(foreign_key="bench.id", index=True)
    attachment_id: str = Field(index=True, max_length=36)
    device_serial: str = Field(default="", max_length=128)  # as detected (unknown devices have no row yet)
    identification: str = Field(max_length=32)  # returned, new_stock, unknown, known
    pipeline: str = Field(max_length=64)
    destination: str = Field(default="internal_reuse", max_length=32)  # named on the certificates
    profile: str = Field(default="", max_length=128)  # provisioning profile: kind/role
    status: str = Field(default=JobStatus.QUEUED, index=True, max_length=16)
    attempt: int = Field(default=1)
    current_step: str | None = Field(default=None, max_length=128)
    progress: float = Field(default=0.0, sa_column=Column(Float, nullable=False, default=0.0))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    action: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # what a technician should do
    owner: str | None = Field(default=None, max_length=64)  # agent name
    owner_run: str | None = Field(default=None, index=True, max_length=64)
    lease_expires_at: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    requested: str | None = Field(default=None, max_length=16)  # StopKind.CANCEL / ABORT asked by a technician
    requested_by: str | None = Field(default=None, max_length=64)
    # People, not agents: the signed-in technician on whose authority the line ran it, and who
    # approved a retry (certificates name them; the agent is recorded as the tool).
    started_by: str | None = Field(default=None, max_length=64)
    approved_by: str | None = Field(default=None, max_length=64)
    detected_epoch: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    started_epoch: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    ended_epoch: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    # Seconds spent in the work itself (engine erase, provisioner): the rest is controller overhead.
    work_seconds: float = Field(default=0.0, sa_column=Column(Float, nullable=False, default=0.0))
    created_at: str = Field(max_length=32)
    started_at: str | None = Field(default=None, max_length=32)
    ended_at: str | None = Field(default=None, max_length=32)
    updated_at: str = Field(index=True, max_length=32)


class JobStep(SQLModel, table=True):
    __tablename__ = "job_step"
    __table_args__ = (UniqueConstraint("job_id", "position", name="uq_job_step_position"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    position: int
    kind: str = Field(max_length=32)  # pipeline.Step value
    name: str = Field(max_length=128)  # as shown on the board
    status: str = Field(default=StepStatus.PENDING, max_length=16)
    started_at: str | None = Field(default=None, max_length=32)
    ended_at: str | None = Field(default=None, max_length=32)
    outcome: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    custody_seq: int | None = Field(default=None)  # ledger entry this step wrote last, if any


class JobLog(SQLModel, table=True):
    __tablename__ = "job_log"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    at: str = Field(max_length=32)
    level: str = Field(default="info", max_length=8)
    message: str = Field(sa_column=Column(Text, nullable=False))


class DeviceCondition(SQLModel, table=True):
    """Disk health, battery wear and age as read from a device, with the route they called for
    under the site's thresholds then (``condition_rules.py``); the rules route by the latest."""

    __tablename__ = "device_condition"

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    evidence: str = Field(sa_column=Column(Text, nullable=False))  # JSON, as read
    route: str = Field(max_length=32)  # reissue, redistribution or disposal
    reasons: str = Field(sa_column=Column(Text, nullable=False))  # JSON list, deciding reasons first
    recorded_by: str = Field(max_length=128)
    recorded_at: str = Field(max_length=32)
