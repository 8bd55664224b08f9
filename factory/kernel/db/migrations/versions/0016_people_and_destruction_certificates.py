"""people on line jobs and destruction certificates

Revision ID: 0016
Revises: 0015

``job.started_by`` is the signed-in person on whose authority the line ran the job (the technician
who started the agent), ``job.approved_by`` the person who approved a retry; certificates name
them, with the bench agent as the tool. ``destruction_certificate`` holds the signed certificate of
each medium of a witnessed destruction, append-only like the other evidence tables.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from factory.kernel.db.append_only import create_statements, drop_statements

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch_op:
        batch_op.add_column(sa.Column("started_by", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("approved_by", sa.String(64), nullable=True))
    op.create_table(
        "destruction_certificate",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("medium_id", sa.Integer(), nullable=False),
        sa.Column("device_serial", sa.String(128), nullable=False),
        sa.Column("medium_serial", sa.String(128), nullable=False),
        sa.Column("destruction_id", sa.Integer(), nullable=False),
        sa.Column("technique", sa.String(32), nullable=False),
        sa.Column("digest_sha256", sa.String(64), nullable=False),
        sa.Column("key_fingerprint", sa.String(128), nullable=False),
        sa.Column("issued_at", sa.String(32), nullable=False),
        sa.Column("envelope", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["device.id"]),
        sa.ForeignKeyConstraint(["medium_id"], ["storage_medium.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest_sha256"),
    )
    for column in ("device_id", "medium_id", "device_serial", "destruction_id", "issued_at"):
        op.create_index(f"ix_destruction_certificate_{column}", "destruction_certificate", [column])
    for stmt in create_statements(op.get_bind().dialect.name, "destruction_certificate"):
        op.execute(stmt)


def downgrade() -> None:
    for stmt in drop_statements(op.get_bind().dialect.name, "destruction_certificate"):
        op.execute(stmt)
    op.drop_table("destruction_certificate")
    with op.batch_alter_table("job") as batch_op:
        batch_op.drop_column("approved_by")
        batch_op.drop_column("started_by")
