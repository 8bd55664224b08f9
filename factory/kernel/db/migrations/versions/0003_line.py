"""bench line: agents, benches, slots, jobs, job steps and job logs

Revision ID: 0003
Revises: 0004

Operational tables (updated in place); the evidence stays in custody_entry and certificate.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "line_agent",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("lease_expires_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "bench",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=True),
        sa.Column("max_jobs", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "slot",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(128), nullable=False, unique=True),
        sa.Column("bench_id", sa.Integer(), sa.ForeignKey("bench.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("port_kind", sa.String(16), nullable=False),
        sa.Column("default_kind", sa.String(32), nullable=False),
        sa.Column("device_id", sa.Integer(), sa.ForeignKey("device.id"), nullable=True, index=True),
        sa.Column("attachment_id", sa.String(36), nullable=True),
        sa.Column("attached_serial", sa.String(128), nullable=True),
        sa.Column("attached_node", sa.String(500), nullable=True),
        sa.Column("attached_size", sa.BigInteger(), nullable=True),
        sa.Column("attached_at", sa.String(32), nullable=True),
        sa.Column("attached_epoch", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("bench_id", "position", name="uq_slot_bench_position"),
    )
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.Integer(), sa.ForeignKey("device.id"), nullable=True, index=True),
        sa.Column("slot_id", sa.Integer(), sa.ForeignKey("slot.id"), nullable=False, index=True),
        sa.Column("bench_id", sa.Integer(), sa.ForeignKey("bench.id"), nullable=False, index=True),
        sa.Column("attachment_id", sa.String(36), nullable=False, index=True),
        sa.Column("device_serial", sa.String(128), nullable=False),
        sa.Column("identification", sa.String(32), nullable=False),
        sa.Column("pipeline", sa.String(64), nullable=False),
        sa.Column("destination", sa.String(32), nullable=False),
        sa.Column("profile", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("current_step", sa.String(128), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("owner_run", sa.String(64), nullable=True, index=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.Column("requested", sa.String(16), nullable=True),
        sa.Column("requested_by", sa.String(64), nullable=True),
        sa.Column("detected_epoch", sa.Float(), nullable=True),
        sa.Column("started_epoch", sa.Float(), nullable=True),
        sa.Column("ended_epoch", sa.Float(), nullable=True),
        sa.Column("work_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("started_at", sa.String(32), nullable=True),
        sa.Column("ended_at", sa.String(32), nullable=True),
        sa.Column("updated_at", sa.String(32), nullable=False, index=True),
    )
    op.create_table(
        "job_step",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("job.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.String(32), nullable=True),
        sa.Column("ended_at", sa.String(32), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("custody_seq", sa.Integer(), nullable=True),
        sa.UniqueConstraint("job_id", "position", name="uq_job_step_position"),
    )
    op.create_table(
        "job_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("job.id"), nullable=False, index=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
    )
    # At most one active job per slot, enforced by the database whatever the agents do.
    op.create_index(
        "uq_job_active_slot",
        "job",
        ["slot_id"],
        unique=True,
        sqlite_where=sa.text("status IN ('queued', 'running')"),
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )


def downgrade() -> None:
    op.drop_index("uq_job_active_slot", table_name="job")
    for table in ("job_log", "job_step", "job", "slot", "bench", "line_agent"):
        op.drop_table(table)
