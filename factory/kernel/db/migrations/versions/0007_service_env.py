"""service-environment endpoints (pinned host keys) and deployed images

Revision ID: 0007
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_endpoint",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.Integer(), sa.ForeignKey("device.id"), nullable=False, unique=True),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("host_key", sa.String(1024), nullable=False),
        sa.Column("host_key_fingerprint", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "device_image",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.Integer(), sa.ForeignKey("device.id"), nullable=False, index=True),
        sa.Column("image_name", sa.String(128), nullable=False),
        sa.Column("image_version", sa.String(64), nullable=False),
        sa.Column("image_sha256", sa.String(64), nullable=False),
        sa.Column("bytes_written", sa.BigInteger(), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("deployed_at", sa.String(32), nullable=False),
        sa.Column("deployed_by", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("device_image")
    op.drop_table("service_endpoint")
