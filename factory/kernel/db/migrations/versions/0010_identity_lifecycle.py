"""identity lifecycle: token expiry, sign-in throttling, the append-only identity audit

Revision ID: 0010
Revises: 0009

Tokens issued before expiry existed get ``expires_at`` = upgrade time + 90 days (the default
``FACTORY_TOKEN_DAYS``): they keep working until then, and ``factory users token NAME`` issues
a successor.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from factory.kernel.db.append_only import create_statements, drop_statements

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_GRACE = timedelta(days=90)


def upgrade() -> None:
    op.add_column("api_token", sa.Column("expires_at", sa.String(32), nullable=True))
    grace_end = (datetime.now(UTC) + _GRACE).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    op.execute(sa.text("UPDATE api_token SET expires_at = :end WHERE expires_at IS NULL").bindparams(end=grace_end))
    op.create_table(
        "auth_throttle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_failure_at", sa.String(32), nullable=True),
        sa.Column("blocked_until", sa.String(32), nullable=True),
        sa.Column("locked_at", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_auth_throttle_last_failure_at", "auth_throttle", ["last_failure_at"])
    op.create_table(
        "identity_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_identity_audit_at", "identity_audit", ["at"])
    op.create_index("ix_identity_audit_target", "identity_audit", ["target"])
    for stmt in create_statements(op.get_bind().dialect.name, "identity_audit"):
        op.execute(stmt)


def downgrade() -> None:
    for stmt in drop_statements(op.get_bind().dialect.name, "identity_audit"):
        op.execute(stmt)
    op.drop_table("identity_audit")
    op.drop_table("auth_throttle")
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("expires_at")
